"""Regularizers, eq. (19): values against spec, gradients, model helper, fit under XLA, .keras files."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

from keras_optreg import regularizers as kr
from keras_optreg_spec import corrected, printed
from tests.assertions import assert_conforms, assert_keras_round_trip
from tests.strategies import arrays, as_float32, log_uniform, shapes

lams = st.one_of(st.just(0.0), log_uniform(-4, 2))
weight_lists = st.lists(shapes().flatmap(lambda s: arrays(s, -10.0, 10.0)), min_size=1, max_size=3)


def _total(reg, weights):
    return float(sum(float(reg(tf.constant(w, tf.float32))) for w in weights))


@given(weights=weight_lists, lam=lams)
def test_eq19_weight_norm_matches_printed(weights, lam):
    weights, lam = [as_float32(w) for w in weights], float(as_float32(lam))
    inputs = {"weights": weights, "lam": lam}
    assert_conforms(_total(kr.WeightNorm(lam), weights), printed.eq19_weight_norm_penalty(weights, lam),
                    eq="eq19", inputs=inputs, rtol=1e-5, atol=1e-30)
    assert_conforms(_total(kr.WeightNorm(lam), weights), corrected.weight_norm_penalty(weights, lam),
                    eq="eq19", inputs=inputs, rtol=1e-5, atol=1e-30)


@given(weights=weight_lists, lam=lams)
def test_eq19_tikhonov_matches_corrected(weights, lam):
    weights, lam = [as_float32(w) for w in weights], float(as_float32(lam))
    assert_conforms(_total(kr.Tikhonov(lam), weights), corrected.eq19_tikhonov_penalty(weights, lam),
                    eq="eq19", inputs={"weights": weights, "lam": lam}, rtol=1e-5, atol=1e-30)


def test_eq19_tikhonov_is_half_keras_l2():
    w = tf.constant(np.linspace(-2, 3, 12).reshape(3, 4), tf.float32)
    np.testing.assert_allclose(float(kr.Tikhonov(0.3)(w)), float(keras.regularizers.L2(0.15)(w)), rtol=1e-6)


def _grad(reg, w):
    x = tf.constant(w, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = reg(x)
    return tape.gradient(y, x).numpy()


def _finite_difference(f, w, h=1e-6):
    g = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        e = np.zeros_like(w)
        e[i] = h
        g[i] = (f(w + e) - f(w - e)) / (2 * h)
    return g


@given(w=shapes().flatmap(lambda s: arrays(s, 0.1, 10.0)), sign=st.sampled_from([-1.0, 1.0]),
       lam=log_uniform(-3, 1))
def test_eq19_gradients_match_finite_differences(w, sign, lam):
    w = sign * w  # |entries| >= 0.1, so the norm is away from its kink at 0
    for reg, spec_fn in ((kr.WeightNorm(lam), printed.eq19_weight_norm_penalty),
                         (kr.Tikhonov(lam), corrected.eq19_tikhonov_penalty)):
        fd = _finite_difference(lambda v, f=spec_fn: float(f([v], lam)), w)
        assert_conforms(_grad(reg, w), fd, eq="eq19", inputs={"w": w, "lam": lam}, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("jit", [False, True])
def test_eq19_weight_norm_gradient_at_zero_is_zero(jit):
    reg = kr.WeightNorm(0.5)
    x = tf.Variable(tf.zeros((3, 4)))

    def grad():
        with tf.GradientTape() as tape:
            y = reg(x)
        return y, tape.gradient(y, x)

    fn = tf.function(grad, jit_compile=True) if jit else grad
    y, g = fn()
    assert float(y) == 0.0
    np.testing.assert_array_equal(g.numpy(), np.zeros((3, 4)))


def test_eq19_bad_lambda():
    for cls in (kr.WeightNorm, kr.Tikhonov):
        for bad in (-0.1, float("nan"), math.inf):
            with pytest.raises(ValueError, match="`l`"):
                cls(bad)
        with pytest.raises(TypeError, match="`l`"):
            cls("0.1")


def _model(**dense_kwargs):
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(3, 3, **dense_kwargs),
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),
        keras.layers.Dense(4, **dense_kwargs),
        keras.layers.Dense(1, **dense_kwargs),
    ])


@pytest.mark.parametrize("cls,spec_fn", [(kr.WeightNorm, printed.eq19_weight_norm_penalty),
                                          (kr.Tikhonov, corrected.eq19_tikhonov_penalty)])
def test_eq19_apply_to_model_counts_and_sums(cls, spec_fn):
    model = _model()
    assert len(model.losses) == 0
    n = kr.apply_to_model(model, cls(0.2))
    weights = model.trainable_weights
    assert n == len(weights) == 8  # conv k, b; bn gamma, beta; dense k, b; dense k, b
    assert len(model.losses) == n
    expected = spec_fn([w.numpy() for w in weights], 0.2)
    assert_conforms(float(sum(float(v) for v in model.losses)), expected, eq="eq19", rtol=1e-5)


def test_eq19_apply_to_model_requires_built_model():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="model"):
        kr.apply_to_model(model, kr.WeightNorm())


@pytest.mark.parametrize("cls", [kr.WeightNorm, kr.Tikhonov])
def test_eq19_fit_jit_compile_shrinks_weights(cls):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 6, 2)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    norms = {}
    for lam in (0.0, 1.0):
        keras.utils.set_random_seed(1)
        model = _model()
        kr.apply_to_model(model, cls(lam))  # biases start at 0: WeightNorm's kink is hit at step 1
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=True)
        hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        assert np.all(np.isfinite(hist.history["loss"]))
        assert all(np.all(np.isfinite(w.numpy())) for w in model.weights)
        norms[lam] = sum(float(np.sum(w.numpy() ** 2)) for w in model.trainable_weights)
    assert norms[1.0] < 0.5 * norms[0.0]


def test_eq19_custom_training_loop_uses_model_losses():
    model = _model()
    kr.apply_to_model(model, kr.WeightNorm(0.1))
    x = tf.constant(np.random.default_rng(1).normal(size=(8, 6, 6, 2)), tf.float32)
    opt = keras.optimizers.SGD(0.1)

    @tf.function(jit_compile=True)
    def step():
        with tf.GradientTape() as tape:
            penalty = tf.add_n(model.losses)
        grads = tape.gradient(penalty, model.trainable_weights)
        opt.apply_gradients(zip(grads, model.trainable_weights, strict=True))
        return penalty

    model(x)
    before = float(step())
    after = float(step())
    assert np.isfinite(after) and after < before
    assert all(np.all(np.isfinite(w.numpy())) for w in model.trainable_weights)


def test_eq19_keras_file_round_trip(tmp_path):
    model = _model(kernel_regularizer=kr.WeightNorm(0.03), bias_regularizer=kr.Tikhonov(0.2))
    loaded = assert_keras_round_trip(model, tmp_path / "r.keras")
    assert isinstance(loaded.layers[0].kernel_regularizer, kr.WeightNorm)
    assert loaded.layers[0].kernel_regularizer.l == pytest.approx(0.03)
    assert isinstance(loaded.layers[3].bias_regularizer, kr.Tikhonov)
    assert len(loaded.losses) == len(model.losses) == 6
    np.testing.assert_allclose([float(v) for v in loaded.losses], [float(v) for v in model.losses], rtol=1e-6)
