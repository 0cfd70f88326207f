"""RandomCrop and RandomRotation against keras_optreg_spec.unnumbered (random_crop, random_rotation_bilinear)."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

import keras_optreg_spec.unnumbered as su
from keras_optreg import layers as L
from keras_optreg._math import layers as m
from tests import layer_checks as lc
from tests.assertions import assert_conforms
from tests.strategies import IMAGE_SHAPE_BUCKETS, arrays, as_float32

CROPS = {(2, 8, 8, 1): (5, 3), (3, 9, 7, 2): (9, 4), (4, 16, 16, 3): (12, 12)}


@given(st.sampled_from(IMAGE_SHAPE_BUCKETS), st.data())
def test_random_crop_math_matches_spec(shape, data):
    n, h, w, _ = shape
    ch, cw = CROPS[shape]
    x = data.draw(arrays(shape, dtype=np.float32))
    oh = np.array(data.draw(st.lists(st.integers(0, h - ch), min_size=n, max_size=n)))
    ow = np.array(data.draw(st.lists(st.integers(0, w - cw), min_size=n, max_size=n)))
    assert_conforms(m.random_crop(x, ch, cw, oh, ow), su.random_crop(x, ch, cw, oh, ow), eq="random_crop",
                    inputs=dict(x=x, oh=oh, ow=ow), rtol=0)


@pytest.fixture(scope="module")
def crop_fns():
    layers = {s: L.RandomCrop(*CROPS[s], seed=2) for s in IMAGE_SHAPE_BUCKETS}
    return {s: tf.function(lambda t, lay=lay: lay(t, training=True), jit_compile=True) for s, lay in layers.items()}


@given(st.sampled_from(IMAGE_SHAPE_BUCKETS), st.data())
def test_random_crop_is_a_sub_window_of_its_input(crop_fns, shape, data):
    n, h, w, _ = shape
    ch, cw = CROPS[shape]
    x = data.draw(arrays(shape, dtype=np.float32))
    y = np.asarray(crop_fns[shape](tf.constant(x)))
    assert y.shape == (n, ch, cw, shape[3])
    for b in range(n):
        assert any(np.array_equal(y[b], x[b, i:i + ch, j:j + cw]) for i in range(h - ch + 1)
                   for j in range(w - cw + 1))


def test_random_crop_centre_at_inference_and_offsets_cover_the_range():
    x = np.arange(2 * 9 * 7, dtype=np.float32).reshape(2, 9, 7, 1)
    layer = L.RandomCrop(4, 4, seed=0)
    oh, ow = su.center_crop_offsets(9, 4), su.center_crop_offsets(7, 4)
    assert_conforms(layer(x, training=False), su.random_crop(x, 4, 4, [oh, oh], [ow, ow]), eq="random_crop", rtol=0)
    big = np.tile(x[:1], (512, 1, 1, 1))
    y = np.asarray(layer(big, training=True))
    starts = {(int(v // 7), int(v % 7)) for v in y[:, 0, 0, 0]}
    assert starts == {(i, j) for i in range(6) for j in range(4)}  # every offset 0..H-h, 0..W-w is drawn


def test_random_crop_rejects_small_input_and_bad_arguments():
    with pytest.raises(ValueError, match="at least"):
        L.RandomCrop(10, 3)(np.zeros((1, 8, 8, 1), np.float32), training=True)
    for kwargs, error in ((dict(height=0, width=3), ValueError), (dict(height=2.5, width=3), TypeError)):
        with pytest.raises(error, match="Received"):
            L.RandomCrop(**kwargs)


angles = st.floats(-np.pi, np.pi)


@given(st.sampled_from(IMAGE_SHAPE_BUCKETS), st.data(), st.floats(-10, 10, width=32))
def test_random_rotation_math_matches_spec(shape, data, fill):
    x = data.draw(arrays(shape, -10, 10, dtype=np.float32))
    th = as_float32(data.draw(st.lists(angles, min_size=shape[0], max_size=shape[0])))
    got = m.random_rotation_bilinear(x, th.astype(np.float32), fill)
    # float32 sampling coordinates: ~2**-24 * size error in the weights, times |values| <= 10, times 4
    assert_conforms(got, su.random_rotation_bilinear(x, th, fill), eq="random_rotation",
                    inputs=dict(x=x, angles=th, fill=fill), rtol=0, atol=2e-4)


def test_random_rotation_by_zero_is_identity_and_by_90_degrees_is_rot90():
    x = np.random.default_rng(0).normal(size=(2, 9, 9, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(m.random_rotation_bilinear(x, np.zeros(2, np.float32))), x, atol=1e-6)
    y = np.asarray(m.random_rotation_bilinear(x, np.full(2, np.pi / 2, np.float32)))
    np.testing.assert_allclose(y[:, 1:-1, 1:-1], np.rot90(x, k=1, axes=(1, 2))[:, 1:-1, 1:-1], atol=1e-5)
    assert not np.allclose(y, x, atol=1e-3)


def test_random_rotation_angles_stay_within_the_bound():
    # A one-pixel dot one step right of centre moves to angle theta: recover |theta| <= max.
    x = np.zeros((256, 21, 21, 1), np.float32)
    x[:, 10, 15, 0] = 1.0
    layer = L.RandomRotation(max_angle_degrees=20, seed=1)
    y = np.asarray(layer(x, training=True))[..., 0]
    yy, xx = np.mgrid[:21, :21]
    mx, my = (y * xx).sum((1, 2)) / y.sum((1, 2)) - 10, (y * yy).sum((1, 2)) / y.sum((1, 2)) - 10
    theta = np.degrees(np.arctan2(-my, mx))  # counter-clockwise as displayed (row 0 on top)
    assert np.all(np.abs(theta) < 20.5) and theta.max() > 15 and theta.min() < -15


@pytest.mark.parametrize("kwargs", [
    dict(), dict(max_angle_degrees=10, max_angle_radians=0.1), dict(max_angle_degrees=-1),
    dict(max_angle_radians=float("nan")), dict(max_angle_degrees=10, fill_mode="reflect"),
    dict(max_angle_degrees=10, interpolation="nearest")])
def test_random_rotation_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Received"):
        L.RandomRotation(**kwargs)


IMG = np.random.default_rng(0).normal(size=IMAGE_SHAPE_BUCKETS[1]).astype(np.float32)
MAKERS = {"crop": lambda: L.RandomCrop(5, 4, seed=7),
          "rotation": lambda: L.RandomRotation(max_angle_degrees=15, seed=7)}


@pytest.mark.parametrize("name", list(MAKERS))
def test_random_crop_and_random_rotation_keras_integration(name, tmp_path):
    layer = lc.keras_integration(MAKERS[name], IMG, tmp_path)
    assert int(layer.rng_state.numpy()[1]) == 3


def test_random_rotation_keras_integration():
    # named for the spec id; the shared checks run in the parametrized test above
    assert np.array_equal(np.asarray(MAKERS["rotation"]()(IMG, training=False)), IMG)
