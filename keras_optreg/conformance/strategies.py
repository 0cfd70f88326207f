"""Hypothesis strategies of the conformance tool (NumPy and Hypothesis only, no Keras).

They follow ``tests/strategies.py`` (no subnormals, NaN or infinity; shapes from a few buckets so
that Keras traces a handful of times), with one difference: scales shrink towards their *small*
end, so a shrunk counterexample shows the smallest gradient or epsilon at which a deviation
appears (``tests/strategies.py``'s scales shrink towards 1).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SHAPE_BUCKETS = ((1,), (7,), (3, 5), (2, 3, 4), (64,))
STEPS = 7  # optimizer trajectories: t = 1 .. 7


def floats(min_value=-1e3, max_value=1e3, width=64):
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                     width=width)


def shapes(buckets=SHAPE_BUCKETS):
    return st.sampled_from(buckets)


def arrays(shape, min_value=-1e3, max_value=1e3, dtype=np.float64):
    width = 32 if np.dtype(dtype) == np.float32 else 64
    return hnp.arrays(dtype, shape, elements=floats(min_value, max_value, width=width))


def log_uniform(low_exp, high_exp):
    """10**e, e uniform in [low_exp, high_exp]; shrinks towards 10**low_exp."""
    return st.floats(0.0, float(high_exp - low_exp)).map(lambda e: float(10.0 ** (low_exp + e)))


def log_uniform_to_one(low_exp, high_exp):
    """10**e, e uniform in [low_exp, high_exp] (which holds 0); shrinks towards 1 (as tests/strategies.py)."""
    return st.floats(low_exp, high_exp).map(lambda e: float(10.0 ** e))


gradient_scales = log_uniform(-6, 3)
learning_rates = log_uniform_to_one(-5, 0)
epsilons = log_uniform(-10, -3)
unit_interval = st.floats(0.0, 0.999, allow_subnormal=False)
second_moment_decays = st.floats(0.5, 0.999)
"""Adam's beta_2: Keras updates v += (g*g - v) (1 - beta_2), which in float32 loses ULP / beta_2 of v
when g*g << v (cancellation); below 0.5 that rounding, not a convention, would decide the verdict."""


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
