"""The Keras backend the suite runs on (``KERAS_BACKEND``: tensorflow, jax or torch), and the few helpers a
test needs to be backend-neutral.

Run the suite on one backend with ``KERAS_BACKEND=jax python -m pytest -q``; ``python -m tests.all_backends``
runs it on all three (README). A test of TensorFlow-only machinery carries
``@pytest.mark.tensorflow_only("why")`` (or a module ``pytestmark``): on another backend it is skipped with
that reason, and README's "TensorFlow only" list is the list of those reasons.
"""

from __future__ import annotations

import contextlib
import os

import keras
import numpy as np

BACKEND = keras.backend.backend()
TENSORFLOW = BACKEND == "tensorflow"
JAX = BACKEND == "jax"
TORCH = BACKEND == "torch"
#: the run that runs the backend-independent tests (tests/conftest.py): TensorFlow's, unless
#: KERAS_OPTREG_ONCE_BACKEND names another backend (tests/all_backends.py names its shortest run's)
ONCE_BACKEND = os.environ.get("KERAS_OPTREG_ONCE_BACKEND", "tensorflow")
if ONCE_BACKEND not in ("tensorflow", "jax", "torch"):
    raise ValueError(f"KERAS_OPTREG_ONCE_BACKEND must be tensorflow, jax or torch. Received: {ONCE_BACKEND!r}")
ONCE = BACKEND == ONCE_BACKEND
#: ``model.compile(jit_compile=...)`` for a compiled fit: XLA on TensorFlow, ``jax.jit`` on JAX; on PyTorch
#: False, its trainer's default (``jit_compile=True`` there is ``torch.compile``: measured 90-380 s for one
#: small model's fit on this 2-core CPU)
JIT_COMPILE = not TORCH


def numpy(x, dtype=None):
    """``x`` (a tensor of any backend, a Variable, an array) as a NumPy array: ``keras.ops.convert_to_numpy``,
    which detaches a PyTorch tensor from autograd (``np.asarray`` of one that requires grad raises)."""
    return np.asarray(keras.ops.convert_to_numpy(x), dtype)


def float64_on(*dtypes):
    """A context in which the dtypes named (policies included) exist: on JAX, where float64 and int64 need
    ``jax_enable_x64``, ``jax.enable_x64(True)`` when any names float64 or int64; else nothing."""
    if JAX and any("float64" in str(d) or "int64" in str(d) for d in dtypes):
        import jax

        return jax.enable_x64(True)
    return contextlib.nullcontext()


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


#: the ways a step runs on this backend: TensorFlow eager, ``tf.function`` graph and XLA; JAX eager and
#: ``jax.jit`` (Keras' stateless step, as its trainer runs it); PyTorch eager (its trainer's default).
MODES = {"tensorflow": ("eager", "graph", "xla"), "jax": ("eager", "jit"), "torch": ("eager",)}[BACKEND]


def nonfinite_errors():
    """What ``nonfinite="raise"`` raises here: TensorFlow's ``InvalidArgumentError`` (check_numerics);
    ``FloatingPointError`` on JAX/PyTorch, which ``jax.jit`` reports as ``JaxRuntimeError``."""
    if TENSORFLOW:
        import tensorflow as tf

        return (tf.errors.InvalidArgumentError,)
    if JAX:
        import jax

        return (FloatingPointError, jax.errors.JaxRuntimeError)
    return (FloatingPointError,)


def stepper(optimizer, variables, mode="eager"):
    """``fn(grads)``: one ``optimizer.apply(grads, variables)`` in ``mode`` (one of ``MODES``); traced
    once per fn. On JAX ``"jit"`` runs ``optimizer.stateless_apply`` inside ``jax.jit`` and writes the
    returned values back, which is what Keras' JAX trainer does."""
    variables = list(variables)
    if mode == "eager":
        return lambda grads: optimizer.apply(list(grads), variables)
    if TENSORFLOW:
        import tensorflow as tf

        return tf.function(lambda grads: optimizer.apply(list(grads), variables), jit_compile=(mode == "xla"))
    if JAX and mode == "jit":
        import jax

        optimizer.build(variables)
        step = jax.jit(lambda opt_values, values, grads: optimizer.stateless_apply(opt_values, grads, values))

        def fn(grads):
            values, opt_values = step([v.value for v in optimizer.variables], [v.value for v in variables],
                                      [keras.ops.convert_to_tensor(g) for g in grads])
            for v, x in zip(variables, values, strict=True):
                v.assign(x)
            for v, x in zip(optimizer.variables, opt_values, strict=True):
                v.assign(x)

        return fn
    raise ValueError(f"mode {mode!r} is not one of {MODES} on {BACKEND}")


def value_and_grad(loss_fn, variables):
    """``(loss, grads)`` of ``loss_fn()`` (reading ``variables``) with respect to ``variables``, eagerly,
    with the backend's own autodiff: ``tf.GradientTape``, ``jax.value_and_grad`` over a stateless scope,
    ``torch.autograd``."""
    variables = list(variables)
    if TENSORFLOW:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn()
        return loss, tape.gradient(loss, variables)
    if JAX:
        import jax

        def pure(values):
            with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))):
                return loss_fn()

        return jax.value_and_grad(pure)([v.value for v in variables])
    import torch

    loss = loss_fn()
    grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
    return loss.detach(), list(grads)


def trainer(loss_fn, optimizer, variables):
    """``step() -> loss``: the gradient of ``loss_fn()`` with respect to ``variables`` applied by
    ``optimizer``, compiled as this backend's trainer compiles it (``tf.function`` on TensorFlow,
    ``jax.jit`` over ``stateless_apply`` on JAX, eager on PyTorch)."""
    variables = list(variables)
    optimizer.build(variables)
    if TENSORFLOW:
        import tensorflow as tf

        @tf.function
        def tf_step():
            loss, grads = value_and_grad(loss_fn, variables)
            optimizer.apply(grads, variables)
            return loss

        return tf_step
    if JAX:
        import jax

        @jax.jit
        def pure(values, opt_values):
            def loss_of(vals):
                with keras.StatelessScope(state_mapping=list(zip(variables, vals, strict=True))):
                    return loss_fn()

            loss, grads = jax.value_and_grad(loss_of)(values)
            values, opt_values = optimizer.stateless_apply(opt_values, grads, values)
            return loss, values, opt_values

        def jax_step():
            loss, values, opt_values = pure([v.value for v in variables], [v.value for v in optimizer.variables])
            for v, x in zip(variables, values, strict=True):
                v.assign(x)
            for v, x in zip(optimizer.variables, opt_values, strict=True):
                v.assign(x)
            return loss

        return jax_step

    def torch_step():
        loss, grads = value_and_grad(loss_fn, variables)
        optimizer.apply(grads, variables)
        return loss

    return torch_step
