"""Hypothesis strategies of the test suite and the conformance tool (NumPy and Hypothesis only, no Keras).

Floats never include subnormals (TensorFlow on CPU flushes them to zero), NaN or infinity. Shapes
come from a few buckets so that compiled functions are traced a handful of times, not once per
example. Two families of scales:

- ``log_uniform`` (``gradient_scales``, ``learning_rates``, ``epsilons``): the exponent is drawn
  directly, so a shrunk example moves towards 10**0 (or the end of the range nearest it): the
  tests' properties;
- ``log_uniform_from_low`` (``small_gradient_scales``, ``small_epsilons``): shrinks towards its
  *small* end, so the tool's shrunk counterexample shows the smallest gradient or epsilon at which
  a deviation appears.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SHAPE_BUCKETS = ((1,), (7,), (3, 5), (2, 3, 4), (64,))
IMAGE_SHAPE_BUCKETS = ((2, 8, 8, 1), (3, 9, 7, 2), (4, 16, 16, 3))


def floats(min_value=-1e3, max_value=1e3, width=64):
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                     width=width)


def shapes(buckets=SHAPE_BUCKETS):
    return st.sampled_from(buckets)


def arrays(shape, min_value=-1e3, max_value=1e3, dtype=np.float64):
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return hnp.arrays(dtype, shape, elements=floats(min_value, max_value, width=width))


def log_uniform(low_exp, high_exp):
    """10**e with e uniform in [low_exp, high_exp]; shrinks towards e = 0 (or the end nearest 0)."""
    return st.floats(low_exp, high_exp).map(lambda e: float(10.0 ** e))


def log_uniform_from_low(low_exp, high_exp):
    """10**e, e uniform in [low_exp, high_exp]; shrinks towards 10**low_exp."""
    return st.floats(0.0, float(high_exp - low_exp)).map(lambda e: float(10.0 ** (low_exp + e)))


gradient_scales = log_uniform(-6, 3)
learning_rates = log_uniform(-5, 0)
epsilons = log_uniform(-10, -3)
small_gradient_scales = log_uniform_from_low(-6, 3)
small_epsilons = log_uniform_from_low(-10, -3)
unit_interval = st.floats(0.0, 0.999, allow_subnormal=False)
fans = st.integers(1, 4096)
second_moment_decays = st.floats(0.5, 0.999)
"""Adam's beta_2 in the tool: Keras updates v += (g*g - v) (1 - beta_2), which in float32 loses ULP / beta_2
of v when g*g << v (cancellation); below 0.5 that rounding, not a convention, would decide the verdict."""


@st.composite
def scaled_arrays(draw, shape, scale=gradient_scales):
    """An array of O(1) entries times a drawn scale: gradients from 1e-6 to 1e3."""
    base = draw(arrays(shape, -1.0, 1.0))
    return base * draw(scale)


def as_float32(x):
    """Round a hyper-parameter or array to float32 and back, before a float64 reference sees it."""
    return np.asarray(np.asarray(x, dtype=np.float32), dtype=np.float64)


def flush_subnormals(x, below=None):
    """TensorFlow on CPU flushes float32 subnormals to zero: hand every side the flushed values.

    ``below``: flush magnitudes below this too (e.g. 1e-15 where squares are taken, whose float32
    squares would be subnormal and flushed inside the implementation).
    """
    x = np.asarray(x, np.float32)
    return np.where(np.abs(x) < (below or np.finfo(np.float32).tiny), np.float32(0), x)
