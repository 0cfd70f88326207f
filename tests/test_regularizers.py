"""Regularizers, eq. (19): values against spec, gradients, model helper, fit under XLA, .keras files."""

import math

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keras import ops
from keras.src import testing

from keras_optreg import regularizers as kr
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg.conformance.strategies import arrays, as_float32, log_uniform, shapes
from keras_optreg_spec import corrected, printed
from tests import backend as B
from tests.layer_checks import assert_keras_round_trip

lams = st.one_of(st.just(0.0), log_uniform(-4, 2))
weight_lists = st.lists(shapes().flatmap(lambda s: arrays(s, -10.0, 10.0)), min_size=1, max_size=3)


def _total(reg, weights):
    return float(sum(float(ops.convert_to_numpy(reg(ops.convert_to_tensor(w, "float32")))) for w in weights))


@pytest.mark.spec("eq19")
@given(weights=weight_lists, lam=lams)
def test_eq19_weight_norm_matches_printed(weights, lam):
    weights, lam = [as_float32(w) for w in weights], float(as_float32(lam))
    inputs = {"weights": weights, "lam": lam}
    assert_matches_spec(_total(kr.WeightNorm(lam), weights), printed.eq19_weight_norm_penalty(weights, lam),
                    eq="eq19", inputs=inputs, rtol=1e-5, atol=1e-30)
    assert_matches_spec(_total(kr.WeightNorm(lam), weights), corrected.weight_norm_penalty(weights, lam),
                    eq="eq19", inputs=inputs, rtol=1e-5, atol=1e-30)


@pytest.mark.spec("eq19")
@given(weights=weight_lists, lam=lams)
def test_eq19_tikhonov_matches_corrected(weights, lam):
    weights, lam = [as_float32(w) for w in weights], float(as_float32(lam))
    assert_matches_spec(_total(kr.Tikhonov(lam), weights), corrected.eq19_tikhonov_penalty(weights, lam),
                    eq="eq19", inputs={"weights": weights, "lam": lam}, rtol=1e-5, atol=1e-30)


@pytest.mark.spec("eq19")
def test_eq19_tikhonov_is_half_keras_l2():
    w = ops.convert_to_tensor(np.linspace(-2, 3, 12).reshape(3, 4), "float32")
    np.testing.assert_allclose(float(ops.convert_to_numpy(kr.Tikhonov(0.3)(w))),
                               float(ops.convert_to_numpy(keras.regularizers.L2(0.15)(w))), rtol=1e-6)


def _grad(reg, w):
    """The gradient of ``reg`` at ``w``, float64 where the backend has it (JAX: float32 without x64)."""
    x = keras.Variable(w, dtype="float64")
    _, (g,) = B.value_and_grad(lambda: reg(x), [x])
    return ops.convert_to_numpy(g)


def _finite_difference(f, w, h=1e-6):
    g = np.zeros_like(w)
    for i in np.ndindex(w.shape):
        e = np.zeros_like(w)
        e[i] = h
        g[i] = (f(w + e) - f(w - e)) / (2 * h)
    return g


@given(w=shapes().flatmap(lambda s: arrays(s, 0.1, 10.0)), sign=st.sampled_from([-1.0, 1.0]),
       lam=log_uniform(-3, 1))
@pytest.mark.spec("eq19")
def test_eq19_gradients_match_finite_differences(w, sign, lam):
    w = sign * w  # |entries| >= 0.1, so the norm is away from its kink at 0
    for reg, spec_fn in ((kr.WeightNorm(lam), printed.eq19_weight_norm_penalty),
                         (kr.Tikhonov(lam), corrected.eq19_tikhonov_penalty)):
        fd = _finite_difference(lambda v, f=spec_fn: float(f([v], lam)), w)
        assert_matches_spec(_grad(reg, w), fd, eq="eq19", inputs={"w": w, "lam": lam}, rtol=1e-5, atol=1e-8)


@pytest.mark.spec("eq19")
@pytest.mark.parametrize("jit", [False, True])
def test_eq19_weight_norm_gradient_at_zero_is_zero(jit):
    reg = kr.WeightNorm(0.5)
    x = keras.Variable(np.zeros((3, 4), np.float32))

    def grad():
        y, (g,) = B.value_and_grad(lambda: reg(x), [x])
        return y, g

    fn = B.jit(grad) if jit else grad  # XLA on TensorFlow, jax.jit on JAX, eager on PyTorch
    y, g = fn()
    assert float(ops.convert_to_numpy(y)) == 0.0
    np.testing.assert_array_equal(ops.convert_to_numpy(g), np.zeros((3, 4)))


@pytest.mark.spec("eq19")
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
@pytest.mark.spec("eq19")
def test_eq19_apply_to_model_counts_and_sums(cls, spec_fn):
    model = _model()
    assert len(model.losses) == 0
    n = kr.apply_to_model(model, cls(0.2))
    weights = model.trainable_weights
    assert n == len(weights) == 8  # conv k, b; bn gamma, beta; dense k, b; dense k, b
    assert len(model.losses) == n
    expected = spec_fn([w.numpy() for w in weights], 0.2)
    total = float(sum(float(ops.convert_to_numpy(v)) for v in model.losses))
    assert_matches_spec(total, expected, eq="eq19", rtol=1e-5)


@pytest.mark.spec("eq19")
def test_eq19_apply_to_model_requires_built_model():
    model = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="model"):
        kr.apply_to_model(model, kr.WeightNorm())


@pytest.mark.spec("eq19")
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
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=B.JIT_COMPILE)
        hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        assert np.all(np.isfinite(hist.history["loss"]))
        assert all(np.all(np.isfinite(w.numpy())) for w in model.weights)
        norms[lam] = sum(float(np.sum(w.numpy() ** 2)) for w in model.trainable_weights)
    assert norms[1.0] < 0.5 * norms[0.0]


@pytest.mark.spec("eq19")
def test_eq19_custom_training_loop_uses_model_losses():
    model = _model()
    kr.apply_to_model(model, kr.WeightNorm(0.1))
    x = ops.convert_to_tensor(np.random.default_rng(1).normal(size=(8, 6, 6, 2)), "float32")
    opt = keras.optimizers.SGD(0.1)
    model(x)
    # the backend's own compiled step (tf.function, jax.jit over stateless_apply; eager on PyTorch)
    step = B.trainer(lambda: ops.sum(ops.stack(model.losses)), opt, model.trainable_weights)
    before = float(ops.convert_to_numpy(step()))
    after = float(ops.convert_to_numpy(step()))
    assert np.isfinite(after) and after < before
    assert all(np.all(np.isfinite(w.numpy())) for w in model.trainable_weights)


@pytest.mark.spec("eq19")
def test_eq19_keras_file_round_trip(tmp_path):
    model = _model(kernel_regularizer=kr.WeightNorm(0.03), bias_regularizer=kr.Tikhonov(0.2))
    loaded = assert_keras_round_trip(model, tmp_path / "r.keras")
    assert isinstance(loaded.layers[0].kernel_regularizer, kr.WeightNorm)
    assert loaded.layers[0].kernel_regularizer.l == pytest.approx(0.03)
    assert isinstance(loaded.layers[3].bias_regularizer, kr.Tikhonov)
    assert len(loaded.losses) == len(model.losses) == 6
    np.testing.assert_allclose([float(ops.convert_to_numpy(v)) for v in loaded.losses],
                               [float(ops.convert_to_numpy(v)) for v in model.losses], rtol=1e-6)


# ---- dtypes ----------------------------------------------------------------------------------

EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23, "float64": 2.0 ** -52}
PENALTIES = [(kr.WeightNorm, printed.eq19_weight_norm_penalty, lambda w, lam: lam * w / np.sqrt(np.sum(w * w))),
             (kr.Tikhonov, corrected.eq19_tikhonov_penalty, lambda w, lam: lam * w)]


@pytest.mark.spec("eq19")
@pytest.mark.parametrize("dtype", sorted(d for d in EPS if d != "float64" or B.x64()))
@pytest.mark.parametrize("cls,spec_fn,spec_grad", PENALTIES, ids=["weight_norm", "tikhonov"])
def test_eq19_penalty_and_gradient_in_every_weight_dtype(cls, spec_fn, spec_grad, dtype):
    # The penalty is computed in float32 (float64 for float64 weights) and returned in floatx (float32):
    # against the spec on the weight's stored values, 40 elements summed in float32 err by at most
    # 40 eps32 relative (Higham eq. 4.4), plus one rounding to float32. The gradient comes back in the
    # weight's dtype: the float32 (float64) value rounded once to it, within eps(dtype) relative.
    lam = 0.37
    v = keras.Variable(np.random.default_rng(3).normal(size=(5, 8)), dtype=dtype)
    stored = ops.convert_to_numpy(ops.cast(v, "float64")).astype(np.float64)
    penalty, (grad,) = B.value_and_grad(lambda: cls(lam)(v), [v])
    std = keras.backend.standardize_dtype
    assert std(penalty.dtype) == keras.config.floatx() == "float32" and std(grad.dtype) == std(v.dtype)
    compute_eps = EPS["float64"] if dtype == "float64" else EPS["float32"]
    assert_matches_spec(float(ops.convert_to_numpy(penalty)), spec_fn([stored], lam), eq="eq19",
                        rtol=40 * compute_eps + EPS["float32"])
    want = spec_grad(stored, lam)
    assert_matches_spec(ops.convert_to_numpy(ops.cast(grad, "float32" if dtype != "float64" else dtype)).astype(
        np.float64), want, eq="eq19", rtol=EPS[dtype] + 40 * compute_eps,
                    atol=1e-300)
    keras_l2 = keras.regularizers.L2(lam / 2)(v)
    assert std(keras_l2.dtype) == std(v.dtype)  # Keras returns the weight's dtype: the reason model.fit fails below


@pytest.mark.tensorflow_only("Keras' L2 on a float16/bfloat16/float64 layer breaks model.fit on TensorFlow only "
                             "(JAX and PyTorch promote the loss and the penalty to a common dtype)")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_keras_l2_on_a_layer_of_another_dtype_breaks_fit_on_tensorflow(dtype):
    """Why Tikhonov returns floatx: Keras' L2 returns the weight's dtype, which TensorFlow cannot add to the
    float32 loss (the test below trains the same layer with Tikhonov)."""
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    keras_model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(
        2, dtype=dtype, kernel_regularizer=keras.regularizers.L2(0.05))])
    keras_model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=True)
    with pytest.raises(TypeError):
        keras_model.fit(x, np.ones((8, 2), "float32"), verbose=0)


@pytest.mark.spec("eq19")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"] + (["float64"] if B.x64() else []))
def test_eq19_fit_with_a_layer_of_another_dtype(dtype):
    # Tikhonov returns floatx and trains; evaluate's loss is the mse plus the penalty (eq. 19 corrected).
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = np.ones((8, 2), "float32")
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, dtype=dtype,
                                                                    kernel_regularizer=kr.Tikhonov(0.1))])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=B.JIT_COMPILE)
    hist = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    layer = model.layers[0]
    kernel = layer.kernel.numpy().astype(np.float64)
    x_stored = ops.convert_to_numpy(ops.cast(x, dtype)).astype(np.float64)
    pred = x_stored @ kernel + layer.bias.numpy().astype(np.float64)  # exact, in float64
    want = np.mean((pred - y) ** 2) + corrected.eq19_tikhonov_penalty([kernel], 0.1)
    # evaluate's Dense computes in the layer's dtype: 3 products, 2 sums and the bias add, each rounded at
    # worst, give each prediction a relative error d <= 4 eps(dtype) (Higham eq. 3.4); the mse then errs by
    # at most mean(2 |p - y| |p| d + (p d)^2); the rest is float32 (1e-6 relative).
    d = 4 * EPS[dtype]
    tol = np.mean(2 * np.abs(pred - y) * np.abs(pred) * d + (pred * d) ** 2) + 1e-6 * want
    assert_matches_spec(model.evaluate(x, y, batch_size=8, verbose=0), want, eq="eq19", atol=tol, rtol=0)


# ---- apply_to_model: trainable_only, overwrite --------------------------------------------------


@pytest.mark.spec("eq19")
def test_eq19_apply_to_model_trainable_only_false_counts_frozen_layers_once_unfrozen():
    model = _model()
    model.layers[0].trainable = False  # the conv layer: 2 weights
    n_all = kr.apply_to_model(model, kr.Tikhonov(0.1), trainable_only=False)
    assert n_all == len(model.weights) == 10  # 8 trainable + BatchNormalization's moving mean and variance
    assert len(model.losses) == 6  # Keras evaluates the regularizers of trainable weights only
    model.layers[0].trainable = True
    assert len(model.losses) == 8  # the moving statistics never count


@pytest.mark.spec("eq19")
def test_eq19_apply_to_model_overwrite():
    model = _model(kernel_regularizer=keras.regularizers.L2(0.5))
    first = kr.Tikhonov(0.1)
    with pytest.raises(ValueError, match="already have a regularizer"):
        kr.apply_to_model(model, first)
    assert all(isinstance(v.regularizer, keras.regularizers.L2) for v in model.trainable_weights if "kernel" in v.path)
    assert kr.apply_to_model(model, first, overwrite=True) == 8
    assert kr.apply_to_model(model, first) == 8  # the same regularizer again is not a conflict
    assert all(v.regularizer is first for v in model.trainable_weights)


class TestKerasLayerHarness(testing.TestCase):
    """Keras' own layer checks (config and serialization round trips, shapes, training with the penalties in
    the loss, mixed precision) on a Dense layer with both regularizers."""

    @pytest.mark.spec("eq19")
    def test_eq19_dense_in_run_layer_test(self):
        self.run_layer_test(
            keras.layers.Dense,
            init_kwargs={"units": 3, "kernel_regularizer": kr.Tikhonov(0.1), "bias_regularizer": kr.WeightNorm(0.2)},
            input_shape=(2, 4), expected_output_shape=(2, 3), expected_num_trainable_weights=2,
            expected_num_non_trainable_weights=0, expected_num_seed_generators=0, expected_num_losses=2,
            supports_masking=True)
