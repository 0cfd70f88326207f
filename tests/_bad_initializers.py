"""Bad-input rows: initializers (eqs. 1-3): construction (seed, layout, mode, axes, fan_in) and call (shape, dtype)."""

from __future__ import annotations

import keras
import numpy as np

from keras_optreg import initializers as ki
from keras_optreg_spec import corrected
from tests.backend import float64_on
from tests.badinput import Case

NAN = float("nan")
CLASSES = {"glorot": ki.GlorotUniform, "torch": ki.TorchDefault, "flax": ki.FlaxDefault}


def _all(make):
    """One row per class: ``make(cls)`` is the call."""
    return {name: (lambda cls=cls: make(cls)) for name, cls in CLASSES.items()}


def _shape_dtype(shape, dtype):
    def check(w):
        assert tuple(w.shape) == shape and keras.backend.standardize_dtype(w.dtype) == dtype
    return check


def _x64(fn):
    """``fn()`` where float64 exists (JAX: inside ``jax.enable_x64``; Keras' float64 there needs it)."""
    with float64_on("float64"):
        return fn()


def _same_as_seed(seed, shape=(4, 5)):
    def check(w):
        np.testing.assert_array_equal(np.asarray(w), np.asarray(ki.GlorotUniform(seed=seed)(shape)))
    return check


def _symbolic_shape():
    """A shape known only when a TensorFlow graph runs (TensorFlow only: jax.jit and PyTorch see shapes)."""
    import tensorflow as tf

    return tf.function(lambda x: ki.GlorotUniform(seed=1)(tf.shape(x)))(tf.zeros((2, 3)))


CASES = []
for name, call in _all(lambda cls: cls(seed=1.5)).items():
    CASES.append(Case(f"initializers/{name}-seed-float", call, TypeError, ("seed", "1.5", "SeedGenerator"),
                      keras="ValueError naming seed"))
for name, call in _all(lambda cls: cls(seed=True)).items():
    CASES.append(Case(f"initializers/{name}-seed-bool", call, TypeError, ("seed", "True")))
for name, call in _all(lambda cls: cls(seed="7")).items():
    CASES.append(Case(f"initializers/{name}-seed-str", call, TypeError, ("seed", "'7'")))
for name, call in _all(lambda cls: cls(seed=2 ** 64)).items():
    CASES.append(Case(f"initializers/{name}-seed-beyond-int64", call, ValueError, ("seed", str(2 ** 64), "int64"),
                      keras="accepted; ValueError 'out-of-range integer' at the first call"))
for name, call in _all(lambda cls: cls(layout="nchw")).items():
    CASES.append(Case(f"initializers/{name}-layout-unknown", call, ValueError, ("layout", "'nchw'")))
for name, call in _all(lambda cls: cls(input_axes=[0])).items():
    CASES.append(Case(f"initializers/{name}-input_axes-without-output_axes", call, ValueError,
                      ("input_axes", "output_axes", "together"), keras="accepted, the axes ignored"))
for name, call in _all(lambda cls: cls(output_axes=[1])).items():
    CASES.append(Case(f"initializers/{name}-output_axes-without-input_axes", call, ValueError,
                      ("input_axes", "output_axes", "together"), keras="accepted, the axes ignored"))
for name, call in _all(lambda cls: cls(input_axes="0", output_axes="1")).items():
    CASES.append(Case(f"initializers/{name}-axes-str", call, TypeError, ("input_axes", "'0'")))
for name, call in _all(lambda cls: cls(input_axes=[0.0], output_axes=[1])).items():
    CASES.append(Case(f"initializers/{name}-axes-float", call, TypeError, ("input_axes", "[0.0]")))
for name, call in _all(lambda cls: cls(seed=0, input_axes=[0], output_axes=[3])((4, 5))).items():
    CASES.append(Case(f"initializers/{name}-axes-out-of-range", call, ValueError, ("output_axes", "[3]", "rank 2"),
                      keras="IndexError: tuple index out of range"))
for name, call in _all(lambda cls: cls(seed=0, input_axes=[0, -3], output_axes=[1])((4, 5, 6))).items():
    CASES.append(Case(f"initializers/{name}-axes-repeated", call, ValueError, ("input_axes", "[0, -3]", "repeat"),
                      keras="accepted: fan_in counts axis 0 twice"))
for name, call in _all(lambda cls: cls(seed=0, input_axes=[0], output_axes=[0, 1])((4, 5))).items():
    CASES.append(Case(f"initializers/{name}-axes-overlap", call, ValueError, ("input_axes", "output_axes", "share")))
for name, call in _all(lambda cls: cls(seed=0)((3, None))).items():
    CASES.append(Case(f"initializers/{name}-shape-unknown-dim", call, ValueError, ("shape", "(3, None)")))
for name, call in _all(lambda cls: cls(seed=0)((3, -4))).items():
    CASES.append(Case(f"initializers/{name}-shape-negative", call, ValueError, ("shape", "(3, -4)")))
for name, call in _all(lambda cls: cls(seed=0)((3.0, 4))).items():
    CASES.append(Case(f"initializers/{name}-shape-float-dim", call, ValueError, ("shape", "(3.0, 4)")))
for dtype in ("int32", "int64", "uint8", "bool", "complex64"):
    for name, call in _all(lambda cls, d=dtype: cls(seed=0)((3, 4), dtype=d)).items():
        CASES.append(Case(f"initializers/{name}-dtype-{dtype}", call, ValueError, ("dtype", dtype),
                          keras="int32: returns integer noise (uniform in (-1, 1) truncated to 0 and -1)"))
for dtype in ("float16", "bfloat16", "float32", "float64"):
    for name, call in _all(lambda cls, d=dtype: _x64(lambda: cls(seed=0)((0, 4), dtype=d))).items():
        CASES.append(Case(f"initializers/{name}-zero-size-{dtype}", call, None, check=_shape_dtype((0, 4), dtype)))

CASES += [
    Case("initializers/glorot-seed-numpy-int", lambda: ki.GlorotUniform(seed=np.int64(3))((4, 5)), None,
         check=_same_as_seed(3)),
    Case("initializers/glorot-seed-int64-max", lambda: ki.GlorotUniform(seed=2 ** 63 - 1)((4, 5)), None,
         check=lambda w: np.all(np.abs(np.asarray(w)) <= float(corrected.eq01_glorot_uniform_bound(4, 5)))),
    Case("initializers/glorot-seed-serialized-dict",
         lambda: ki.GlorotUniform(seed=keras.saving.serialize_keras_object(keras.random.SeedGenerator(3))), None,
         check=lambda init: np.testing.assert_array_equal(
             np.asarray(init((4, 5))), np.asarray(ki.GlorotUniform(seed=keras.random.SeedGenerator(3))((4, 5))))),
    Case("initializers/flax-mode-fan_avg", lambda: ki.FlaxDefault(mode="fan_avg"), ValueError, ("mode", "'fan_avg'")),
    Case("initializers/flax-variance_corrected-int", lambda: ki.FlaxDefault(variance_corrected=1), TypeError,
         ("variance_corrected", "1")),
    Case("initializers/torch_bias-fan_in-zero", lambda: ki.TorchDefaultBias(0), ValueError, ("fan_in", "0")),
    Case("initializers/torch_bias-fan_in-negative", lambda: ki.TorchDefaultBias(-3), ValueError, ("fan_in", "-3")),
    Case("initializers/torch_bias-fan_in-nan", lambda: ki.TorchDefaultBias(NAN), TypeError, ("fan_in", "nan")),
    Case("initializers/torch_bias-fan_in-float", lambda: ki.TorchDefaultBias(2.0), TypeError, ("fan_in", "2.0")),
    Case("initializers/torch_bias-seed-float", lambda: ki.TorchDefaultBias(4, seed=0.5), TypeError, ("seed", "0.5")),
    Case("initializers/torch_bias-dtype-int32", lambda: ki.TorchDefaultBias(4, seed=0)((3,), dtype="int32"),
         ValueError, ("dtype", "int32")),
    Case("initializers/torch_default_pair-seed-int64-max", lambda: ki.torch_default_pair((3, 4), seed=2 ** 63 - 1),
         ValueError, ("seed", str(2 ** 63), "int64")),
    Case("initializers/torch_default_pair-layout-unknown", lambda: ki.torch_default_pair((3, 4), layout="nhwc"),
         ValueError, ("layout", "'nhwc'")),
    Case("initializers/torch_default_pair-shape-unknown-dim", lambda: ki.torch_default_pair((None, 4)), ValueError,
         ("shape", "(None, 4)")),
]

CASES.append(Case("initializers/glorot-shape-symbolic-in-tf-function", _symbolic_shape, ValueError,
                  ("shape", "static"), tensorflow_only="a shape unknown until run time exists only in a "
                                                       "tf.function graph (JAX and PyTorch trace concrete shapes)"))
