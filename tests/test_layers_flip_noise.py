"""RandomFlip and InputNoise against keras_optreg_spec.unnumbered (random_flip_left_right, random_flip_up_down,
input_noise), plus the image layers' shared Keras behaviour (one image, channels_first, no training argument)."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_optreg_spec.unnumbered as su
from keras_optreg import layers as L
from keras_optreg._math import images as mi
from keras_optreg._math import layers as m
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg.conformance.strategies import IMAGE_SHAPE_BUCKETS, SHAPE_BUCKETS, arrays, as_float32, log_uniform
from tests import layer_checks as lc
from tests.backend import TENSORFLOW


@pytest.mark.spec("random_flip")
@pytest.mark.parametrize("direction", ["left_right", "up_down"])
@given(st.sampled_from(IMAGE_SHAPE_BUCKETS), st.data())
def test_random_flip_math_matches_spec(direction, shape, data):
    x = data.draw(arrays(shape, dtype=np.float32))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0])))
    ours, spec_flip = getattr(mi, f"random_flip_{direction}"), getattr(su, f"random_flip_{direction}")
    assert_matches_spec(ours(x, mask), spec_flip(x, mask), eq="random_flip", inputs=dict(x=x, mask=mask), rtol=0)


@pytest.fixture(scope="module")
def flip_fn():
    layer = L.RandomFlip(seed=4)
    return lc.compiled_call(layer)


@given(st.sampled_from(IMAGE_SHAPE_BUCKETS), st.data())
@pytest.mark.spec("random_flip")
def test_random_flip_twice_with_same_mask_is_identity_and_each_image_is_flipped_or_not(flip_fn, shape, data):
    x = data.draw(arrays(shape, dtype=np.float32))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0])))
    np.testing.assert_array_equal(np.asarray(mi.random_flip_left_right(mi.random_flip_left_right(x, mask), mask)), x)
    y = lc.numpy(flip_fn(x))
    for b in range(shape[0]):
        assert np.array_equal(y[b], x[b]) or np.array_equal(y[b], x[b, :, ::-1])


@pytest.mark.spec("random_flip")
def test_random_flip_probability_is_one_half():
    n = 4096
    x = np.tile(np.arange(2, dtype=np.float32).reshape(1, 1, 2, 1), (n, 1, 1, 1))
    flipped = np.asarray(L.RandomFlip(seed=9)(x, training=True))[:, 0, 0, 0] == 1
    assert abs(flipped.mean() - 0.5) < 6 * np.sqrt(0.25 / n)


def _flip_outcomes(x, y):
    """Per image: 0 unchanged, 1 left-right, 2 up-down, 3 both (x has no symmetry: values distinct)."""
    views = (x, x[:, :, ::-1], x[:, ::-1, :], x[:, ::-1, ::-1])
    return np.array([[np.array_equal(y[b], v[b]) for v in views].index(True) for b in range(len(x))])


def _flip_counts_accepted(counts, probabilities):
    """Each outcome count within 6 binomial standard errors of n p."""
    n = sum(counts)
    return all(abs(c - n * p) < 6 * np.sqrt(n * p * (1 - p)) if 0 < p < 1 else c == n * p
               for c, p in zip(counts, probabilities, strict=True))


FLIP_N = 2048
FLIP_X = np.arange(FLIP_N * 2 * 3, dtype=np.float32).reshape(FLIP_N, 2, 3, 1)
MODES = {"horizontal": (0.5, 0.5, 0, 0), "vertical": (0.5, 0, 0.5, 0), "horizontal_and_vertical": (0.25,) * 4}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.spec("random_flip")
def test_random_flip_modes_draw_their_outcomes_with_the_right_frequencies(mode):
    y = np.asarray(L.RandomFlip(mode, seed=9)(FLIP_X, training=True))
    counts = np.bincount(_flip_outcomes(FLIP_X, y), minlength=4)
    assert _flip_counts_accepted(counts, MODES[mode]), counts


@pytest.mark.spec("random_flip")
def test_random_flip_frequency_check_rejects_keras_single_draw_for_both_flips():
    """Keras 3.15's horizontal_and_vertical uses one draw for both flips: only 'unchanged' and 'both'."""
    flips = np.random.default_rng(0).random(FLIP_N) < 0.5
    y = np.where(flips[:, None, None, None], FLIP_X[:, ::-1, ::-1], FLIP_X)
    counts = np.bincount(_flip_outcomes(FLIP_X, y), minlength=4)
    assert not _flip_counts_accepted(counts, MODES["horizontal_and_vertical"])
    keras_y = np.asarray(keras.layers.RandomFlip("horizontal_and_vertical", seed=9)(FLIP_X, training=True))
    assert set(np.unique(_flip_outcomes(FLIP_X, keras_y))) <= {0, 3}


@pytest.mark.spec("input_noise")
@given(st.sampled_from(SHAPE_BUCKETS), st.data(), log_uniform(-3, 1))
def test_input_noise_math_matches_spec(shape, data, stddev):
    x = data.draw(arrays(shape, dtype=np.float32))
    z = data.draw(arrays(shape, -5, 5, dtype=np.float32))
    s = float(as_float32(stddev))
    assert_matches_spec(m.input_noise(x, z, s), su.input_noise(x, z, s, True), eq="input_noise",
                    inputs=dict(x=x, z=z, stddev=s), rtol=1e-6, atol=1e-4)


@pytest.mark.spec("input_noise")
def test_input_noise_layer_statistics_and_large_stddev():
    n = 1 << 16
    layer = L.InputNoise(2.0, seed=1)  # Keras' GaussianNoise rejects 2.0; no upper bound here
    x = np.full((n,), 3.0, np.float32)
    z = (np.asarray(layer(x, training=True), np.float64) - 3.0) / 2.0
    assert abs(z.mean()) < 6 / np.sqrt(n) and abs(z.var() - 1.0) < 6 * np.sqrt(2.0 / n)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


@pytest.mark.spec("dropout", "input_noise")
def test_input_noise_and_dropout_pass_masks_through():
    tokens = np.array([[3, 5, 0], [2, 0, 0]])
    inp = keras.Input((3,), dtype="int32")
    h = keras.layers.Embedding(6, 4, mask_zero=True)(inp)
    for layer in (L.InputNoise(0.5, seed=1), L.Dropout(0.5, seed=1)):
        out = layer(h)
        assert out._keras_mask is not None, type(layer).__name__
        mask = keras.ops.convert_to_tensor(tokens != 0)
        np.testing.assert_array_equal(np.asarray(layer.compute_mask(np.ones((2, 3, 4)), mask)), tokens != 0)


IMG = np.random.default_rng(0).normal(size=IMAGE_SHAPE_BUCKETS[1]).astype(np.float32)
MAKERS = {"random_flip": lambda: L.RandomFlip(seed=7), "input_noise": lambda: L.InputNoise(0.5, seed=7)}


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.spec("input_noise", "random_flip")
def test_random_flip_and_input_noise_keras_integration(name, tmp_path):
    layer = lc.keras_integration(MAKERS[name], IMG, tmp_path)
    assert int(layer.rng_state.numpy()[1]) == 3


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.spec("input_noise", "random_flip")
@pytest.mark.tensorflow_only("tf.data: Dataset.map traces the layer into a TensorFlow graph")
def test_random_flip_and_input_noise_in_tf_data_map(name):
    lc.tf_data_map_advances(MAKERS[name], IMG)


@pytest.mark.spec("random_flip")
def test_random_flip_deterministic_with_seed():
    x = np.random.default_rng(1).normal(size=(16, 2, 3, 1)).astype(np.float32)
    a = [np.asarray(L.RandomFlip(seed=3)(x, training=True)) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])


@pytest.mark.spec("input_noise")
def test_input_noise_deterministic_with_seed():
    x = np.zeros((64,), np.float32)
    layer = L.InputNoise(1.0, seed=3)
    first, second = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(np.asarray(L.InputNoise(1.0, seed=3)(x, training=True)), first)


@pytest.mark.spec("random_flip")
def test_random_flip_identity_at_inference():
    x = np.random.default_rng(2).normal(size=(8, 2, 3, 1)).astype(np.float32)
    layer = L.RandomFlip(seed=0)
    for training in (False, None, 0):  # an explicit None is falsy, as in Keras' layers
        np.testing.assert_array_equal(np.asarray(layer(x, training=training)), x)
    assert int(layer.rng_state.numpy()[1]) == 0  # inference draws nothing


AUGMENTERS = {"random_flip": lambda: L.RandomFlip(seed=5),
              "random_crop": lambda: L.RandomCrop(6, 6, seed=5),
              "random_rotation": lambda: L.RandomRotation(0.1, fill_mode="constant", seed=5)}
AUG_X = np.random.default_rng(3).uniform(size=(16, 8, 8, 2)).astype(np.float32)


def _changed(layer, y):
    """y differs from the inference output (the centre window for a crop, the input otherwise)."""
    return not np.array_equal(np.asarray(y), np.asarray(layer(AUG_X, training=False)))


@pytest.mark.parametrize("name", sorted(AUGMENTERS))
@pytest.mark.spec("random_crop", "random_flip", "random_rotation")
def test_random_flip_random_crop_random_rotation_augment_without_a_training_argument(name):
    """Issue 12: as Keras' image layers, training defaults to True: called alone or in ds.map they augment;
    predict (training=False) does not."""
    layer = AUGMENTERS[name]()
    assert _changed(layer, layer(AUG_X))
    if TENSORFLOW:  # ds.map(layer): TensorFlow's tf.data only
        import tensorflow as tf

        mapped = next(iter(tf.data.Dataset.from_tensors(AUG_X).map(layer)))
        assert _changed(layer, mapped)
    model = keras.Sequential([keras.Input(AUG_X.shape[1:]), layer])
    np.testing.assert_array_equal(model.predict(AUG_X, verbose=0), np.asarray(layer(AUG_X, training=False)))


@pytest.mark.parametrize("name", sorted(AUGMENTERS))
@pytest.mark.spec("random_crop", "random_flip", "random_rotation")
def test_random_flip_random_crop_random_rotation_one_image_and_channels_first(name):
    """Issue 12 bug 3: a rank-3 input is one image (declared and actual shapes agree); channels_first
    computes the channels_last result, transposed (same seed, same draws)."""
    make = AUGMENTERS[name]
    batched = np.asarray(make()(AUG_X[:1], training=True))
    single = make()
    y = single(AUG_X[0], training=True)
    np.testing.assert_array_equal(np.asarray(y), batched[0])
    assert tuple(y.shape) == single.compute_output_shape(AUG_X[0].shape)
    symbolic = single(keras.Input(AUG_X.shape[2:], batch_size=AUG_X.shape[1]))  # shape (8, 8, 2): one image
    assert tuple(symbolic.shape) == tuple(y.shape)
    first = make()
    first.data_format = "channels_first"  # same seed and state, other layout
    cf = np.asarray(first(np.transpose(AUG_X, (0, 3, 1, 2)), training=True))
    np.testing.assert_allclose(np.transpose(cf, (0, 2, 3, 1)), np.asarray(make()(AUG_X, training=True)),
                               rtol=0, atol=1e-6)
