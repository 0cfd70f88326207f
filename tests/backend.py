"""The Keras backend the suite runs on (``KERAS_BACKEND``: tensorflow, jax or torch), and the few helpers a
test needs to be backend-neutral.

Run the suite on one backend with ``KERAS_BACKEND=jax python -m pytest -q``; ``python -m tests.all_backends``
runs it on all three (README). A test of TensorFlow-only machinery carries
``@pytest.mark.tensorflow_only("why")`` (or a module ``pytestmark``): on another backend it is skipped with
that reason, and README's "TensorFlow only" list is the list of those reasons.
"""

from __future__ import annotations

import keras

BACKEND = keras.backend.backend()
TENSORFLOW = BACKEND == "tensorflow"
JAX = BACKEND == "jax"
TORCH = BACKEND == "torch"


def x64():
    """Whether float64/int64 arrays exist on this backend now (JAX: only with ``jax_enable_x64``)."""
    if JAX:
        import jax

        return bool(jax.config.jax_enable_x64)
    return True


def jit(fn):
    """``fn`` compiled the way this backend compiles a training step: ``tf.function(jit_compile=True)``
    (XLA) on TensorFlow, ``jax.jit`` on JAX (``fn`` must then be pure: pass state in, return it), and
    ``fn`` itself on PyTorch (Keras' torch trainer runs eagerly unless ``jit_compile=True``)."""
    if TENSORFLOW:
        import tensorflow as tf

        return tf.function(fn, jit_compile=True)
    if JAX:
        import jax

        return jax.jit(fn)
    return fn
