"""Gradients and compiled optimizer steps in a test, the same on every backend (the callbacks' and
gradient-norm tests; the reference gradient a test compares ``gradient_norm`` with).

``loss_gradients(model, loss)``: the gradient of ``loss(predict)`` with respect to the model's
trainable variables, where ``predict(x)`` is the model's training-mode forward pass: a
``tf.GradientTape`` on TensorFlow, ``jax.grad`` over ``model.stateless_call`` on JAX, ``backward()``
on PyTorch. ``compiled_apply(optimizer, variables)``: ``optimizer.apply`` compiled as the backend's
trainer compiles its step (``tests.backend.jit``; on JAX through ``stateless_apply``, whose results
are written back to the variables as Keras' JAX trainer does).
"""

from __future__ import annotations

import keras
import numpy as np

from tests.backend import JAX, TENSORFLOW, TORCH, jit


def loss_gradients(model, loss):
    """The float64 gradients (a list of numpy arrays, one per trainable variable) of ``loss(predict)``."""
    variables = model.trainable_variables
    if TENSORFLOW:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss(lambda x: model(x, training=True))
        grads = tape.gradient(value, variables)
        return [np.asarray(tf.convert_to_tensor(g), np.float64) for g in grads]
    if JAX:
        import jax

        fixed = [v.value for v in model.non_trainable_variables]

        def f(values):
            return loss(lambda x: model.stateless_call(values, fixed, x, training=True)[0])

        return [np.asarray(g, np.float64) for g in jax.grad(f)([v.value for v in variables])]
    assert TORCH
    for v in variables:
        v.value.grad = None
    loss(lambda x: model(x, training=True)).backward()
    grads = [np.asarray(v.value.grad.detach().cpu().numpy(), np.float64) for v in variables]
    for v in variables:
        v.value.grad = None
    return grads


def compiled_apply(optimizer, variables):
    """``grads -> None``: one ``optimizer.apply(grads, variables)`` step, compiled (see the module docstring)."""
    if not JAX:
        return jit(lambda grads: optimizer.apply(grads, variables))
    if not optimizer.built:
        optimizer.build(variables)
    step = jit(optimizer.stateless_apply)

    def apply(grads):
        new_variables, new_state = step([v.value for v in optimizer.variables], list(grads),
                                        [v.value for v in variables])
        for v, value in zip(variables, new_variables, strict=True):
            v.assign(value)
        for v, value in zip(optimizer.variables, new_state, strict=True):
            v.assign(value)

    return apply


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))
