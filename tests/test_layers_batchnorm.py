"""BatchNormalization, lecture eq. (20) corrected with epsilon ([IS15] Alg. 1-2), against
keras_optreg_spec.corrected."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

import keras_optreg_spec.corrected as sc
from keras_optreg import layers as L
from keras_optreg._math import layers as m
from tests import layer_checks as lc
from tests.assertions import assert_conforms
from tests.strategies import IMAGE_SHAPE_BUCKETS, arrays, as_float32, epsilons

CASES = [((3, 5), (-1,)), ((2, 3, 4), (-1,)), ((2, 3, 4), (1, 2))] + [(s, (-1,)) for s in IMAGE_SHAPE_BUCKETS] + [
    (IMAGE_SHAPE_BUCKETS[0], (1, 2, 3))]


def _reduction(ndim, axis):
    keep = {a % ndim for a in axis}
    return tuple(a for a in range(ndim) if a not in keep)


@given(st.sampled_from(CASES), st.data(), epsilons)
def test_eq20_math_matches_spec(case, data, eps):
    shape, axis = case
    x = data.draw(arrays(shape, -10, 10, dtype=np.float32)) + data.draw(st.floats(-100, 100, width=32))
    eps = float(as_float32(eps))
    mean, var = m.batchnorm_moments(x, _reduction(len(shape), axis))
    x_hat = m.batchnorm_normalize(x, mean, var, eps)
    want_hat, want_mu, want_var = sc.eq20_batchnorm_normalize(x, axis=axis, epsilon=eps)
    assert_conforms(mean, want_mu, eq="eq20", inputs=dict(x=x), rtol=1e-5, atol=1e-4)
    assert_conforms(var, want_var, eq="eq20", inputs=dict(x=x), rtol=1e-3, atol=1e-4)
    # x - mu in float32: mu is a float32 sum of n terms, off by at most gamma_n * max|x| with
    # gamma_n = n u / (1 - n u), u = 2**-24 (Higham, Accuracy and Stability of Numerical Algorithms,
    # 2nd ed., eq. 4.4); the quotient by sqrt(var + eps) adds a few u more.
    n = np.prod([shape[a] for a in _reduction(len(shape), axis)])
    u = 2.0**-24
    atol = (n * u / (1 - n * u) + 8 * u) * (np.abs(x).max() + 1) / np.sqrt(want_var.min() + eps)
    assert_conforms(x_hat, want_hat, eq="eq20", inputs=dict(x=x, eps=eps), rtol=1e-3, atol=atol)
    gamma = data.draw(arrays(np.asarray(want_mu).shape, -3, 3, dtype=np.float32))
    beta = data.draw(arrays(np.asarray(want_mu).shape, -3, 3, dtype=np.float32))
    want_hat32 = np.asarray(x_hat, np.float64)
    assert_conforms(m.batchnorm_affine(np.asarray(x_hat), gamma, beta),
                    sc.eq20_batchnorm_affine(want_hat32, gamma, beta), eq="eq20", rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def jitted_bn():
    layer = L.BatchNormalization(epsilon=1e-3)
    layer.build((4, 16, 16, 3))
    return layer, tf.function(lambda t: layer(t, training=True), jit_compile=True)


@given(st.data(), st.floats(1.0, 100.0))
def test_eq20_training_output_has_zero_mean_unit_variance(jitted_bn, data, scale):
    layer, fn = jitted_bn
    x = data.draw(arrays((4, 16, 16, 3), -1, 1, dtype=np.float32)) * np.float32(scale)
    s2 = x.astype(np.float64).var(axis=(0, 1, 2))
    if s2.min() < 1e-2:
        return  # a (near-)constant channel: x_hat ~ 0, covered by the spec comparison
    y = np.asarray(fn(tf.constant(x)), np.float64)
    n = x.size // 3
    # exact arithmetic gives mean 0 and variance s2 / (s2 + eps); float32 rounding of a sum over n
    # values is at most ~n * 2**-24 times its largest term (|y| and y**2 here)
    tol = 4 * n * 2.0 ** -24 * max(1.0, np.abs(y).max()) ** 2
    assert np.all(np.abs(y.mean(axis=(0, 1, 2))) < tol)
    assert np.all(np.abs(y.var(axis=(0, 1, 2)) - s2 / (s2 + 1e-3)) < tol)


def test_eq20_moving_statistics_momentum_direction_and_unbiased_variance():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, size=(8, 5)).astype(np.float32)
    layer = L.BatchNormalization(momentum=0.9)
    layer(x, training=True)
    mu, var = sc.batchnorm_population_statistics(x.mean(0)[None], x.astype(np.float64).var(0)[None], m=8)
    assert_conforms(layer.moving_mean.numpy(), 0.9 * 0.0 + 0.1 * mu, eq="eq20", rtol=1e-5)
    assert_conforms(layer.moving_variance.numpy(), 0.9 * 1.0 + 0.1 * var, eq="eq20", rtol=1e-5)


def test_eq20_inference_uses_moving_statistics():
    rng = np.random.default_rng(2)
    layer = L.BatchNormalization(momentum=0.0, epsilon=1e-2)
    x = rng.normal(-1.0, 2.0, size=(6, 2, 2, 4)).astype(np.float32)
    layer(x, training=True)  # momentum 0: moving = this batch's statistics
    layer.gamma.assign(rng.normal(size=4)), layer.beta.assign(rng.normal(size=4))
    mean, var = sc.batchnorm_population_statistics(x.mean((0, 1, 2))[None],
                                                   x.astype(np.float64).var((0, 1, 2))[None], m=24)
    want = sc.batchnorm_inference(x, mean, var, layer.gamma.numpy(), layer.beta.numpy(), epsilon=1e-2)
    assert_conforms(layer(x, training=False), want, eq="eq20", rtol=1e-4, atol=1e-5)
    layer.trainable = False  # Keras semantics: a frozen BN layer runs in inference mode
    assert_conforms(layer(x, training=True), want, eq="eq20", rtol=1e-4, atol=1e-5)


def test_eq20_literal_per_position_axis():
    x = np.random.default_rng(3).normal(size=(5, 3, 4, 2)).astype(np.float32)
    layer = L.BatchNormalization(axis=(1, 2, 3), epsilon=1e-3)
    y = layer(x, training=True)
    assert layer.gamma.shape == (3, 4, 2)
    assert_conforms(y, sc.eq20_batchnorm_normalize(x, axis=(1, 2, 3), epsilon=1e-3)[0], eq="eq20",
                    rtol=1e-4, atol=1e-5)


def test_eq20_batch_size_one_is_an_error():
    with pytest.raises(ValueError, match="m >= 2"):
        L.BatchNormalization()(np.ones((1, 3), np.float32), training=True)
    y = L.BatchNormalization()(np.ones((1, 3), np.float32), training=False)  # inference is fine
    assert np.all(np.isfinite(y))


def test_eq20_dynamic_batch_of_one_leaves_the_moving_variance_unchanged():
    layer = L.BatchNormalization(momentum=0.5)
    layer.build((None, 3))
    fn = tf.function(lambda t: layer(t, training=True), input_signature=[tf.TensorSpec((None, 3), tf.float32)])
    fn(tf.constant([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(layer.moving_variance.numpy(), np.ones(3, np.float32))
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * np.array([1.0, 2.0, 3.0]), rtol=1e-6)
    fn(tf.constant([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))  # m = 2: unbiased variance 2 enters
    np.testing.assert_allclose(layer.moving_variance.numpy(), [1.5, 0.5, 1.5], rtol=1e-6)


def test_eq20_mixed_precision():
    layer = L.BatchNormalization(dtype="mixed_float16")
    x = np.random.default_rng(4).normal(5.0, 2.0, size=(16, 4)).astype(np.float16)
    y = layer(x, training=True)
    assert y.dtype == "float16" and layer.moving_mean.dtype == "float32"
    want = sc.eq20_batchnorm_normalize(x.astype(np.float64), epsilon=1e-3)[0]
    assert_conforms(np.asarray(y), want, eq="eq20", rtol=1e-2, atol=5e-3)


@pytest.mark.parametrize("kwargs, error", [
    (dict(momentum=1.0), ValueError), (dict(epsilon=0.0), ValueError), (dict(epsilon=float("nan")), ValueError),
    (dict(axis="x"), TypeError), (dict(axis=()), TypeError), (dict(center=1), TypeError)])
def test_eq20_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error, match="Received"):
        L.BatchNormalization(**kwargs)


def test_eq20_rejects_batch_axis():
    with pytest.raises(ValueError, match="axis"):
        L.BatchNormalization(axis=0)(np.ones((2, 3), np.float32))


X = np.random.default_rng(0).normal(size=(4, 3, 3, 2)).astype(np.float32)


def _make():
    return L.BatchNormalization(momentum=0.5)


def test_eq20_keras_round_trip(tmp_path):
    lc.next_call_survives_reload(tmp_path, _make, X)
    layer = _make()
    inp = keras.Input(X.shape[1:])
    model = keras.Model(inp, layer(inp))
    model(X, training=True)
    model.save(tmp_path / "bn.keras")
    again = keras.models.load_model(tmp_path / "bn.keras")
    np.testing.assert_array_equal(again.layers[-1].moving_variance.numpy(), layer.moving_variance.numpy())
    np.testing.assert_array_equal(np.asarray(again(X)), np.asarray(model(X)))


def test_eq20_jit_compile():
    lc.jit_matches_eager(_make, X)


def test_eq20_model_fit_jit():
    model = lc.fit_runs_under_xla(_make, X)
    assert not np.allclose(model.layers[1].moving_mean.numpy(), 0.0)


def test_eq20_tf_data_map():
    lc.tf_data_map_advances(_make, X)


def test_eq20_custom_loop():
    layer = lc.custom_loop_runs(_make, X)
    assert not np.allclose(layer.moving_variance.numpy(), 1.0)


def test_eq20_synchronized_option_config_validation_and_one_device_identity():
    layer = L.BatchNormalization(synchronized=True, momentum=0.5)
    assert layer.get_config()["synchronized"] is True
    assert L.BatchNormalization.from_config(layer.get_config()).synchronized is True
    with pytest.raises(TypeError, match="synchronized"):
        L.BatchNormalization(synchronized="yes")
    plain = L.BatchNormalization(momentum=0.5)
    # one device (default replica context): the all-reduce path is not taken, results are identical
    np.testing.assert_array_equal(np.asarray(layer(X, training=True)), np.asarray(plain(X, training=True)))
    np.testing.assert_array_equal(layer.moving_variance.numpy(), plain.moving_variance.numpy())
    # the all-reduce form of the statistics equals the one-device form when all_sum is the identity
    mean, var, count = m.batchnorm_moments_global(X, (0, 1, 2), lambda t: t)
    want_mean, want_var = m.batchnorm_moments(X, (0, 1, 2))
    np.testing.assert_allclose(np.asarray(mean), np.asarray(want_mean), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(var), np.asarray(want_var), rtol=1e-6)
    assert float(count) == X.shape[0] * X.shape[1] * X.shape[2]
