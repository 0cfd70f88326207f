"""Mixed precision ("mixed_float16", "mixed_bfloat16"): optimizers, LossScaleOptimizer, layers, initializers.

Every test that sets the global policy does so through the ``policy`` fixture, which restores
"float32" afterwards. Tolerances use each dtype's machine epsilon (float16 2**-10, bfloat16 2**-7).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import ops

import keras_optreg as ko
from keras_optreg import initializers as ki
from keras_optreg import layers as L
from keras_optreg_spec import corrected, printed
from tests import backend as B
from tests import stats

POLICIES = ("mixed_float16", "mixed_bfloat16")
EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23}


def _dtype(x):
    return keras.backend.standardize_dtype(x.dtype)  # a backend dtype (torch.float16) as Keras' name


@pytest.fixture(params=POLICIES)
def policy(request):
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield keras.mixed_precision.global_policy()
    finally:
        keras.mixed_precision.set_global_policy("float32")


OPTIMIZERS = {
    "sgd_momentum": lambda: ko.SGD(0.01, momentum=0.9),
    "sgd_nesterov": lambda: ko.SGD(0.01, momentum=0.9, nesterov=True),
    "adagrad": lambda: ko.Adagrad(0.01),
    "rmsprop_momentum": lambda: ko.RMSprop(0.01, momentum=0.9),
    "adam_linear_decay": lambda: ko.Adam(ko.LinearDecay(1e-2, 1e-3, decay_steps=10)),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.spec("eq04", "eq12", "eq18")
def test_eq04_eq12_eq18_mixed_precision_slots_stay_float32(policy, name):
    """Layers keep float32 variables under a mixed policy, so every float slot is float32 too."""
    layer = keras.layers.Dense(3)
    x = np.ones((2, 4), np.float32)
    layer.build(x.shape)
    assert _dtype(layer(x)) == policy.compute_dtype
    opt = OPTIMIZERS[name]()
    opt.build(layer.trainable_variables)
    floats = [v for v in opt.variables if "int" not in v.dtype]
    assert len(floats) >= len(layer.trainable_variables), [v.path for v in opt.variables]
    assert {v.dtype for v in floats} == {"float32"}
    before = [v.numpy().copy() for v in layer.trainable_variables]
    opt.apply([ops.ones(v.shape) for v in layer.trainable_variables])
    for v, b in zip(layer.trainable_variables, before, strict=True):
        assert v.dtype == "float32" and not np.array_equal(v.numpy(), b)


def _loss_scale_pair():
    var = keras.Variable(np.array([1.0, -2.0, 3.0], np.float32))
    lso = keras.optimizers.LossScaleOptimizer(ko.Adam(0.1))
    lso.build([var])
    return var, lso


@pytest.mark.spec("eq18")
def test_eq18_loss_scale_optimizer_skips_overflow_and_applies_finite_steps():
    var, lso = _loss_scale_pair()
    # Keras' LossScaleOptimizer.apply leaks a tracer in JAX's eager mode (its ops.cond): there, the step Keras'
    # JAX trainer takes (stateless_apply under jax.jit)
    step = B.stepper(lso, [var], "jit" if B.JAX else "eager")
    scale = float(lso.dynamic_scale.numpy())
    step([ops.convert_to_tensor([1.0, np.inf, 0.5])])  # an overflowed scaled gradient
    np.testing.assert_array_equal(var.numpy(), [1.0, -2.0, 3.0])
    assert float(lso.dynamic_scale.numpy()) == scale / 2
    assert int(lso.inner_optimizer.iterations.numpy()) == 0
    assert {float(np.max(np.abs(v.numpy()))) for v in lso.inner_optimizer.variables if "moment" in v.path} == {0.0}

    g = np.array([0.5, -1.0, 2.0], np.float32)
    step([ops.convert_to_tensor(g * (scale / 2))])  # scaled gradient: the optimizer sees g
    ref_var = keras.Variable(np.array([1.0, -2.0, 3.0], np.float32))
    ref = ko.Adam(0.1)
    ref.build([ref_var])
    ref.apply([ops.convert_to_tensor(g)], [ref_var])
    np.testing.assert_allclose(var.numpy(), ref_var.numpy(), rtol=4 * EPS["float32"])
    assert int(lso.inner_optimizer.iterations.numpy()) == 1


@pytest.mark.spec("eq18")
def test_eq18_loss_scale_optimizer_compiled():
    """A plain tf.function on TensorFlow, jax.jit (stateless) on JAX, eager on PyTorch."""
    var, lso = _loss_scale_pair()
    step = B.stepper(lso, [var], "graph" if B.TENSORFLOW else B.MODES[-1])
    step([ops.convert_to_tensor([np.nan, 1.0, 1.0])])
    np.testing.assert_array_equal(var.numpy(), [1.0, -2.0, 3.0])
    step([ops.convert_to_tensor([1.0, 1.0, 1.0])])
    assert np.all(var.numpy() < [1.0, -2.0, 3.0])


@pytest.mark.spec("eq18", "eq20")
def test_eq18_eq20_mixed_precision_model_fit_reduces_the_loss(policy):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = (x @ rng.normal(size=(8, 1))).astype(np.float32)
    inp = keras.Input((8,))
    h = L.BatchNormalization()(keras.layers.Dense(16, kernel_initializer=ki.GlorotUniform(seed=0))(inp))
    h = L.Dropout(0.1, seed=1)(keras.layers.ReLU()(h))
    out = keras.layers.Dense(1, dtype="float32")(h)  # float32 output for the loss
    model = keras.Model(inp, out)
    model.compile(optimizer=ko.Adam(1e-2), loss="mse", jit_compile=B.JIT_COMPILE)
    if policy.name == "mixed_float16":  # Keras wraps the optimizer in a LossScaleOptimizer
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.optimizer.inner_optimizer, ko.Adam)
    else:  # bfloat16 has float32's exponent range: no loss scaling
        assert isinstance(model.optimizer, ko.Adam)
    assert model.layers[1].compute_dtype == policy.compute_dtype
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, batch_size=32, verbose=0, shuffle=False)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.5 * before, (before, after)
    assert model.layers[2].moving_mean.dtype == "float32"


X_IMG = np.random.default_rng(5).normal(1.0, 2.0, size=(4, 8, 8, 3)).astype(np.float32)

LAYERS = {
    "batchnorm": lambda: L.BatchNormalization(momentum=0.5),
    "dropout": lambda: L.Dropout(0.3, seed=3),
    "input_noise": lambda: L.InputNoise(0.5, seed=3),
    "random_crop": lambda: L.RandomCrop(6, 5, seed=3),
    "random_flip": lambda: L.RandomFlip(seed=3),
    "random_rotation": lambda: L.RandomRotation(max_angle_degrees=30, seed=3),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.spec("eq20", "dropout", "input_noise", "random_crop", "random_flip", "random_rotation")
def test_layers_under_mixed_precision(policy, name):
    """Output in the policy's compute dtype, variables float32 / int32, values = the float32 layer's
    (same seed) within the error of rounding input and output to the compute dtype."""
    compute = policy.compute_dtype
    layer = LAYERS[name]()
    keras.mixed_precision.set_global_policy("float32")
    reference = LAYERS[name]()
    x_low = np.asarray(keras.ops.cast(keras.ops.cast(X_IMG, compute), "float32"))
    for training in (True, False):
        y = layer(X_IMG, training=training)
        assert _dtype(y) == compute, (name, training, y.dtype)
        want = keras.ops.convert_to_numpy(reference(x_low, training=training))
        got = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))
        # BN divides by sigma (about 2): 8 eps of the output scale; the others round twice (x, y)
        bound = (8 if name == "batchnorm" else 4) * EPS[compute] * float(np.max(np.abs(want)))
        np.testing.assert_allclose(got, want, rtol=0, atol=bound)
    for v in layer.weights:
        assert v.dtype in ("float32", "int32"), (v.path, v.dtype)


def _law(name, shape):
    fan_in, fan_out = shape
    if name == "glorot":
        b = float(corrected.eq01_glorot_uniform_bound(fan_in, fan_out))
    elif name in ("torch", "torch_bias"):
        b = float(printed.eq02_he_uniform_bound(fan_in))
    if name != "flax":
        return b * b / 3.0, stats.UNIFORM_KURTOSIS, b
    sigma = float(corrected.eq03_lecun_normal_sigma(fan_in))
    m2, _ = stats.truncated_standard_normal_moments(2.0)
    return sigma ** 2 * m2, stats.truncated_normal_kurtosis(2.0), 2.0 * sigma


INITIALIZERS = {"glorot": lambda s: ki.GlorotUniform(seed=s), "torch": lambda s: ki.TorchDefault(seed=s),
                "torch_bias": lambda s: ki.TorchDefaultBias(200, seed=s), "flax": lambda s: ki.FlaxDefault(seed=s)}
INIT_SHAPE = (200, 300)  # 6e4 draws


def _accepts(w, dtype, var, kurt, bound):
    """Support within the bound rounded to ``dtype``; variance z-test with an allowance of one relative
    ``eps(dtype)`` of the variance for rounding each draw to the dtype; mean within 5 standard errors."""
    w = np.asarray(w, np.float64).ravel()
    eps = EPS[dtype]
    se = var * math.sqrt((kurt - 1.0) / w.size)
    return (np.max(np.abs(w)) <= bound * (1 + eps)
            and abs(np.mean(w * w) - var) <= stats.Z_LIMIT * se + eps * var
            and abs(np.mean(w)) <= stats.Z_LIMIT * math.sqrt(var / w.size) + eps * bound)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("name", sorted(INITIALIZERS))
@pytest.mark.spec("eq01", "eq02", "eq03")
def test_eq01_eq02_eq03_initializers_honour_the_dtype(name, dtype):
    var, kurt, bound = _law(name, INIT_SHAPE)
    w = INITIALIZERS[name](7)(INIT_SHAPE, dtype=dtype)
    assert keras.backend.standardize_dtype(w.dtype) == dtype
    w = np.asarray(keras.ops.cast(w, "float32"))
    assert _accepts(w, dtype, var, kurt, bound)
    assert not _accepts(1.1 * w, dtype, var, kurt, bound)  # a generator 10% too wide is rejected


@pytest.mark.spec("eq01")
def test_eq01_initializer_under_mixed_policy_builds_float32_kernels(policy):
    layer = keras.layers.Dense(4, kernel_initializer=ki.GlorotUniform(seed=0))
    layer.build((None, 3))
    assert layer.kernel.dtype == "float32"
    np.testing.assert_array_equal(layer.kernel.numpy(), np.asarray(ki.GlorotUniform(seed=0)((3, 4), "float32")))
