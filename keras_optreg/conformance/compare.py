"""The one comparison of an implementation's values with the float64 spec (NumPy only).

:func:`compare` is what the tool's verdicts rest on; :func:`assert_matches_spec` is the same
comparison as an assertion whose message names the equation, the worst element and every input,
so that a Hypothesis counterexample in the test suite reads as a bug report.
"""

from __future__ import annotations

import numpy as np


def as_float64(x):
    """``x`` as a float64 NumPy array. A PyTorch tensor (one that requires grad, or bfloat16, which NumPy's
    conversion refuses) goes through ``keras.ops.convert_to_numpy`` first."""
    if hasattr(x, "detach"):
        import keras

        x = keras.ops.convert_to_numpy(x)
    return np.asarray(x, dtype=np.float64)


def compare(got, expected, rtol, atol):
    """(ok, normwise relative error, index of the worst element, max |diff| / allowed) of ``got`` against ``expected``.

    ``ok``: every element within ``atol + rtol |expected|`` (``numpy.isclose``; NaN equals NaN); a shape
    mismatch is not ok. ``rtol`` and ``atol`` may be arrays broadcasting against ``expected``.
    """
    got, expected = as_float64(got), as_float64(expected)
    if got.shape != expected.shape:
        return False, np.inf, None, np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
        err = np.where(np.isnan(got) & np.isnan(expected), 0.0, np.abs(got - expected))
        err = np.where(np.isfinite(err), err, np.inf)
        scale = float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0))
        rel = float(np.max(err, initial=0.0)) / scale if scale > 0 else float(np.max(err, initial=0.0))
        allowed = np.broadcast_to(np.asarray(atol, np.float64) + np.asarray(rtol, np.float64) * np.abs(expected),
                                  err.shape)
        band = float(np.max(np.where(err == 0, 0.0, err / np.where(allowed > 0, allowed, np.inf)), initial=0.0))
    worst = None if close.all() else np.unravel_index(int(np.argmax(np.where(close, -1.0, err))), err.shape)
    return bool(close.all()), rel, worst, band


def _fmt(value, limit=400):
    text = value if isinstance(value, str) else np.array2string(np.asarray(value), precision=17, threshold=20)
    return text if len(text) <= limit else text[:limit] + " ..."


def assert_matches_spec(actual, expected, *, eq, inputs=None, rtol=1e-6, atol=0.0):
    """Assert ``actual`` matches the spec value ``expected`` for spec id ``eq`` (e.g. "eq18"), by :func:`compare`.

    The message names the equation, the number of differing elements, the worst one and every input.
    """
    actual, expected = as_float64(actual), as_float64(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{eq}: shape {actual.shape} != spec shape {expected.shape}")
    ok, _, worst, _ = compare(actual, expected, rtol, atol)
    if ok:
        return
    with np.errstate(invalid="ignore"):
        n_bad = int(np.size(expected) - np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True).sum())
    lines = [f"{eq}: {n_bad} of {np.size(expected)} elements differ (rtol={rtol}, atol={atol}); worst at {worst}: "
             f"got {actual[worst]!r}, spec {expected[worst]!r}"]
    lines += [f"  {name} = {_fmt(value)}" for name, value in (inputs or {}).items()]
    raise AssertionError("\n".join(lines))
