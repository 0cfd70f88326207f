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
