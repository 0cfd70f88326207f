"""Spec self-tests for the unnumbered techniques: dropout, input noise, crop, flip, rotation,
early stopping. Invariants from the issue text; worked cases from the cited sources."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from keras_optreg.conformance import strategies as S
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg_spec import unnumbered as U


@given(x=S.arrays((5, 4), -10, 10), rate=st.floats(0.0, 0.95), data=st.data())
def test_dropout_inverted_values_and_srivastava_expectation(x, rate, data):
    """Inverted dropout keeps values in {0, x/(1-rate)}; averaged over both mask outcomes it equals
    Srivastava's test-time output p x divided by p, i.e. x (the two conventions agree in expectation)."""
    keep = data.draw(S.hnp.arrays(bool, x.shape))
    y = U.dropout_inverted(x, keep, rate, training=True)
    assert np.all((y == 0) | np.isclose(y, x / (1 - rate), rtol=1e-15))
    p = 1 - rate
    expectation = p * U.dropout_inverted(x, np.ones_like(keep), rate, True) + \
        (1 - p) * U.dropout_inverted(x, np.zeros_like(keep), rate, True)
    assert_matches_spec(expectation, U.dropout_srivastava(x, keep, p, training=False) / p, eq="dropout",
                    inputs={"x": x, "rate": rate}, rtol=1e-12, atol=1e-12)
    assert_matches_spec(U.dropout_inverted(x, keep, rate, training=False), x, eq="dropout", rtol=0)


@given(x=S.arrays((3, 4)), z=S.arrays((3, 4), -5, 5), sd=S.floats(0, 100))
def test_input_noise_is_additive_in_training_only(x, z, sd):
    assert_matches_spec(U.input_noise(x, z, sd, True) - x, sd * z, eq="input_noise", rtol=1e-9, atol=1e-9)
    assert_matches_spec(U.input_noise(x, z, sd, False), x, eq="input_noise", rtol=0)


@given(shape=st.sampled_from(S.IMAGE_SHAPE_BUCKETS), data=st.data())
def test_random_crop_is_a_sub_window(shape, data):
    n, h, w, _ = shape
    ch, cw = data.draw(st.integers(1, h)), data.draw(st.integers(1, w))
    oh = data.draw(st.lists(st.integers(0, h - ch), min_size=n, max_size=n))
    ow = data.draw(st.lists(st.integers(0, w - cw), min_size=n, max_size=n))
    x = data.draw(S.arrays(shape))
    y = U.random_crop(x, ch, cw, oh, ow)
    assert y.shape == (n, ch, cw, shape[3])
    for b in range(n):
        assert np.array_equal(y[b], x[b, oh[b]:oh[b] + ch, ow[b]:ow[b] + cw])
    assert U.center_crop_offsets(h, ch) == (h - ch) // 2


@given(shape=st.sampled_from(S.IMAGE_SHAPE_BUCKETS), data=st.data())
def test_random_flip_twice_is_identity(shape, data):
    x = data.draw(S.arrays(shape))
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=shape[0], max_size=shape[0])))
    once = U.random_flip_left_right(x, mask)
    assert np.array_equal(U.random_flip_left_right(once, mask), x)
    assert np.array_equal(once[mask], x[mask][:, :, ::-1])
    assert np.array_equal(once[~mask], x[~mask])


@given(x=S.arrays((2, 9, 9, 2), -10, 10))
def test_random_rotation_by_zero_is_identity_and_by_90_degrees_is_rot90(x):
    assert_matches_spec(U.random_rotation_bilinear(x, [0.0, 0.0]), x, eq="random_rotation", rtol=0, atol=1e-12)
    rotated = U.random_rotation_bilinear(x, [np.pi / 2, np.pi / 2])
    assert_matches_spec(rotated[:, 1:-1, 1:-1], np.rot90(x, axes=(1, 2))[:, 1:-1, 1:-1], eq="random_rotation",
                    rtol=1e-9, atol=1e-9)


def test_random_rotation_samples_bilinearly_between_pixels():
    """45 degrees about the centre of a 3x3 image: the corner pixel (0, 0) samples the input at
    (cy - sqrt2, cx) = (1 - 1.414, 1): rows -0.414 -> weight 0.414 on fill 0 and 0.586 on row 0."""
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3, 1) + 1.0
    y = U.random_rotation_bilinear(x, [np.pi / 4])
    frac = np.sqrt(2) - 1.0  # distance from row 0 upwards to the sample point, as a fraction
    assert_matches_spec(y[0, 0, 0, 0], (1 - frac) * x[0, 0, 1, 0] + frac * 0.0, eq="random_rotation", rtol=1e-12)
    assert_matches_spec(y[0, 1, 1, 0], x[0, 1, 1, 0], eq="random_rotation", rtol=1e-12)


def test_early_stopping_gbc16_alg71_worked_case():
    """Errors 3, 2, 2.5, 1, 1.5, 1.6, 1.7 with p = 2, n = 10: best after the 4th block (i* = 40,
    v = 1); two non-improvements (blocks 5, 6) stop it at i = 60; block 7 is never run."""
    assert U.early_stopping([3, 2, 2.5, 1, 1.5, 1.6, 1.7], patience=2, n=10) == (40, 1, 60)
    assert U.early_stopping([5, 4, 3], patience=1) == (3, 3, 3)  # errors ran out first


def test_random_flip_up_down_twice_is_identity():
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4, 1)
    once = U.random_flip_up_down(x, [True, False])
    assert np.array_equal(once[0], x[0, ::-1]) and np.array_equal(once[1], x[1])
    assert np.array_equal(U.random_flip_up_down(once, [True, False]), x)


def test_random_rotation_fill_index_reads_keras_pictures():
    """Keras' RandomRotation docstring, axis (a b c d) = pixels 0..3, four positions either side:
    reflect (d c b a | a b c d | d c b a), wrap (a b c d | ... | a b c d), nearest (a a a a | ... | d d d d),
    constant (k k k k | ... | k k k k)."""
    left, right = range(-4, 0), range(4, 8)
    pictures = {"reflect": ([3, 2, 1, 0], [3, 2, 1, 0]), "wrap": ([0, 1, 2, 3], [0, 1, 2, 3]),
                "nearest": ([0, 0, 0, 0], [3, 3, 3, 3]), "constant": ([-1] * 4, [-1] * 4)}
    for mode, (before, after) in pictures.items():
        assert [U.fill_index(i, 4, mode) for i in left] == before, mode
        assert [U.fill_index(i, 4, mode) for i in right] == after, mode
        assert [U.fill_index(i, 4, mode) for i in range(4)] == [0, 1, 2, 3], mode
    assert U.fill_index(-9, 4, "reflect") == U.fill_index(-9 + 8, 4, "reflect")  # period 2n


@given(x=S.arrays((1, 5, 5, 2), -10, 10))
def test_random_rotation_nearest_quarter_and_half_turns_are_exact(x):
    """A square image turned by 90 degrees onto itself: nearest interpolation is np.rot90 on every pixel,
    whatever the fill; 180 degrees is the flip of both axes."""
    for mode in U.FILL_MODES:
        assert_matches_spec(U.random_rotation(x, [np.pi / 2], mode, "nearest"), np.rot90(x, axes=(1, 2)),
                        eq="random_rotation", rtol=0)
        assert_matches_spec(U.random_rotation(x, [np.pi], mode, "nearest"), x[:, ::-1, ::-1], eq="random_rotation",
                            rtol=0)


def test_random_rotation_reflect_and_wrap_sample_outside_pixels():
    """45 degrees on a 3x3 image: the corner (0, 0) samples (y, x) = (1 - sqrt2, 1), between rows -1 and 0
    (weight 0.414 on row -1): reflect reads row 0 there (so the value is x[0, 1]), wrap reads row 2."""
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3, 1) + 1.0
    frac = np.sqrt(2) - 1.0
    reflect = U.random_rotation(x, [np.pi / 4], "reflect", "bilinear")
    assert_matches_spec(reflect[0, 0, 0, 0], x[0, 0, 1, 0], eq="random_rotation", rtol=1e-12)
    wrap = U.random_rotation(x, [np.pi / 4], "wrap", "bilinear")
    assert_matches_spec(wrap[0, 0, 0, 0], (1 - frac) * x[0, 0, 1, 0] + frac * x[0, 2, 1, 0], eq="random_rotation",
                    rtol=1e-12)
