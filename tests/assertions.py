"""The one assertion helper: a failure names the equation and the inputs."""

from __future__ import annotations

import numpy as np


def _fmt(value, limit=400):
    text = np.array2string(np.asarray(value), precision=17, threshold=20) if not isinstance(value, str) \
        else value
    return text if len(text) <= limit else text[:limit] + " ..."


def assert_conforms(actual, expected, *, eq, inputs=None, rtol=1e-6, atol=0.0):
    """Assert ``actual`` matches the spec value ``expected`` for equation ``eq`` (e.g. "eq18").

    The message names the equation, the worst element and every input, so a Hypothesis
    counterexample reads as a bug report.
    """
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"{eq}: shape {actual.shape} != spec shape {expected.shape}")
    close = np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return
    err = np.abs(actual - expected)
    worst = np.unravel_index(np.nanargmax(np.where(close, -np.inf, err)), err.shape) if err.ndim else ()
    lines = [f"{eq}: {np.size(close) - int(close.sum())} of {np.size(close)} elements differ "
             f"(rtol={rtol}, atol={atol}); worst at {worst}: got {actual[worst]!r}, "
             f"spec {expected[worst]!r}"]
    for name, value in (inputs or {}).items():
        lines.append(f"  {name} = {_fmt(value)}")
    raise AssertionError("\n".join(lines))


def assert_keras_round_trip(model, path):
    """Save ``model`` to the ``.keras`` file ``path``, reload it, assert every weight is bit-for-bit
    equal and every layer's config is unchanged; return the reloaded model.

    Keras is imported here, not at module level, so the spec tests run without it (tox -e spec).
    """
    import keras

    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"weight {a.path}")
    for a, b in zip(model.layers, loaded.layers, strict=True):
        assert a.get_config() == b.get_config(), a.name
    return loaded
