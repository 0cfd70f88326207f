"""Bad-input rows: the layers (construction, build, call), issue 13's cases and the classes around them.

A row either expects a clear error (the words its message must contain) or a correct result that
``check`` asserts. ``keras`` notes what the Keras twin does with the same input, where it was tried.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_optreg import layers as L
from tests.backend import TENSORFLOW
from tests.badinput import Case

NAN, INF = float("nan"), float("inf")
IMG = np.random.default_rng(0).uniform(0, 255, size=(2, 8, 8, 3)).astype(np.float32)


def _call(layer, x, **kwargs):
    return np.asarray(layer(x, **kwargs))


def _dynamic(layer, x, jit=False):
    """``layer`` traced with unknown height and width (the sizes are known only at run time: TensorFlow only)."""
    import tensorflow as tf

    spec = tf.TensorSpec((None, None, None, x.shape[-1]), tf.as_dtype(x.dtype))
    return np.asarray(tf.function(lambda t: layer(t, training=True), input_signature=[spec], jit_compile=jit)(x))


def _flat_uint8(layer_fn, training=True):
    x = np.full((2, 12, 12, 1), 200, np.uint8)
    return layer_fn()(x, training=training)


def _check_float32_close_to_200(y):
    y = np.asarray(y)
    assert y.dtype == np.float32, y.dtype
    inner = y[:, 3:-3, 3:-3]
    np.testing.assert_allclose(inner, 200.0, rtol=0, atol=1e-3)  # no truncation to 199


def _check_dropped_or_scaled(y, scaled):
    # uint8 * float32(1/0.7) cast back to uint8 would give 7, not 10
    assert keras.backend.standardize_dtype(y.dtype) == "float32", y.dtype
    values = np.unique(keras.ops.convert_to_numpy(y))
    assert len(values) == 2 and values[0] == 0.0 and abs(values[1] - scaled) <= 2e-6 * scaled, values


def _check_noisy_float32(y):
    y = np.asarray(y)
    assert y.dtype == np.float32 and np.std(y - 200.0) > 1.0, (y.dtype, np.std(y - 200.0))


def _check_normalised(y):
    # per channel: mean 0 and variance s2 / (s2 + eps) = 1 - 2e-7 for s2 ~ 255**2 / 12, up to float32
    # rounding of sums over 144 values (~144 * 2**-24 relative); truncation to uint8 would leave integers
    np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.var(axis=(0, 1, 2)), 1.0, atol=1e-4)


def _bn_uint8():
    x = np.random.default_rng(1).integers(0, 256, size=(4, 6, 6, 3)).astype(np.uint8)
    y = L.BatchNormalization()(x, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "float32", y.dtype
    return keras.ops.convert_to_numpy(y).astype(np.float64)


def _bn_after_a_nan_batch():
    """Six batches, the third with one NaN in channel 1; the same layer fed the batches without it
    (``skipped``) and with the clean third batch (``clean``)."""
    rng = np.random.default_rng(2)
    batches = [rng.normal(3.0, 2.0, size=(8, 4)).astype(np.float32) for _ in range(6)]
    bad = batches[2].copy()
    bad[0, 1] = NAN
    layers = {k: L.BatchNormalization(momentum=0.5) for k in ("hit", "skipped", "clean")}
    for i, x in enumerate(batches):
        layers["hit"](bad if i == 2 else x, training=True)
        layers["clean"](x, training=True)
        if i != 2:
            layers["skipped"](x, training=True)
    return {k: (v.moving_mean.numpy(), v.moving_variance.numpy()) for k, v in layers.items()}


def _check_bn_nan_policy(stats):
    """Channel 1 kept its statistics through the NaN batch (= never saw it); channels 0, 2, 3 took it."""
    for i in range(2):
        hit, skipped, clean = (stats[k][i] for k in ("hit", "skipped", "clean"))
        np.testing.assert_allclose(hit[1], skipped[1], rtol=1e-6)
        np.testing.assert_allclose(np.delete(hit, 1), np.delete(clean, 1), rtol=1e-6)
        assert abs(hit[1] - clean[1]) > 1e-3  # the two references differ: the check can fail


def _check_nan_outside(y):
    assert np.isnan(y[:, 8:, :, :]).all() and np.isfinite(y[:, :8, :, :]).all(), "window rows past the image"


CASES = [
    # ---- Dropout --------------------------------------------------------------------------------------
    Case("layers/dropout-rate-nan", lambda: L.Dropout(NAN), ValueError, ("rate", "nan")),
    Case("layers/dropout-rate-one", lambda: L.Dropout(1.0), ValueError, ("rate", "1.0"),
         keras="accepted: all zeros (the equation divides by 1 - rate)"),
    Case("layers/dropout-rate-negative", lambda: L.Dropout(-0.1), ValueError, ("rate", "-0.1")),
    Case("layers/dropout-rate-string", lambda: L.Dropout("0.5"), TypeError, ("rate", "'0.5'")),
    Case("layers/dropout-seed-negative", lambda: L.Dropout(0.5, seed=-1), ValueError, ("seed", "-1")),
    Case("layers/dropout-seed-too-large", lambda: L.Dropout(0.5, seed=2 ** 31), ValueError, ("seed", "2147483648")),
    Case("layers/dropout-seed-float", lambda: L.Dropout(0.5, seed=1.5), TypeError, ("seed", "1.5")),
    Case("layers/dropout-noise-shape-zero", lambda: L.Dropout(0.5, noise_shape=(0,)), ValueError,
         ("noise_shape", "(0,)")),
    Case("layers/dropout-noise-shape-string", lambda: L.Dropout(0.5, noise_shape="2,3"), TypeError,
         ("noise_shape", "'2,3'")),
    Case("layers/dropout-noise-shape-float", lambda: L.Dropout(0.5, noise_shape=(2, 1.5)), TypeError,
         ("noise_shape", "1.5")),
    Case("layers/dropout-noise-shape-does-not-broadcast",
         lambda: L.Dropout(0.5, noise_shape=(2, 2, 4))(np.ones((2, 3, 4), np.float32), training=True), ValueError,
         ("noise_shape", "(2, 2, 4)", "(2, 3, 4)"), keras="SelectV2 / broadcast error from TensorFlow"),
    Case("layers/dropout-noise-shape-does-not-broadcast-symbolic",
         lambda: L.Dropout(0.5, noise_shape=(None, 2, 4))(keras.Input((3, 4))), ValueError,
         ("noise_shape", "(None, 2, 4)", "(None, 3, 4)")),
    Case("layers/dropout-noise-shape-wrong-rank",
         lambda: L.Dropout(0.5, noise_shape=(2, 1))(np.ones((2, 3, 4), np.float32), training=True), ValueError,
         ("noise_shape", "rank 3")),
    Case("layers/dropout-uint8-input", lambda: L.Dropout(0.3, seed=1)(np.full((4, 64), 7, np.uint8), training=True),
         None, check=lambda y: _check_dropped_or_scaled(y, 7.0 / 0.7)),
    # ---- InputNoise -----------------------------------------------------------------------------------
    Case("layers/input-noise-1e39", lambda: L.InputNoise(1e39), ValueError, ("stddev", "1e+39", "float32"),
         keras="rejected (stddev <= 1)"),
    Case("layers/input-noise-70000-under-float16", lambda: L.InputNoise(7e4, dtype="float16"), ValueError,
         ("stddev", "70000.0", "float16")),
    Case("layers/input-noise-inf", lambda: L.InputNoise(INF), ValueError, ("stddev", "inf")),
    Case("layers/input-noise-negative", lambda: L.InputNoise(-1.0), ValueError, ("stddev", "-1.0")),
    Case("layers/input-noise-none", lambda: L.InputNoise(None), TypeError, ("stddev", "None")),
    Case("layers/input-noise-uint8-adds-noise", lambda: _flat_uint8(lambda: L.InputNoise(5.0, seed=2)), None,
         check=_check_noisy_float32, keras="float32 with noise (the library returned uint8 without noise)"),
    # ---- BatchNormalization -----------------------------------------------------------------------------
    Case("layers/bn-axis-repeated", lambda: L.BatchNormalization(axis=(3, 3)), ValueError, ("axis", "(3, 3)")),
    Case("layers/bn-axis-same-axis-twice",
         lambda: L.BatchNormalization(axis=(-1, 3))(np.ones((2, 2, 2, 4), np.float32)), ValueError,
         ("axis", "(-1, 3)", "distinct")),
    Case("layers/bn-axis-out-of-range", lambda: L.BatchNormalization(axis=4)(np.ones((2, 2, 2, 4), np.float32)),
         ValueError, ("axis", "4", "rank-4")),
    Case("layers/bn-axis-batch", lambda: L.BatchNormalization(axis=0)(np.ones((2, 3), np.float32)), ValueError,
         ("axis", "0", "batch axis")),
    Case("layers/bn-axis-string", lambda: L.BatchNormalization(axis="x"), TypeError, ("axis", "'x'")),
    Case("layers/bn-momentum-one", lambda: L.BatchNormalization(momentum=1.0), ValueError, ("momentum", "1.0")),
    Case("layers/bn-epsilon-zero", lambda: L.BatchNormalization(epsilon=0.0), ValueError, ("epsilon", "0.0")),
    Case("layers/bn-epsilon-nan", lambda: L.BatchNormalization(epsilon=NAN), ValueError, ("epsilon", "nan")),
    Case("layers/bn-center-int", lambda: L.BatchNormalization(center=1), TypeError, ("center", "1")),
    Case("layers/bn-renorm", lambda: L.BatchNormalization(renorm=True), ValueError, ("renorm", "True")),
    Case("layers/bn-built-4d-called-2d", lambda: _built_bn()(np.ones((5, 2), np.float32)), ValueError,
         ("expected ndim=4", "found ndim=2", "(5, 2)"), keras="returned shape (1, 1, 5, 2) (the library too)"),
    Case("layers/bn-wrong-channel-count", lambda: _built_bn()(np.ones((2, 4, 4, 5), np.float32)), ValueError,
         ("axis 3", "value 3", "(2, 4, 4, 5)"), keras="InvalidArgumentError deep in TensorFlow"),
    Case("layers/bn-rank-too-small-for-axes", lambda: L.BatchNormalization(axis=(1, 2, 3))(np.ones((4, 3), np.float32)),
         ValueError, ("axis", "(1, 2, 3)", "rank-2"), keras="IndexError"),
    Case("layers/bn-mask-wrong-rank",
         lambda: L.BatchNormalization()(np.ones((2, 3, 4), np.float32), training=True, mask=np.ones((2, 3, 4), bool)),
         ValueError, ("mask", "(2, 3, 4)")),
    Case("layers/bn-static-batch-of-one-in-training", lambda: L.BatchNormalization()(np.ones((1, 3), np.float32),
                                                                                      training=True),
         ValueError, ("m >= 2", "(1, 3)"), keras="accepted: moving variance driven to 0"),
    Case("layers/bn-uint8-in-training", _bn_uint8, None, check=_check_normalised,
         keras="float32 (the library returned uint8, normalised values truncated)"),
    Case("layers/bn-one-nan-batch-does-not-poison-the-moving-statistics", _bn_after_a_nan_batch, None,
         check=_check_bn_nan_policy, keras="NaN moving statistics for good"),
    # ---- image layers -----------------------------------------------------------------------------------
    Case("layers/flip-mode-unknown", lambda: L.RandomFlip("diagonal"), ValueError, ("mode", "'diagonal'")),
    Case("layers/flip-data-format-unknown", lambda: L.RandomFlip(data_format="NHWC"), ValueError,
         ("data_format", "'NHWC'")),
    Case("layers/flip-rank-2", lambda: L.RandomFlip(seed=1)(np.ones((4, 5), np.float32)), ValueError,
         ("RandomFlip", "rank 2", "(4, 5)"), keras="axis 2 is out of bounds"),
    Case("layers/flip-rank-5", lambda: L.RandomFlip(seed=1)(np.ones((1, 2, 4, 5, 3), np.float32)), ValueError,
         ("RandomFlip", "rank 5")),
    Case("layers/crop-rank-2", lambda: L.RandomCrop(2, 2, seed=1)(np.ones((4, 5), np.float32)), ValueError,
         ("RandomCrop", "rank 2")),
    Case("layers/rotation-rank-2-symbolic", lambda: L.RandomRotation(0.1, seed=1)(keras.Input((5,))), ValueError,
         ("RandomRotation", "rank 2")),
    Case("layers/crop-height-zero", lambda: L.RandomCrop(0, 3), ValueError, ("height", "0")),
    Case("layers/crop-width-float", lambda: L.RandomCrop(3, 2.5), TypeError, ("width", "2.5")),
    Case("layers/crop-larger-than-the-image", lambda: L.RandomCrop(10, 3, seed=1)(IMG), ValueError,
         ("RandomCrop(10, 3)", "height 8")),
    Case("layers/crop-larger-than-the-image-at-inference", lambda: L.RandomCrop(3, 10, seed=1)(IMG, training=False),
         ValueError, ("RandomCrop(3, 10)", "width 8")),
    Case("layers/crop-uint8", lambda: L.RandomCrop(8, 8, seed=1)(IMG.astype(np.uint8)), None,
         check=lambda y: np.testing.assert_array_equal(np.asarray(y), IMG.astype(np.uint8).astype(np.float32))),
    Case("layers/rotation-factor-too-large", lambda: L.RandomRotation(1.5), ValueError, ("factor", "1.5")),
    Case("layers/rotation-factor-nan", lambda: L.RandomRotation(NAN), ValueError, ("factor", "nan")),
    Case("layers/rotation-factor-triple", lambda: L.RandomRotation((0.1, 0.2, 0.3)), TypeError,
         ("factor", "(0.1, 0.2, 0.3)")),
    Case("layers/rotation-factor-and-degrees", lambda: L.RandomRotation(0.1, max_angle_degrees=10), ValueError,
         ("factor", "max_angle_degrees")),
    Case("layers/rotation-no-range", lambda: L.RandomRotation(), ValueError, ("factor", "none of them")),
    Case("layers/rotation-degrees-negative", lambda: L.RandomRotation(max_angle_degrees=-1), ValueError,
         ("max_angle_degrees", "-1")),
    Case("layers/rotation-radians-nan", lambda: L.RandomRotation(max_angle_radians=NAN), ValueError,
         ("max_angle_radians", "nan")),
    Case("layers/rotation-fill-mode-unknown", lambda: L.RandomRotation(0.1, fill_mode="mirror"), ValueError,
         ("fill_mode", "'mirror'"), keras="NotImplementedError"),
    Case("layers/rotation-interpolation-unknown", lambda: L.RandomRotation(0.1, interpolation="bicubic"), ValueError,
         ("interpolation", "'bicubic'")),
    Case("layers/rotation-fill-value-1e39", lambda: L.RandomRotation(0.1, fill_value=1e39), ValueError,
         ("fill_value", "1e+39", "float32")),
    Case("layers/rotation-uint8-no-truncation",
         lambda: _flat_uint8(lambda: L.RandomRotation(max_angle_degrees=1e-3, fill_mode="nearest", seed=3)), None,
         check=_check_float32_close_to_200, keras="float32 (the library truncated: 7% of pixels became 199)"),
    Case("layers/rotation-uint8-no-truncation-bigger-angle",
         lambda: _flat_uint8(lambda: L.RandomRotation(0.05, fill_mode="reflect", seed=3)), None,
         check=_check_float32_close_to_200, keras="float32 (the library changed 51% of the pixels by truncation)"),
]


def _built_bn():
    layer = L.BatchNormalization()
    layer.build((None, 4, 4, 3))
    return layer

#: a size unknown until run time exists only in TensorFlow graphs (jax.jit and PyTorch see concrete shapes)
DYNAMIC = ("tf.function input signatures with unknown dimensions are TensorFlow's (JAX and PyTorch trace concrete "
           "shapes)")


def _invalid_argument():
    if not TENSORFLOW:
        return RuntimeError  # the row is skipped there
    import tensorflow as tf

    return tf.errors.InvalidArgumentError


CASES += [
    Case("layers/crop-larger-than-the-image-dynamic", lambda: _dynamic(L.RandomCrop(10, 3, seed=1), IMG),
         _invalid_argument(), ("RandomCrop(10, 3)", "at least that large"),
         keras="resized; the library returned a crop padded with repeated edge pixels", tensorflow_only=DYNAMIC),
    Case("layers/crop-larger-than-the-image-dynamic-xla",
         lambda: _dynamic(L.RandomCrop(10, 3, seed=1), IMG, jit=True), None, check=_check_nan_outside,
         tensorflow_only=DYNAMIC),
]
