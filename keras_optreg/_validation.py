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
