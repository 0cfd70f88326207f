"""Checks and dtype rules shared by the optimizer classes and ``keras_optreg.functional``.

Every check raises a ``ValueError``/``TypeError`` naming the argument and the value received
(``keras_optreg._validation``'s wording), NaN-safe.

Dtypes: the update of a float16 or bfloat16 variable is computed in float32 (``compute_dtype``),
with float32 slots: in float16, 1e-8 is 0 and 1 - 1e-8 is 1, 0.999 rounds to 1 in bfloat16, and
0.01 / float16(1e-7) overflows, so Adam's arithmetic in the variable's dtype gives NaN within a
few steps (issue 13). float32 and float64 variables compute in their own dtype. A
hyper-parameter valid as a Python float can break once rounded to the dtype that computes
(``epsilon=1e-50`` is 0 in float32, ``beta_2=1 - 1e-10`` is 1): ``in_dtype`` checks the rounded
value, at build at the latest.
"""

from __future__ import annotations

import math
import numbers

import keras
import ml_dtypes
import numpy as np
from keras import ops

from keras_optreg import _validation as V

LOW_PRECISION = ("float16", "bfloat16")

#: On TensorFlow, variables smaller than this run op by op, larger ones take the fused kernel
#: (``keras_optreg._fused``): below it a kernel launch costs more than the traffic it saves
#: (tests/benchmarks/bench_optimizers.py, graph mode: 10 variables of 1e3 elements took 1.1-1.3x
#: Keras' time fused, 10 of 1e4 0.88-0.93x). Here, not in ``_fused``, so it is known without TensorFlow.
FUSED_MIN_SIZE = 4096


def storage_dtype(dtype):
    """The dtype a variable declared ``dtype`` really holds: JAX without ``jax_enable_x64`` keeps a
    float64 (int64) Keras variable as float32 (int32) while ``variable.dtype`` still says float64."""
    dtype = keras.backend.standardize_dtype(dtype)
    if keras.backend.backend() == "jax":
        import jax

        return keras.backend.standardize_dtype(jax.dtypes.canonicalize_dtype(dtype))
    return dtype


def compute_dtype(dtype):
    """The dtype an update of a variable of ``dtype`` is computed in: float32 for float16/bfloat16, and
    the dtype the backend really stores otherwise (``storage_dtype``)."""
    dtype = storage_dtype(dtype)
    return "float32" if dtype in LOW_PRECISION else dtype


def as_dtype(x, dtype):
    """``x`` as a tensor of ``dtype``; a Python number directly (``ops.cast`` of a Python float goes
    through float32 first: 0.937 cast to float64 would be float32(0.937))."""
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return ops.convert_to_tensor(x, dtype=dtype)
    return ops.cast(x, dtype)


# ---- hyper-parameters --------------------------------------------------------------------------

#: kind -> (requirement as worded in the message, test on the value rounded to the dtype)
_KINDS = {
    "unit": ("in [0, 1)", lambda r, tiny: 0.0 <= r < 1.0),
    "closed_unit": ("in [0, 1]", lambda r, tiny: 0.0 <= r <= 1.0),
    "positive": ("finite and at least the smallest normal number", lambda r, tiny: tiny <= r < math.inf),
    "nonnegative": ("finite and >= 0", lambda r, tiny: 0.0 <= r < math.inf),
}
#: (``in_dtype`` also takes "kept_nonnegative": 0, or a positive value that stays a normal number)


def _np_dtype(dtype):
    dtype = keras.backend.standardize_dtype(dtype)
    return np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)


def _round(value, dtype):
    with np.errstate(over="ignore", under="ignore"):
        return float(np.asarray(value, dtype=np.float64).astype(_np_dtype(dtype)).astype(np.float64))


def in_dtype(name, value, kind, dtype, what="computes the update"):
    """``value`` rounded to ``dtype`` still satisfies ``kind`` (``_KINDS``); else a ValueError naming both.

    "positive" asks for at least the smallest normal number: TensorFlow on CPU flushes subnormal
    results to zero, so a subnormal epsilon divides by zero as 0 would.
    """
    if value is None:
        return
    if kind == "kept_nonnegative":
        kind = "nonnegative" if value == 0 else "positive"
    requirement, ok = _KINDS[kind]
    tiny = float(ml_dtypes.finfo(_np_dtype(dtype)).tiny)
    rounded = _round(value, dtype)
    if not ok(rounded, tiny):
        raise ValueError(f"Argument `{name}` must be {requirement} in {dtype}, the dtype that {what} "
                         f"(it rounds to {rounded!r}). Received: {name}={value!r}")


def learning_rate(value, dtype=None):
    """A schedule or callable as is (checked at step time); a float finite and >= 0, also in ``dtype``
    (the learning-rate Variable's, ``keras.backend.floatx()``): ``SGD(1e39)`` is inf in float32."""
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or callable(value):
        return value
    value = V.finite_nonnegative("learning_rate", value)
    in_dtype("learning_rate", value, "nonnegative", dtype or keras.backend.floatx(),
             what="holds the learning rate")
    return value


def step_learning_rate(value):
    """The rate a step is about to use (a schedule's or a callable's value): a number or a float tensor.

    A Python number is checked at once (finite, >= 0); a string or another object is a TypeError.
    A tensor is checked in the step (``nonfinite``).
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return V.finite_nonnegative("learning_rate", value)
    if not (ops.is_tensor(value) or isinstance(value, keras.Variable)) or \
            not keras.backend.is_float_dtype(keras.backend.standardize_dtype(value.dtype)):
        V._fail("learning_rate", value, "a real number or a float tensor at step time (the value of the "
                "schedule or callable)", TypeError)
    return value


#: Keras' base-class options: name -> (check, requirement)
def _positive_or_none(name, value):
    return None if value is None else V.finite_positive(name, value)


def _nonnegative_or_none(name, value):
    return None if value is None else V.finite_nonnegative(name, value)


def _ema_momentum(name, value):
    v = V.real(name, value)
    if not (0.0 <= v <= 1.0):
        V._fail(name, value, "in [0, 1]")
    return v


def _overwrite_frequency(name, value):
    return None if value is None else V.positive_int(name, value)


def _accumulation_steps(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        V._fail(name, value, "an integer >= 2 or None", TypeError)
    if not value >= 2:
        V._fail(name, value, "an integer >= 2 or None")
    return int(value)


BASE_OPTIONS = {
    "weight_decay": _nonnegative_or_none,
    "clipnorm": _positive_or_none,
    "global_clipnorm": _positive_or_none,
    "clipvalue": _positive_or_none,
    "use_ema": V.boolean,
    "ema_momentum": _ema_momentum,
    "ema_overwrite_frequency": _overwrite_frequency,
    "loss_scale_factor": _positive_or_none,
    "gradient_accumulation_steps": _accumulation_steps,
}


def base_options(kwargs):
    """Keras' base-class options checked like ours (Keras accepts ``clipnorm=nan`` or ``-1`` and then
    does not clip); returns ``kwargs`` with the checked values."""
    out = dict(kwargs)
    for name, check in BASE_OPTIONS.items():
        if name in out:
            out[name] = check(name, out[name])
    return out


# ---- gradients -----------------------------------------------------------------------------------


def variable_name(variable):
    return getattr(variable, "path", None) or getattr(variable, "name", repr(variable))


def gradient_shape(shape, variable, index):
    """A clear error where a gradient's static ``shape`` cannot be the variable's (no broadcasting)."""
    shape = tuple(shape)
    want = tuple(variable.shape)
    if len(shape) != len(want) or any(a is not None and b is not None and a != b
                                      for a, b in zip(shape, want, strict=True)):
        raise ValueError(f"The gradient of variable {variable_name(variable)!r} must have the variable's shape "
                         f"{want}. Received: grads[{index}] of shape {shape}")
