"""GradientNormOptimizer: a Keras optimizer wrapped trains exactly as unwrapped and records the global gradient norm.

The recorded value is checked against the norm of the backend's autodiff gradient (``tests.backend``;
eq. 4's :math:`g`); the trajectory against the unwrapped optimizer's, bit for bit (the wrapper passes
the same gradients on). Every backend; sparse ``IndexedSlices`` gradients are TensorFlow's (marked).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_optreg.callbacks import GradientNormOptimizer
from tests.backend import JAX, JIT_COMPILE, MODES, stepper, value_and_grad

N, BATCH = 48, 16
JIT = JIT_COMPILE  # model.compile's: XLA on TensorFlow, jax.jit on JAX, eager on PyTorch (tests/backend.py)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 5)).astype("float32")
    return x, (x @ rng.normal(size=(5, 1))).astype("float32")


def _model(optimizer, seed=1, **compile_kwargs):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((5,))
    out = keras.layers.Dense(1, name="out")(keras.layers.Dense(4, activation="tanh", name="hidden")(inp))
    model = keras.Model(inp, out)
    model.compile(optimizer=optimizer, loss="mse", **compile_kwargs)
    return model


def _norm(grads):
    return float(np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2) for g in grads)))


def _fit(model, epochs=2):
    model.fit(*_data(), batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)
    return [numpy(v) for v in model.trainable_variables]


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _gradients(model, x, y):
    """The float64 gradient of the MSE on (x, y) with respect to the model's trainable variables (autodiff)."""
    _, grads = value_and_grad(lambda: keras.losses.MeanSquaredError()(y, model(x, training=True)),
                              model.trainable_variables)
    return [numpy(g).astype(np.float64) for g in grads]


@pytest.mark.parametrize("jit_compile", [False, JIT])
def test_gradient_norm_optimizer_trains_as_the_inner_optimizer_bit_for_bit(jit_compile):
    wrapped = _fit(_model(GradientNormOptimizer(keras.optimizers.Adam(0.01)), jit_compile=jit_compile))
    plain = _fit(_model(keras.optimizers.Adam(0.01), jit_compile=jit_compile))
    for a, b in zip(wrapped, plain, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradient_norm_optimizer_records_the_norm_before_clipping():
    """One compiled step in a custom loop (XLA on TensorFlow, jax.jit of stateless_apply on JAX); the inner
    optimizer clips (global_clipnorm) after the norm is taken."""
    model = _model(GradientNormOptimizer(keras.optimizers.SGD(0.1, global_clipnorm=1e-3)))
    optimizer = model.optimizer
    x, y = _data()
    before = [numpy(v) for v in model.trainable_variables]
    optimizer.build(model.trainable_variables)
    # the weights layout is the inner optimizer's; on JAX the unsaved norm rides along last (stateless_apply)
    assert optimizer.variables == optimizer.inner_optimizer.variables + ([optimizer.gradient_norm] if JAX else [])
    assert np.isnan(numpy(optimizer.gradient_norm))  # NaN before the first step
    grads = _gradients(model, x, y)
    stepper(optimizer, model.trainable_variables, MODES[-1])([keras.ops.convert_to_tensor(g, "float32") for g in grads])
    want = _norm(grads)
    assert want > 1.0 and float(numpy(optimizer.gradient_norm)) == pytest.approx(want, rel=1e-6)
    moved = np.sqrt(sum(np.sum((numpy(v) - b) ** 2) for v, b in zip(model.trainable_variables, before, strict=True)))
    assert moved == pytest.approx(0.1 * 1e-3, rel=1e-3)  # the step itself was clipped to norm 1e-3
    assert int(numpy(optimizer.iterations)) == 1
    store = {}
    optimizer.save_own_variables(store)
    assert len(store) == len(optimizer.inner_optimizer.variables)  # the norm is not saved


@pytest.mark.tensorflow_only("IndexedSlices: an Embedding's sparse gradient is TensorFlow's")
def test_gradient_norm_optimizer_counts_sparse_gradients_as_dense():
    """An Embedding's IndexedSlices gradient with a repeated index: the dense gradient's norm, not the rows'."""
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inp = keras.Input((3,), dtype="int32")
    out = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Embedding(10, 2)(inp)))
    model = keras.Model(inp, out)
    optimizer = GradientNormOptimizer(keras.optimizers.SGD(0.1))
    ids = np.array([[1, 1, 4], [1, 2, 4]], np.int32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(ids) ** 2)
    grads = tape.gradient(loss, model.trainable_variables)
    assert isinstance(grads[0], tf.IndexedSlices) and len(grads[0].indices) == 6
    optimizer.apply(grads, model.trainable_variables)
    dense = [tf.convert_to_tensor(g) for g in grads]
    rows = float(np.sqrt(np.sum(grads[0].values.numpy() ** 2) + sum(np.sum(g.numpy() ** 2) for g in dense[1:])))
    assert float(optimizer.gradient_norm.numpy()) == pytest.approx(_norm([g.numpy() for g in dense]), rel=1e-6)
    assert abs(_norm([g.numpy() for g in dense]) - rows) > 1e-3 * rows  # the check can tell the two apart here


def test_gradient_norm_optimizer_moves_the_inner_loss_scale_factor_and_records_the_unscaled_norm():
    """With ``loss_scale_factor=1024`` the gradients arrive scaled; the recorded norm is the unscaled one."""
    x, y = _data()
    model = _model(GradientNormOptimizer(keras.optimizers.SGD(0.05, loss_scale_factor=1024.0)))
    assert model.optimizer.loss_scale_factor == 1024.0 and model.optimizer.inner_optimizer.loss_scale_factor is None
    want = _norm(_gradients(model, x[:BATCH], y[:BATCH]))
    model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert float(numpy(model.optimizer.gradient_norm)) == pytest.approx(want, rel=1e-5)
    # and it trains as the unwrapped optimizer with the same factor
    plain = _model(keras.optimizers.SGD(0.05, loss_scale_factor=1024.0))
    plain.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.trainable_variables, plain.trainable_variables, strict=True):
        np.testing.assert_allclose(numpy(a), numpy(b), rtol=1e-6)


def test_gradient_norm_optimizer_sits_inside_the_loss_scale_optimizer_under_mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _model(GradientNormOptimizer(keras.optimizers.SGD(0.05)))
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.optimizer.inner_optimizer, GradientNormOptimizer)
        x, y = _data()
        y = 0.1 * y  # small enough gradients that the first step does not overflow at the initial scale 2**15
        model.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, verbose=0)
        assert int(numpy(model.optimizer.iterations)) == 1
        mixed = float(numpy(model.optimizer.inner_optimizer.gradient_norm))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    reference = _model(GradientNormOptimizer(keras.optimizers.SGD(0.05)))
    reference.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, verbose=0)
    # unscaled: the float32 norm to float16 rounding (not 32768 times it)
    assert mixed == pytest.approx(float(numpy(reference.optimizer.gradient_norm)), rel=1e-2)


def test_gradient_norm_optimizer_keras_file_round_trip_restores_the_inner_state(tmp_path):
    model = _model(GradientNormOptimizer(keras.optimizers.Adam(0.01)))
    _fit(model, epochs=1)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    assert isinstance(again.optimizer, GradientNormOptimizer)
    assert isinstance(again.optimizer.inner_optimizer, keras.optimizers.Adam)
    assert again.optimizer.get_config() == model.optimizer.get_config()
    inner = again.optimizer.inner_optimizer.variables
    assert len(inner) == len(model.optimizer.inner_optimizer.variables) == 2 + 2 * 4  # Adam's layout, nothing more
    for a, b in zip(inner, model.optimizer.inner_optimizer.variables, strict=True):
        np.testing.assert_array_equal(numpy(a), numpy(b))
    for a, b in zip(_fit(again, epochs=1), _fit(model, epochs=1), strict=True):
        np.testing.assert_array_equal(a, b)  # training goes on identically


def test_gradient_norm_optimizer_learning_rate_and_iterations_are_the_inner_ones():
    inner = keras.optimizers.SGD(0.05)
    optimizer = GradientNormOptimizer(inner)
    optimizer.learning_rate = 0.2
    assert float(numpy(inner.learning_rate)) == pytest.approx(0.2)
    model = _model(optimizer)
    _fit(model, epochs=1)
    assert int(numpy(optimizer.iterations)) == int(numpy(inner.iterations)) == N // BATCH
