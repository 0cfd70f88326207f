"""Bad-input rows: regularizers (eq. 19): construction, the first call (the weight's dtype), apply_to_model."""

from __future__ import annotations

import keras
import numpy as np

from keras_optreg import regularizers as kr
from keras_optreg_spec import corrected, printed
from tests.backend import float64_on, jit
from tests.badinput import Case

NAN, INF = float("nan"), float("inf")
CLASSES = {"weight_norm": kr.WeightNorm, "tikhonov": kr.Tikhonov}
SPEC = {"weight_norm": printed.eq19_weight_norm_penalty, "tikhonov": corrected.eq19_tikhonov_penalty}
W = np.linspace(-2.0, 3.0, 12).reshape(3, 4)


def _weight(dtype):
    return keras.ops.convert_to_tensor(W, dtype)


def _x64(fn):
    """``fn()`` where float64 exists (JAX: inside ``jax.enable_x64``), so a float64 weight is one."""
    with float64_on("float64"):
        return fn()


def _equals_spec(name, lam, dtype):
    """The penalty on W stored in ``dtype``, computed in float32: within 1e-6 relative of the spec."""
    def check(penalty):
        stored = keras.ops.convert_to_numpy(_weight(dtype)).astype(np.float64)
        want = SPEC[name]([stored], lam)
        np.testing.assert_allclose(float(penalty), want, rtol=1e-6)
        assert keras.backend.standardize_dtype(penalty.dtype) == "float32"
    return check


def _built_model(**kwargs):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, **kwargs), keras.layers.Dense(1)])
    return model


def _overwritten(model_and_count):
    model, count = model_and_count
    assert count == 4 and all(isinstance(v.regularizer, kr.Tikhonov) for v in model.trainable_weights)


def _jit_penalty(reg):
    return jit(lambda w: reg(w))(keras.ops.convert_to_tensor(W, "float32"))


CASES = []
for name, cls in CLASSES.items():
    for bad, error in ((-0.1, ValueError), (NAN, ValueError), (INF, ValueError), ("0.1", TypeError),
                       (True, TypeError), (None, TypeError)):
        CASES.append(Case(f"regularizers/{name}-l-{bad!r}", lambda cls=cls, bad=bad: cls(bad), error,
                          ("`l`", repr(bad))))
    CASES += [
        Case(f"regularizers/{name}-keras-l2-keyword", lambda cls=cls: cls(l2=0.1), TypeError, ("l2", cls.__name__),
             keras="L2(l2=0.1): 0.1 ||W||^2, twice Tikhonov(0.1)"),
        Case(f"regularizers/{name}-from-config-l2", lambda cls=cls: cls.from_config({"l2": 0.1}), TypeError, ("l2",)),
        Case(f"regularizers/{name}-l-1e39-float32", lambda cls=cls: cls(1e39)(_weight("float32")), ValueError,
             ("`l`", "float32", "1e+39"),
             keras="L2(1e39) on float32: ValueError 'out of range for a double-precision float' from TensorFlow"),
        Case(f"regularizers/{name}-l-1e39-float64-returned-in-floatx",
             lambda cls=cls: _x64(lambda: cls(1e39)(_weight("float64"))), ValueError,
             ("`l`", "float32", "floatx", "1e+39")),
        Case(f"regularizers/{name}-l-1e39-bfloat16", lambda cls=cls: cls(1e39)(_weight("bfloat16")), ValueError,
             ("`l`", "float32", "1e+39")),
        Case(f"regularizers/{name}-l-1e5-float16-gradient-overflows",
             lambda cls=cls: cls(1e5)(_weight("float16")), ValueError, ("`l`", "float16", "gradient", "100000.0"),
             keras="L2(1e5) on float16: the penalty is silently inf"),
        Case(f"regularizers/{name}-l-1e5-bfloat16", lambda cls=cls: cls(1e5)(_weight("bfloat16")), None,
             check=_equals_spec(name, 1e5, "bfloat16")),
        Case(f"regularizers/{name}-l-1e-5-float16-below-its-normals", lambda cls=cls: cls(1e-5)(_weight("float16")),
             None, check=_equals_spec(name, 1e-5, "float16"),
             keras="L2(1e-5) on float16: lambda is a float16 subnormal, the penalty 0.2% off"),
        Case(f"regularizers/{name}-l-1e-50-float32", lambda cls=cls: cls(1e-50)(_weight("float32")), ValueError,
             ("`l`", "float32", "1e-50"), keras="L2(1e-50): the penalty is silently 0"),
        Case(f"regularizers/{name}-l-1e-50-float16", lambda cls=cls: cls(1e-50)(_weight("float16")), ValueError,
             ("`l`", "float32", "1e-50")),
        Case(f"regularizers/{name}-l-1e-300-float64-returned-in-floatx",
             lambda cls=cls: _x64(lambda: cls(1e-300)(_weight("float64"))), ValueError,
             ("`l`", "float32", "floatx", "1e-300")),
        Case(f"regularizers/{name}-l-1e39-at-trace-under-xla", lambda cls=cls: _jit_penalty(cls(1e39)), ValueError,
             ("`l`", "float32", "1e+39")),
        Case(f"regularizers/{name}-int32-weight",
             lambda cls=cls: cls(0.1)(keras.ops.convert_to_tensor([[1, 2]], "int32")), ValueError, ("`x`", "int32"),
             keras="L2(0.1) on int32: lambda cast to int 0, the penalty is silently 0"),
        Case(f"regularizers/{name}-bool-weight", lambda cls=cls: cls(0.1)(keras.ops.convert_to_tensor([True])),
             ValueError, ("`x`", "bool")),
        Case(f"regularizers/{name}-l-zero", lambda cls=cls: cls(0.0)(_weight("float16")), None,
             check=lambda p: float(p) == 0.0),
    ]

CASES += [
    Case("regularizers/apply_to_model-trainable_only-str",
         lambda: kr.apply_to_model(_built_model(), kr.Tikhonov(0.1), trainable_only="no"), TypeError,
         ("trainable_only", "'no'")),
    Case("regularizers/apply_to_model-trainable_only-int",
         lambda: kr.apply_to_model(_built_model(), kr.Tikhonov(0.1), trainable_only=0), TypeError,
         ("trainable_only", "0")),
    Case("regularizers/apply_to_model-trainable_only-none",
         lambda: kr.apply_to_model(_built_model(), kr.Tikhonov(0.1), trainable_only=None), TypeError,
         ("trainable_only", "None")),
    Case("regularizers/apply_to_model-overwrite-str",
         lambda: kr.apply_to_model(_built_model(), kr.Tikhonov(0.1), overwrite="yes"), TypeError,
         ("overwrite", "'yes'")),
    Case("regularizers/apply_to_model-model-none", lambda: kr.apply_to_model(None, kr.Tikhonov(0.1)), TypeError,
         ("model", "None")),
    Case("regularizers/apply_to_model-model-list", lambda: kr.apply_to_model([keras.layers.Dense(2)], kr.Tikhonov()),
         TypeError, ("model", "Dense")),
    Case("regularizers/apply_to_model-model-unbuilt",
         lambda: kr.apply_to_model(keras.Sequential([keras.layers.Dense(2)]), kr.Tikhonov()), ValueError,
         ("model", "built")),
    Case("regularizers/apply_to_model-regularizer-none", lambda: kr.apply_to_model(_built_model(), None), TypeError,
         ("regularizer", "None")),
    Case("regularizers/apply_to_model-regularizer-str", lambda: kr.apply_to_model(_built_model(), "l2"), TypeError,
         ("regularizer", "'l2'")),
    Case("regularizers/apply_to_model-existing-regularizer",
         lambda: kr.apply_to_model(_built_model(kernel_regularizer="l2"), kr.Tikhonov(0.1)), ValueError,
         ("already have a regularizer", "kernel", "overwrite")),
    Case("regularizers/apply_to_model-existing-regularizer-overwrite",
         lambda: (lambda m: (m, kr.apply_to_model(m, kr.Tikhonov(0.1), overwrite=True)))(
             _built_model(kernel_regularizer="l2")), None, check=_overwritten),
]
