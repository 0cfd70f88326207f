"""Construction-time argument checks shared by every component.

Each check is NaN-safe (written as ``not (low <= value < high)``) and raises with the argument's
name and the value received, in Keras' style: ``... Received: rate=nan``.
"""

from __future__ import annotations

import math
import numbers


def _fail(name, value, requirement, error=ValueError):
    raise error(f"Argument `{name}` must be {requirement}. Received: {name}={value!r}")


def real(name, value):
    """``value`` as a Python float; TypeError for bools, strings, None and other non-reals."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(name, value, "a real number", TypeError)
    return float(value)


def finite_nonnegative(name, value):
    v = real(name, value)
    if not (0.0 <= v < math.inf):
        _fail(name, value, "finite and >= 0")
    return v


def finite_positive(name, value):
    v = real(name, value)
    if not (0.0 < v < math.inf):
        _fail(name, value, "finite and > 0")
    return v


def unit_interval(name, value):
    """In [0, 1): decay rates, momenta, betas, drop rates."""
    v = real(name, value)
    if not (0.0 <= v < 1.0):
        _fail(name, value, "in [0, 1)")
    return v


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(name, value, "an integer", TypeError)
    if not value > 0:
        _fail(name, value, "> 0")
    return int(value)


def boolean(name, value):
    """A real ``bool``; TypeError for 0/1, strings and None."""
    if not isinstance(value, bool):
        _fail(name, value, "a bool", TypeError)
    return value


def seed(name, value):
    """An ``int`` seed or None (bools rejected); range checks are the caller's."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(name, value, "an int or None", TypeError)
    return int(value)


def one_of(name, value, choices):
    if value not in choices:
        _fail(name, value, f"one of {tuple(choices)}")
    return value


def int_in_range(name, value, low, high, why=""):
    """An integer in [low, high] (bools rejected); ``why`` says where the bound comes from."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(name, value, "an integer", TypeError)
    if not (low <= value <= high):
        _fail(name, value, f"in [{low}, {high}]{why}")
    return int(value)


def representable(name, value, dtype, role="the dtype it is computed in", normal=True):
    """``value`` (a float already checked finite) still finite, and still nonzero and normal where it is
    nonzero, after rounding to the floating ``dtype`` ("float16", "bfloat16", "float32", "float64");
    ``role`` says in the message why that dtype matters; ``normal=False`` checks finiteness only.

    TensorFlow on CPU flushes subnormals to zero, so a value below the dtype's smallest normal number
    is as lost as one that rounds to 0.
    """
    import ml_dtypes
    import numpy as np

    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    info = ml_dtypes.finfo(np_dtype)
    with np.errstate(over="ignore"):
        rounded = float(np.asarray(value, np.float64).astype(np_dtype))
    if not math.isfinite(rounded):
        _fail(name, value, f"finite in {dtype}, {role} (at most {float(info.max):.8g})")
    if normal and value != 0.0 and not abs(rounded) >= float(info.tiny):
        _fail(name, value, f"0 or at least {float(info.tiny):.8g} in absolute value in {dtype}, {role} "
              "(smaller values round to 0 or to a subnormal number that TensorFlow flushes to 0)")
    return float(value)
