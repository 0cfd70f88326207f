"""BatchNormalization, lecture eq. (20) corrected with epsilon ([IS15] Alg. 1-2), against
keras_optreg_spec.corrected."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_optreg_spec.corrected as sc
from keras_optreg import layers as L
from keras_optreg._math import layers as m
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg.conformance.strategies import IMAGE_SHAPE_BUCKETS, arrays, as_float32, epsilons
from tests import layer_checks as lc

CASES = [((3, 5), (-1,)), ((2, 3, 4), (-1,)), ((2, 3, 4), (1, 2))] + [(s, (-1,)) for s in IMAGE_SHAPE_BUCKETS] + [
    (IMAGE_SHAPE_BUCKETS[0], (1, 2, 3))]


def _reduction(ndim, axis):
    keep = {a % ndim for a in axis}
    return tuple(a for a in range(ndim) if a not in keep)


@pytest.mark.spec("eq20")
@given(st.sampled_from(CASES), st.data(), epsilons)
def test_eq20_math_matches_spec(case, data, eps):
    shape, axis = case
    x = data.draw(arrays(shape, -10, 10, dtype=np.float32)) + data.draw(st.floats(-100, 100, width=32))
    eps = float(as_float32(eps))
    mean, var = m.batchnorm_moments(x, _reduction(len(shape), axis))
    x_hat = m.batchnorm_normalize(x, mean, var, eps)
    want_hat, want_mu, want_var = sc.eq20_batchnorm_normalize(x, axis=axis, epsilon=eps)
    assert_matches_spec(mean, want_mu, eq="eq20", inputs=dict(x=x), rtol=1e-5, atol=1e-4)
    assert_matches_spec(var, want_var, eq="eq20", inputs=dict(x=x), rtol=1e-3, atol=1e-4)
    # x - mu in float32: mu is a float32 sum of n terms, off by at most gamma_n * max|x| with
    # gamma_n = n u / (1 - n u), u = 2**-24 (Higham, Accuracy and Stability of Numerical Algorithms,
    # 2nd ed., eq. 4.4); the quotient by sqrt(var + eps) adds a few u more.
    n = np.prod([shape[a] for a in _reduction(len(shape), axis)])
    u = 2.0**-24
    atol = (n * u / (1 - n * u) + 8 * u) * (np.abs(x).max() + 1) / np.sqrt(want_var.min() + eps)
    assert_matches_spec(x_hat, want_hat, eq="eq20", inputs=dict(x=x, eps=eps), rtol=1e-3, atol=atol)
    gamma = data.draw(arrays(lc.numpy(want_mu).shape, -3, 3, dtype=np.float32))
    beta = data.draw(arrays(lc.numpy(want_mu).shape, -3, 3, dtype=np.float32))
    want_hat32 = lc.numpy(x_hat, np.float64)
    assert_matches_spec(m.batchnorm_affine(lc.numpy(x_hat), gamma, beta),
                    sc.eq20_batchnorm_affine(want_hat32, gamma, beta), eq="eq20", rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def jitted_bn():
    layer = L.BatchNormalization(epsilon=1e-3)
    layer.build((4, 16, 16, 3))
    return layer, lc.compiled_call(layer)


@pytest.mark.spec("eq20")
@given(st.data(), st.floats(1.0, 100.0))
def test_eq20_training_output_has_zero_mean_unit_variance(jitted_bn, data, scale):
    layer, fn = jitted_bn
    x = data.draw(arrays((4, 16, 16, 3), -1, 1, dtype=np.float32)) * np.float32(scale)
    s2 = x.astype(np.float64).var(axis=(0, 1, 2))
    if s2.min() < 1e-2:
        return  # a (near-)constant channel: x_hat ~ 0, covered by the spec comparison
    y = lc.numpy(fn(x), np.float64)
    n = x.size // 3
    # exact arithmetic gives mean 0 and variance s2 / (s2 + eps); float32 rounding of a sum over n
    # values is at most ~n * 2**-24 times its largest term (|y| and y**2 here)
    tol = 4 * n * 2.0 ** -24 * max(1.0, np.abs(y).max()) ** 2
    assert np.all(np.abs(y.mean(axis=(0, 1, 2))) < tol)
    assert np.all(np.abs(y.var(axis=(0, 1, 2)) - s2 / (s2 + 1e-3)) < tol)


@pytest.mark.spec("eq20")
def test_eq20_moving_statistics_momentum_direction_and_unbiased_variance():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, size=(8, 5)).astype(np.float32)
    layer = L.BatchNormalization(momentum=0.9)
    layer(x, training=True)
    mean, var = sc.batchnorm_moving_update(np.zeros(5), np.ones(5), x, momentum=0.9)
    assert_matches_spec(layer.moving_mean.numpy(), mean, eq="eq20", rtol=1e-5)
    assert_matches_spec(layer.moving_variance.numpy(), var, eq="eq20", rtol=1e-5)


@pytest.mark.spec("eq20")
def test_eq20_inference_uses_moving_statistics():
    rng = np.random.default_rng(2)
    layer = L.BatchNormalization(momentum=0.0, epsilon=1e-2)
    x = rng.normal(-1.0, 2.0, size=(6, 2, 2, 4)).astype(np.float32)
    layer(x, training=True)  # momentum 0: moving = this batch's statistics
    layer.gamma.assign(rng.normal(size=4)), layer.beta.assign(rng.normal(size=4))
    mean, var = sc.batchnorm_population_statistics(x.mean((0, 1, 2))[None],
                                                   x.astype(np.float64).var((0, 1, 2))[None], m=24)
    want = sc.batchnorm_inference(x, mean, var, layer.gamma.numpy(), layer.beta.numpy(), epsilon=1e-2)
    assert_matches_spec(lc.numpy(layer(x, training=False)), want, eq="eq20", rtol=1e-4, atol=1e-5)
    layer.trainable = False  # Keras semantics: a frozen BN layer runs in inference mode
    assert_matches_spec(lc.numpy(layer(x, training=True)), want, eq="eq20", rtol=1e-4, atol=1e-5)


@pytest.mark.spec("eq20")
def test_eq20_literal_per_position_axis():
    x = np.random.default_rng(3).normal(size=(5, 3, 4, 2)).astype(np.float32)
    layer = L.BatchNormalization(axis=(1, 2, 3), epsilon=1e-3)
    y = layer(x, training=True)
    assert layer.gamma.shape == (3, 4, 2)
    assert_matches_spec(lc.numpy(y), sc.eq20_batchnorm_normalize(x, axis=(1, 2, 3), epsilon=1e-3)[0], eq="eq20",
                    rtol=1e-4, atol=1e-5)


@pytest.mark.spec("eq20")
def test_eq20_batch_size_one_is_an_error():
    with pytest.raises(ValueError, match="m >= 2"):
        L.BatchNormalization()(np.ones((1, 3), np.float32), training=True)
    y = L.BatchNormalization()(np.ones((1, 3), np.float32), training=False)  # inference is fine
    assert np.all(np.isfinite(lc.numpy(y)))


@pytest.mark.spec("eq20")
@pytest.mark.tensorflow_only("tf.function input_signature: a batch size unknown until run time exists only in "
                             "TensorFlow graphs (jax.jit and PyTorch see every shape)")
def test_eq20_dynamic_batch_of_one_leaves_the_moving_variance_unchanged():
    import tensorflow as tf

    layer = L.BatchNormalization(momentum=0.5)
    layer.build((None, 3))
    fn = tf.function(lambda t: layer(t, training=True), input_signature=[tf.TensorSpec((None, 3), tf.float32)])
    fn(tf.constant([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(layer.moving_variance.numpy(), np.ones(3, np.float32))
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * np.array([1.0, 2.0, 3.0]), rtol=1e-6)
    fn(tf.constant([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))  # m = 2: unbiased variance 2 enters
    np.testing.assert_allclose(layer.moving_variance.numpy(), [1.5, 0.5, 1.5], rtol=1e-6)


EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23, "float64": 2.0 ** -52}


@pytest.mark.spec("eq20")
@pytest.mark.parametrize("policy", ["float64", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
def test_eq20_training_under_every_dtype_policy(policy):
    """Issue 12 bug 2: consistent dtypes throughout, moving statistics included. The output is the spec's
    within the compute dtype's rounding (the input is rounded to it first, the output once more: the
    normalised values are O(3), so 8 eps of 3; float64 computes in float64, the others in float32)."""
    with lc.float64_on(policy):
        _training_under_policy(policy)


def _training_under_policy(policy):
    keras_policy = keras.dtype_policies.get(policy)
    compute, variable = keras_policy.compute_dtype, keras_policy.variable_dtype
    layer = L.BatchNormalization(momentum=0.5, dtype=policy)
    x = np.random.default_rng(4).normal(5.0, 2.0, size=(16, 4))
    x_in = lc.numpy(keras.ops.cast(keras.ops.cast(x, compute), "float64"))  # what the layer sees
    y = layer(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == compute
    assert [v.dtype for v in layer.weights] == [variable] * 4
    want = sc.eq20_batchnorm_normalize(x_in, epsilon=1e-3)[0]
    work = "float64" if compute == "float64" else "float32"
    assert_matches_spec(lc.numpy(keras.ops.cast(y, "float64")), want, eq="eq20",
                    rtol=0, atol=8 * 3 * max(EPS[compute], EPS[work]) + 1e-12)
    mean, var = sc.batchnorm_moving_update(np.zeros(4), np.ones(4), x_in, momentum=0.5)
    moving = lc.numpy(keras.ops.cast(layer.moving_mean, "float64"))
    assert_matches_spec(moving, mean, eq="eq20", rtol=4 * max(EPS[variable], EPS[work]))
    moving = lc.numpy(keras.ops.cast(layer.moving_variance, "float64"))
    assert_matches_spec(moving, var, eq="eq20", rtol=4 * max(EPS[variable], EPS[work]))
    fn = lc.compiled_call(layer)  # and compiled (XLA on TensorFlow, jax.jit on JAX)
    assert keras.backend.standardize_dtype(fn(keras.ops.cast(x, compute)).dtype) == compute


@pytest.mark.spec("eq20")
def test_eq20_masked_statistics_as_keras_computes_them():
    """Issue 12 bug 5: the padded steps (mask False) enter no statistic: moving mean [1.5, 5.0] (Keras'
    value), not [0.75, 2.5]; the moving variance is the unbiased masked one (m = 2 values per feature)."""
    x = np.array([[[1.0, 4.0], [2.0, 6.0]], [[0.0, 0.0], [0.0, 0.0]]], np.float32)
    mask = np.array([[True, True], [False, False]])
    ours, twin = L.BatchNormalization(momentum=0.0), keras.layers.BatchNormalization(momentum=0.0)
    y = ours(x, training=True, mask=mask)
    twin(x, training=True, mask=mask)
    np.testing.assert_allclose(ours.moving_mean.numpy(), [1.5, 5.0], rtol=1e-6)
    np.testing.assert_allclose(ours.moving_mean.numpy(), twin.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(),
                               sc.batchnorm_moving_update(np.zeros(2), np.ones(2), x, 0.0, mask=mask)[1], rtol=1e-6)
    mu, var, _ = sc.batchnorm_masked_moments(x, mask)
    want = (x - mu) / np.sqrt(var + 1e-3)  # every position normalised with the masked statistics
    assert_matches_spec(lc.numpy(y), want, eq="eq20", rtol=1e-5, atol=1e-6)
    assert ours.compute_mask(x, mask) is mask


@pytest.mark.spec("eq20")
@given(st.sampled_from([(3, 5, 2), (2, 4, 4, 3)]), st.data())
def test_eq20_masked_moments_math_matches_spec(shape, data):
    x = data.draw(arrays(shape, -10, 10, dtype=np.float32))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=int(np.prod(shape[:-1])),
                                       max_size=int(np.prod(shape[:-1]))))).reshape(shape[:-1])
    red = tuple(range(len(shape) - 1))
    mean, var, count = m.batchnorm_moments_masked(x, red, mask[..., None])
    want_mu, want_var, want_m = sc.batchnorm_masked_moments(x, mask)
    np.testing.assert_array_equal(lc.numpy(count), want_m)
    seen = want_m > 0  # m = 0: the spec's mean is NaN (0/0), the library's 0; the layer keeps its statistics then
    assert_matches_spec(lc.numpy(mean)[seen], want_mu[seen], eq="eq20", inputs=dict(x=x, mask=mask), rtol=1e-5,
                    atol=1e-4)
    assert_matches_spec(lc.numpy(var)[seen], want_var[seen], eq="eq20", inputs=dict(x=x, mask=mask), rtol=1e-3,
                    atol=1e-4)


@pytest.mark.spec("eq20")
def test_eq20_mask_from_an_embedding_reaches_the_statistics():
    tokens = np.array([[3, 5, 0, 0], [2, 0, 0, 0]])  # 0 = padding
    inp = keras.Input((4,), dtype="int32")
    h = keras.layers.Embedding(6, 2, mask_zero=True,
                               embeddings_initializer=keras.initializers.RandomNormal(seed=0))(inp)
    bn = L.BatchNormalization(momentum=0.0)
    out = bn(h)
    model = keras.Model(inp, out)
    model(tokens, training=True)
    emb = lc.numpy(model.layers[1](tokens))
    np.testing.assert_allclose(bn.moving_mean.numpy(), emb[tokens != 0].mean(0), rtol=1e-5)
    assert out._keras_mask is not None  # the mask passes through


@pytest.mark.spec("eq20")
def test_eq20_fully_masked_feature_keeps_its_moving_statistics():
    x = np.random.default_rng(5).normal(size=(2, 3, 2)).astype(np.float32)
    layer = L.BatchNormalization(momentum=0.5)
    layer(x, training=True, mask=np.zeros((2, 3), bool))
    np.testing.assert_array_equal(layer.moving_mean.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(layer.moving_variance.numpy(), [1.0, 1.0])
    one = np.zeros((2, 3), bool)
    one[1, 2] = True  # one value per feature: the mean moves, the (undefined) variance not
    layer(x, training=True, mask=one)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * x[1, 2], rtol=1e-6)
    np.testing.assert_array_equal(layer.moving_variance.numpy(), [1.0, 1.0])


@pytest.mark.spec("eq20")
def test_eq20_infinite_batch_keeps_the_moving_statistics():
    layer = L.BatchNormalization(momentum=0.5)
    x = np.random.default_rng(6).normal(size=(8, 3)).astype(np.float32)
    layer(x, training=True)
    before = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    bad = x.copy()
    bad[:, 0] = np.inf  # channel 0: infinite mean; channel 2: a variance overflowing float32
    bad[:4, 2], bad[4:, 2] = 3e38, -3e38
    layer(bad, training=True)
    np.testing.assert_array_equal(layer.moving_mean.numpy()[0], before[0][0])
    np.testing.assert_array_equal(layer.moving_variance.numpy()[[0, 2]], before[1][[0, 2]])
    assert layer.moving_mean.numpy()[1] != before[0][1]  # the clean channel takes the batch


@pytest.mark.spec("eq20")
def test_eq20_regularizers_and_constraints_of_gamma_and_beta():
    layer = L.BatchNormalization(gamma_regularizer=keras.regularizers.L2(0.1), beta_regularizer="l1",
                                 gamma_constraint=keras.constraints.MaxNorm(0.5), beta_constraint="non_neg")
    layer.build((None, 3))
    layer.gamma.assign([1.0, 2.0, 3.0])
    layer.beta.assign([-1.0, 0.5, 2.0])
    # Keras' L2(l2) is l2 * sum(w**2); "l1" is L1(0.01): 0.01 * sum(|w|)
    np.testing.assert_allclose(float(sum(layer.losses)), 0.1 * 14.0 + 0.01 * 3.5, rtol=1e-6)
    again = L.BatchNormalization.from_config(layer.get_config())
    for name in ("gamma_regularizer", "beta_regularizer", "gamma_constraint", "beta_constraint"):
        assert type(getattr(again, name)) is type(getattr(layer, name)), name
    opt = keras.optimizers.SGD(0.1)
    opt.apply([keras.ops.zeros(3), keras.ops.zeros(3)], [layer.gamma, layer.beta])  # constraints after the step
    np.testing.assert_allclose(np.linalg.norm(layer.gamma.numpy()), 0.5, rtol=1e-5)
    np.testing.assert_array_equal(layer.beta.numpy(), [0.0, 0.5, 2.0])


@pytest.mark.spec("eq20")
def test_eq20_mixed_precision():
    layer = L.BatchNormalization(dtype="mixed_float16")
    x = np.random.default_rng(4).normal(5.0, 2.0, size=(16, 4)).astype(np.float16)
    y = layer(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "float16" and layer.moving_mean.dtype == "float32"
    want = sc.eq20_batchnorm_normalize(x.astype(np.float64), epsilon=1e-3)[0]
    assert_matches_spec(lc.numpy(y), want, eq="eq20", rtol=1e-2, atol=5e-3)


X = np.random.default_rng(0).normal(size=(4, 3, 3, 2)).astype(np.float32)


def _make():
    return L.BatchNormalization(momentum=0.5)


@pytest.mark.spec("eq20")
def test_eq20_keras_round_trip(tmp_path):
    lc.next_call_survives_reload(tmp_path, _make, X)
    layer = _make()
    inp = keras.Input(X.shape[1:])
    model = keras.Model(inp, layer(inp))
    model(X, training=True)
    model.save(tmp_path / "bn.keras")
    again = keras.models.load_model(tmp_path / "bn.keras")
    np.testing.assert_array_equal(again.layers[-1].moving_variance.numpy(), layer.moving_variance.numpy())
    np.testing.assert_array_equal(lc.numpy(again(X)), lc.numpy(model(X)))


@pytest.mark.spec("eq20")
def test_eq20_jit_compile():
    lc.jit_matches_eager(_make, X)


@pytest.mark.spec("eq20")
def test_eq20_model_fit_jit():
    model = lc.fit_runs_under_xla(_make, X)
    assert not np.allclose(model.layers[1].moving_mean.numpy(), 0.0)


@pytest.mark.spec("eq20")
@pytest.mark.tensorflow_only("tf.data: Dataset.map traces the layer into a TensorFlow graph")
def test_eq20_tf_data_map():
    lc.tf_data_map_advances(_make, X)


@pytest.mark.spec("eq20")
def test_eq20_custom_loop():
    layer = lc.custom_loop_runs(_make, X)
    assert not np.allclose(layer.moving_variance.numpy(), 1.0)


@pytest.mark.spec("eq20")
def test_eq20_synchronized_option_config_validation_and_one_device_identity():
    layer = L.BatchNormalization(synchronized=True, momentum=0.5)
    assert layer.get_config()["synchronized"] is True
    assert L.BatchNormalization.from_config(layer.get_config()).synchronized is True
    with pytest.raises(TypeError, match="synchronized"):
        L.BatchNormalization(synchronized="yes")
    plain = L.BatchNormalization(momentum=0.5)
    # one device (default replica context): the all-reduce path is not taken, results are identical
    np.testing.assert_array_equal(lc.numpy(layer(X, training=True)), lc.numpy(plain(X, training=True)))
    np.testing.assert_array_equal(layer.moving_variance.numpy(), plain.moving_variance.numpy())
    # the all-reduce form of the statistics equals the one-device form when all_sum is the identity
    mean, var, count = m.batchnorm_moments_global(X, (0, 1, 2), lambda t: t)
    want_mean, want_var = m.batchnorm_moments(X, (0, 1, 2))
    np.testing.assert_allclose(lc.numpy(mean), lc.numpy(want_mean), rtol=1e-6)
    np.testing.assert_allclose(lc.numpy(var), lc.numpy(want_var), rtol=1e-6)
    assert float(count) == X.shape[0] * X.shape[1] * X.shape[2]
