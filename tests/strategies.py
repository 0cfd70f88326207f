"""Hypothesis strategies shared by the spec tests and the library tests.

Floats never include subnormals (TF on CPU flushes them to zero), NaN or infinity. Shapes come
from a few buckets so that compiled functions are traced a handful of times, not once per example.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SHAPE_BUCKETS = ((1,), (7,), (3, 5), (2, 3, 4), (64,))
IMAGE_SHAPE_BUCKETS = ((2, 8, 8, 1), (3, 9, 7, 2), (4, 16, 16, 3))


def floats(min_value=-1e3, max_value=1e3, width=64):
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False, width=width)


def shapes(buckets=SHAPE_BUCKETS):
    return st.sampled_from(buckets)


def arrays(shape, min_value=-1e3, max_value=1e3, dtype=np.float64):
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return hnp.arrays(dtype, shape, elements=floats(min_value, max_value, width=width))


def log_uniform(low_exp, high_exp):
    """10**e with e uniform in [low_exp, high_exp]: scales from 10**low_exp to 10**high_exp."""
    return st.floats(low_exp, high_exp).map(lambda e: float(10.0 ** e))


gradient_scales = log_uniform(-6, 3)
learning_rates = log_uniform(-5, 0)
epsilons = log_uniform(-10, -3)
unit_interval = st.floats(0.0, 0.999, allow_subnormal=False)
fans = st.integers(1, 4096)


@st.composite
def scaled_arrays(draw, shape, scale=gradient_scales):
    """An array of O(1) entries times a drawn scale: gradients from 1e-6 to 1e3."""
    base = draw(arrays(shape, -1.0, 1.0))
    return base * draw(scale)


def as_float32(x):
    """Round a hyper-parameter or array to float32 and back, before a float64 reference sees it."""
    return np.asarray(np.asarray(x, dtype=np.float32), dtype=np.float64)
