"""RandomCrop and RandomRotation against keras_optreg_spec.unnumbered (random_crop, random_rotation_bilinear,
random_rotation with every fill mode and interpolation, fill_index)."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_optreg_spec.unnumbered as su
from keras_optreg import layers as L
from keras_optreg._math import images as m
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg.conformance.strategies import IMAGE_SHAPE_BUCKETS, arrays, as_float32, floats
from tests import layer_checks as lc
from tests.backend import TENSORFLOW

CROPS = {(2, 8, 8, 1): (5, 3), (3, 9, 7, 2): (9, 4), (4, 16, 16, 3): (12, 12)}


@pytest.mark.spec("random_crop")
@given(st.sampled_from(IMAGE_SHAPE_BUCKETS), st.data())
def test_random_crop_math_matches_spec(shape, data):
    n, h, w, _ = shape
    ch, cw = CROPS[shape]
    x = data.draw(arrays(shape, dtype=np.float32))
    oh = np.array(data.draw(st.lists(st.integers(0, h - ch), min_size=n, max_size=n)))
    ow = np.array(data.draw(st.lists(st.integers(0, w - cw), min_size=n, max_size=n)))
    assert_matches_spec(m.random_crop(x, ch, cw, oh, ow), su.random_crop(x, ch, cw, oh, ow), eq="random_crop",
                    inputs=dict(x=x, oh=oh, ow=ow), rtol=0)


@pytest.fixture(scope="module")
def crop_fns():
    layers = {s: L.RandomCrop(*CROPS[s], seed=2) for s in IMAGE_SHAPE_BUCKETS}
    return {s: lc.compiled_call(lay) for s, lay in layers.items()}


@given(st.sampled_from(IMAGE_SHAPE_BUCKETS), st.data())
@pytest.mark.spec("random_crop")
def test_random_crop_is_a_sub_window_of_its_input(crop_fns, shape, data):
    n, h, w, _ = shape
    ch, cw = CROPS[shape]
    x = data.draw(arrays(shape, dtype=np.float32))
    y = lc.numpy(crop_fns[shape](x))
    assert y.shape == (n, ch, cw, shape[3])
    for b in range(n):
        assert any(np.array_equal(y[b], x[b, i:i + ch, j:j + cw]) for i in range(h - ch + 1)
                   for j in range(w - cw + 1))


@pytest.mark.spec("random_crop")
def test_random_crop_centre_at_inference_and_offsets_cover_the_range():
    x = np.arange(2 * 9 * 7, dtype=np.float32).reshape(2, 9, 7, 1)
    layer = L.RandomCrop(4, 4, seed=0)
    oh, ow = su.center_crop_offsets(9, 4), su.center_crop_offsets(7, 4)
    assert_matches_spec(layer(x, training=False), su.random_crop(x, 4, 4, [oh, oh], [ow, ow]), eq="random_crop", rtol=0)
    big = np.tile(x[:1], (512, 1, 1, 1))
    y = np.asarray(layer(big, training=True))
    starts = {(int(v // 7), int(v % 7)) for v in y[:, 0, 0, 0]}
    assert starts == {(i, j) for i in range(6) for j in range(4)}  # every offset 0..H-h, 0..W-w is drawn


angles = st.floats(-np.pi, np.pi)


@pytest.mark.spec("random_rotation")
@given(st.sampled_from(IMAGE_SHAPE_BUCKETS), st.data(), st.floats(-10, 10, width=32))
def test_random_rotation_math_matches_spec(shape, data, fill):
    x = data.draw(arrays(shape, -10, 10, dtype=np.float32))
    th = as_float32(data.draw(st.lists(angles, min_size=shape[0], max_size=shape[0])))
    got = m.random_rotation_bilinear(x, th.astype(np.float32), fill)
    # float32 sampling coordinates: ~2**-24 * size error in the weights, times |values| <= 10, times 4
    assert_matches_spec(got, su.random_rotation_bilinear(x, th, fill), eq="random_rotation",
                    inputs=dict(x=x, angles=th, fill=fill), rtol=0, atol=2e-4)


@pytest.mark.spec("random_rotation")
def test_random_rotation_by_zero_is_identity_and_by_90_degrees_is_rot90():
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(m.random_rotation_bilinear(x, np.zeros(2, np.float32))), x, atol=1e-6)
    y = np.asarray(m.random_rotation_bilinear(x, np.full(2, np.pi / 2, np.float32)))
    np.testing.assert_allclose(y[:, 1:-1, 1:-1], np.rot90(x, k=1, axes=(1, 2))[:, 1:-1, 1:-1], atol=1e-5)
    assert not np.allclose(y, x, atol=1e-3)


def _dot_angles(layer, n=256):
    """Rotate a one-pixel dot one step right of centre; the centroid's angle is each image's rotation (degrees)."""
    x = np.zeros((n, 21, 21, 1), np.float32)
    x[:, 10, 15, 0] = 1.0
    y = np.asarray(layer(x, training=True))[..., 0]
    yy, xx = np.mgrid[:21, :21]
    mx, my = (y * xx).sum((1, 2)) / y.sum((1, 2)) - 10, (y * yy).sum((1, 2)) / y.sum((1, 2)) - 10
    return np.degrees(np.arctan2(-my, mx))  # counter-clockwise as displayed (row 0 on top)


@pytest.mark.spec("random_rotation")
def test_random_rotation_angles_stay_within_the_bound():
    theta = _dot_angles(L.RandomRotation(max_angle_degrees=20, fill_mode="constant", seed=1))
    assert np.all(np.abs(theta) < 20.5) and theta.max() > 15 and theta.min() < -15


@pytest.mark.spec("random_rotation")
def test_random_rotation_fill_index_math_matches_spec():
    n_values = (1, 2, 5)
    positions = np.arange(-23, 24)
    for mode in m.FILL_MODES:
        for n in n_values:
            got = np.asarray(m.fill_index(keras.ops.convert_to_tensor(positions, "int32"), n, mode))
            want = np.array([su.fill_index(i, n, mode) for i in positions])
            inside = want >= 0  # constant: the spec marks outside reads -1, the library clamps (and masks later)
            np.testing.assert_array_equal(got[inside], want[inside], err_msg=f"{mode}, n={n}")


ROT_SHAPES = ((2, 6, 6, 1), (2, 7, 5, 2))


@pytest.mark.spec("random_rotation")
@given(shape=st.sampled_from(ROT_SHAPES), fill_mode=st.sampled_from(m.FILL_MODES),
       interpolation=st.sampled_from(m.INTERPOLATIONS), data=st.data())
def test_random_rotation_fill_modes_and_interpolations_match_spec(shape, fill_mode, interpolation, data):
    x = data.draw(arrays(shape, -10, 10, dtype=np.float32))
    th = as_float32(data.draw(st.lists(angles, min_size=shape[0], max_size=shape[0])))
    fill = float(as_float32(data.draw(floats(-10, 10))))
    got = np.asarray(m.random_rotation(x, th.astype(np.float32), fill_mode, interpolation, fill), np.float64)
    want = su.random_rotation(x, th, fill_mode, interpolation, fill)
    if interpolation == "bilinear":  # float32 coordinates: ~2**-24 * size in the weights, times |values| <= 10, x4
        assert_matches_spec(got, want, eq="random_rotation", inputs=dict(x=x, angles=th, fill=fill), rtol=0, atol=2e-4)
        return
    # nearest: a sample coordinate within 1e-4 of a half-integer may round either way in float32 (its error is
    # ~size * 2**-23 < 1e-5 here); every other pixel must be the spec's exactly
    n, h, w, _ = shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    decided = np.ones((n, h, w), bool)
    for b in range(n):
        c, s_ = np.cos(th[b]), np.sin(th[b])
        for coord in (cx + c * (xx - cx) - s_ * (yy - cy), cy + s_ * (xx - cx) + c * (yy - cy)):
            decided[b] &= np.abs((coord % 1.0) - 0.5) > 1e-4
    assert decided.mean() > 0.9
    assert_matches_spec(got[decided], want[decided], eq="random_rotation", inputs=dict(x=x, angles=th), rtol=0)


@pytest.mark.parametrize("interpolation", m.INTERPOLATIONS)
@pytest.mark.parametrize("fill_mode", m.FILL_MODES)
@pytest.mark.spec("random_rotation")
def test_random_rotation_every_fill_mode_and_interpolation_compiles_under_xla(fill_mode, interpolation):
    def make():
        return L.RandomRotation(0.2, fill_mode=fill_mode, interpolation=interpolation, fill_value=-1.0, seed=3)

    want = np.asarray(make()(IMG, training=True))
    layer = make()
    got = lc.numpy(lc.compiled_call(layer)(IMG))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)  # the same XLA kernel, inlined or called


@pytest.mark.spec("random_rotation")
def test_random_rotation_spec_forms_agree():
    """The pixel-by-pixel random_rotation with constant fill is the vectorised random_rotation_bilinear."""
    x = np.random.default_rng(4).normal(size=(2, 7, 6, 2))
    th = np.array([0.3, -2.0])
    np.testing.assert_allclose(su.random_rotation(x, th, "constant", "bilinear", 0.5),
                               su.random_rotation_bilinear(x, th, 0.5), rtol=0, atol=1e-12)


@pytest.mark.spec("random_rotation")
def test_random_rotation_factor_is_a_fraction_of_a_full_turn():
    """Keras' factor: (-0.05, 0.02) turns = (-18, 7.2) degrees, drawn across the whole range."""
    theta = _dot_angles(L.RandomRotation((0.02, -0.05), fill_mode="constant", seed=2))  # sorted, as Keras does
    assert theta.min() > -18.5 and theta.max() < 7.7 and theta.min() < -16 and theta.max() > 5
    layer = L.RandomRotation(0.05, seed=0)
    assert layer.factor == (-0.05, 0.05) and layer.get_config()["factor"] == [-0.05, 0.05]
    fixed = _dot_angles(L.RandomRotation((0.05, 0.05), fill_mode="constant", seed=2), n=4)
    np.testing.assert_allclose(fixed, 18.0, atol=0.5)  # lower = upper: that rotation every time


IMG = np.random.default_rng(0).normal(size=IMAGE_SHAPE_BUCKETS[1]).astype(np.float32)
MAKERS = {"crop": lambda: L.RandomCrop(5, 4, seed=7),
          "rotation": lambda: L.RandomRotation(max_angle_degrees=15, seed=7)}


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.spec("random_crop", "random_rotation")
def test_random_crop_and_random_rotation_keras_integration(name, tmp_path):
    layer = lc.keras_integration(MAKERS[name], IMG, tmp_path)
    assert int(layer.rng_state.numpy()[1]) == 3


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.spec("random_crop", "random_rotation")
@pytest.mark.tensorflow_only("tf.data: Dataset.map traces the layer into a TensorFlow graph")
def test_random_crop_and_random_rotation_in_tf_data_map(name):
    lc.tf_data_map_advances(MAKERS[name], IMG)


@pytest.mark.spec("random_rotation")
def test_random_rotation_keras_integration():
    # named for the spec id; the shared checks run in the parametrized test above
    assert np.array_equal(np.asarray(MAKERS["rotation"]()(IMG, training=False)), IMG)


@pytest.mark.parametrize("augment", [lambda: L.RandomCrop(6, 6, seed=1), lambda: L.RandomRotation(0.1, seed=1)],
                         ids=["crop", "rotation"])
@pytest.mark.spec("random_crop", "random_rotation")
def test_random_crop_random_rotation_uint8_input_into_conv2d_fits(augment):
    """Issue 12 bug 4: Input(dtype="uint8") -> augmentation -> Conv2D builds and trains (float32 between)."""
    inp = keras.Input((8, 8, 1), dtype="uint8")
    h = augment()(inp)
    assert h.dtype == "float32"
    h = keras.layers.Conv2D(2, 3, kernel_initializer=keras.initializers.GlorotUniform(0))(h)
    model = keras.Model(inp, keras.layers.Dense(1)(keras.layers.Flatten()(h)))
    model.compile(optimizer="sgd", loss="mse", jit_compile=lc.FIT_JIT)
    x = np.random.default_rng(0).integers(0, 256, size=(8, 8, 8, 1)).astype(np.uint8)
    hist = model.fit(x, np.zeros((8, 1), np.float32), epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(hist.history["loss"][0])


@pytest.mark.parametrize("interpolation", m.INTERPOLATIONS)
@pytest.mark.spec("random_rotation")
def test_random_rotation_fill_modes_agree_with_keras_except_wrap(interpolation):
    """Fixed angles ((f, f) turns: no randomness): reflect, nearest and constant give Keras' RandomRotation
    output to float32 rounding of the sample coordinates; wrap is the documented deviation on TensorFlow (its
    kernel clamps a coordinate within a pixel of the seam, so it reads the far edge's pixel); Keras' JAX and
    PyTorch backends wrap as the spec does, so there wrap agrees too."""
    x = np.random.default_rng(0).uniform(size=(1, 9, 7, 1)).astype(np.float32)
    for f in (0.1,):
        for mode in m.FILL_MODES:
            ours = np.asarray(L.RandomRotation((f, f), fill_mode=mode, interpolation=interpolation, seed=1)(x))
            twin = np.asarray(keras.layers.RandomRotation((f, f), fill_mode=mode, interpolation=interpolation,
                                                          seed=1)(x))
            if mode == "wrap" and TENSORFLOW:
                assert np.abs(ours - twin).max() > 0.1, f
            else:
                np.testing.assert_allclose(ours, twin, rtol=0, atol=1e-5, err_msg=f"{mode}, factor {f}")
