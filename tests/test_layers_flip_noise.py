"""RandomFlip and InputNoise against keras_optreg_spec.unnumbered (random_flip_left_right, input_noise)."""

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
from tests.strategies import IMAGE_SHAPE_BUCKETS, SHAPE_BUCKETS, arrays, as_float32, log_uniform


@given(st.sampled_from(IMAGE_SHAPE_BUCKETS), st.data())
def test_random_flip_math_matches_spec(shape, data):
    x = data.draw(arrays(shape, dtype=np.float32))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0])))
    assert_conforms(m.random_flip_left_right(x, mask), su.random_flip_left_right(x, mask), eq="random_flip",
                    inputs=dict(x=x, mask=mask), rtol=0)


@pytest.fixture(scope="module")
def flip_fn():
    layer = L.RandomFlip(seed=4)
    return tf.function(lambda t: layer(t, training=True), jit_compile=True)


@given(st.sampled_from(IMAGE_SHAPE_BUCKETS), st.data())
def test_random_flip_twice_with_same_mask_is_identity_and_each_image_is_flipped_or_not(flip_fn, shape, data):
    x = data.draw(arrays(shape, dtype=np.float32))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0])))
    np.testing.assert_array_equal(np.asarray(m.random_flip_left_right(m.random_flip_left_right(x, mask), mask)), x)
    y = np.asarray(flip_fn(tf.constant(x)))
    for b in range(shape[0]):
        assert np.array_equal(y[b], x[b]) or np.array_equal(y[b], x[b, :, ::-1])


def test_random_flip_probability_is_one_half():
    n = 4096
    x = np.tile(np.arange(2, dtype=np.float32).reshape(1, 1, 2, 1), (n, 1, 1, 1))
    flipped = np.asarray(L.RandomFlip(seed=9)(x, training=True))[:, 0, 0, 0] == 1
    assert abs(flipped.mean() - 0.5) < 6 * np.sqrt(0.25 / n)


def test_random_flip_rejects_unknown_mode():
    for mode in ("diagonal", "vertical", "horizontal_and_vertical"):
        with pytest.raises(ValueError, match="mode"):
            L.RandomFlip(mode=mode)


@given(st.sampled_from(SHAPE_BUCKETS), st.data(), log_uniform(-3, 1))
def test_input_noise_math_matches_spec(shape, data, stddev):
    x = data.draw(arrays(shape, dtype=np.float32))
    z = data.draw(arrays(shape, -5, 5, dtype=np.float32))
    s = float(as_float32(stddev))
    assert_conforms(m.input_noise(x, z, s), su.input_noise(x, z, s, True), eq="input_noise",
                    inputs=dict(x=x, z=z, stddev=s), rtol=1e-6, atol=1e-4)


def test_input_noise_layer_statistics_and_large_stddev():
    n = 1 << 16
    layer = L.InputNoise(2.0, seed=1)  # Keras' GaussianNoise rejects 2.0; no upper bound here
    x = np.full((n,), 3.0, np.float32)
    z = (np.asarray(layer(x, training=True), np.float64) - 3.0) / 2.0
    assert abs(z.mean()) < 6 / np.sqrt(n) and abs(z.var() - 1.0) < 6 * np.sqrt(2.0 / n)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


@pytest.mark.parametrize("kwargs, error", [
    (dict(stddev=-1.0), ValueError), (dict(stddev=float("inf")), ValueError), (dict(stddev=None), TypeError)])
def test_input_noise_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error, match="Received"):
        L.InputNoise(**kwargs)


IMG = np.random.default_rng(0).normal(size=IMAGE_SHAPE_BUCKETS[1]).astype(np.float32)
MAKERS = {"random_flip": lambda: L.RandomFlip(seed=7), "input_noise": lambda: L.InputNoise(0.5, seed=7)}


@pytest.mark.parametrize("name", list(MAKERS))
def test_random_flip_and_input_noise_keras_integration(name, tmp_path):
    layer = lc.keras_integration(MAKERS[name], IMG, tmp_path)
    assert int(layer.rng_state.numpy()[1]) == 3


def test_random_flip_deterministic_with_seed():
    x = np.random.default_rng(1).normal(size=(16, 2, 3, 1)).astype(np.float32)
    a = [np.asarray(L.RandomFlip(seed=3)(x, training=True)) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])


def test_input_noise_deterministic_with_seed():
    x = np.zeros((64,), np.float32)
    layer = L.InputNoise(1.0, seed=3)
    first, second = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(np.asarray(L.InputNoise(1.0, seed=3)(x, training=True)), first)


def test_random_flip_identity_at_inference():
    x = np.random.default_rng(2).normal(size=(8, 2, 3, 1)).astype(np.float32)
    layer = L.RandomFlip(seed=0)
    for training in (False, None, 0):
        np.testing.assert_array_equal(np.asarray(layer(x, training=training)), x)
    assert int(layer.rng_state.numpy()[1]) == 0  # inference draws nothing
