"""Dropout (Srivastava et al. 2014; inverted form) against keras_optreg_spec.unnumbered.dropout_inverted,
plus statistics."""

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_optreg_spec.unnumbered as su
from keras_optreg import _random
from keras_optreg import layers as L
from keras_optreg._math import layers as m
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg.conformance.strategies import arrays, as_float32, shapes
from tests import layer_checks as lc
from tests.backend import jit

rates = st.floats(0.0, 0.95)


@pytest.mark.spec("dropout")
@given(st.data(), shapes(), rates)
def test_dropout_math_matches_spec(data, shape, rate):
    x = data.draw(arrays(shape, dtype=np.float32))
    keep = data.draw(arrays(shape, 0, 1)) < 0.5
    rate32 = float(as_float32(rate))
    got = m.dropout_inverted(x, keep, rate32)
    assert_matches_spec(got, su.dropout_inverted(x, keep, rate32, True), eq="dropout",
                    inputs=dict(x=x, keep=keep, rate=rate32), rtol=2e-7)
    # Srivastava's form: training keeps x, inference scales by p; inverted = Srivastava / p in training.
    p = 1.0 - rate32
    assert_matches_spec(np.asarray(got, np.float64) * p, su.dropout_srivastava(x, keep, p, True), eq="dropout",
                    rtol=1e-6, atol=1e-30)


@pytest.fixture(scope="module")
def jitted_layer():
    layer = L.Dropout(0.25, seed=3)
    return layer, lc.compiled_call(layer)


@given(st.sampled_from([(7,), (3, 5), (2, 3, 4)]), st.data())
@pytest.mark.spec("dropout")
def test_dropout_values_are_zero_or_scaled(jitted_layer, shape, data):
    layer, fn = jitted_layer
    x = data.draw(arrays(shape, 0.5, 1e3, dtype=np.float32))
    y = np.asarray(fn(x))
    scaled = x * np.float32(1.0 / (1.0 - 0.25))
    assert np.all((y == 0) | (y == scaled))
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


N = 1 << 20


def _mask_stats(keep_fn, rate, seeds):
    """Largest |z| of: mask mean, adjacent-element correlation, successive-call correlation."""
    p = 1.0 - rate
    worst = 0.0
    for seed in seeds:
        a = np.asarray(keep_fn(seed, 0), np.float64)
        b = np.asarray(keep_fn(seed, 1), np.float64)
        sigma = np.sqrt(p * (1 - p) / N)
        worst = max(worst, abs(a.mean() - p) / sigma)
        for u, v in ((a[:-1], a[1:]), (a, b)):
            r = np.corrcoef(u, v)[0, 1]
            worst = max(worst, abs(r) * np.sqrt(len(u)))  # corr of independent pairs ~ N(0, 1/n)
    return worst


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
@pytest.mark.spec("dropout")
def test_dropout_mask_mean_and_independence(rate):
    fn = jit(lambda state: keras.ops.logical_not(_random.bernoulli(state, (N,), rate)))
    assert _mask_stats(lambda s, c: fn(np.array([s, c], np.int32)), rate, [0, 1, 12345]) < 6.0


@pytest.mark.spec("dropout")
def test_dropout_statistics_reject_a_bad_generator():
    rng = np.random.default_rng(0)
    biased = lambda s, c: rng.random(N) < 0.52  # noqa: E731  wrong mean
    assert _mask_stats(biased, 0.5, [0]) > 6.0
    sticky = lambda s, c: np.repeat(rng.random(N // 2) < 0.5, 2)  # noqa: E731  adjacent pairs equal
    assert _mask_stats(sticky, 0.5, [0]) > 6.0
    frozen = lambda s, c: np.random.default_rng(s).random(N) < 0.5  # noqa: E731  ignores the call counter
    assert _mask_stats(frozen, 0.5, [0]) > 6.0


@pytest.mark.spec("dropout")
def test_dropout_layer_mask_mean_and_calls_differ():
    layer = L.Dropout(0.3, seed=11)
    x = np.ones((N,), np.float32)
    a, b = (np.asarray(layer(x, training=True)) != 0 for _ in range(2))
    sigma = np.sqrt(0.3 * 0.7 / N)
    assert abs(a.mean() - 0.7) < 6 * sigma
    assert not np.array_equal(a, b)
    again = L.Dropout(0.3, seed=11)
    np.testing.assert_array_equal(np.asarray(again(x, training=True)) != 0, a)


@pytest.mark.spec("dropout")
def test_dropout_noise_shape_broadcasts():
    y = np.asarray(L.Dropout(0.5, noise_shape=(None, 1, 4), seed=0)(np.ones((2, 3, 4), np.float32), training=True))
    assert np.all(y == y[:, :1, :])


X = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)


def _make():
    return L.Dropout(0.4, seed=5)


@pytest.mark.spec("dropout")
def test_dropout_keras_round_trip_keeps_rng_state(tmp_path):
    lc.next_call_survives_reload(tmp_path, _make, X)


@pytest.mark.spec("dropout")
def test_dropout_jit_compile():
    lc.jit_matches_eager(_make, X)


@pytest.mark.spec("dropout")
def test_dropout_model_fit_jit():
    lc.fit_runs_under_xla(_make, X)


@pytest.mark.spec("dropout")
@pytest.mark.tensorflow_only("tf.data: Dataset.map traces the layer into a TensorFlow graph")
def test_dropout_tf_data_map():
    lc.tf_data_map_advances(_make, X)


@pytest.mark.spec("dropout")
def test_dropout_custom_loop():
    layer = lc.custom_loop_runs(_make, X)
    assert int(layer.rng_state.numpy()[1]) == 3


@pytest.mark.spec("dropout")
def test_dropout_unseeded_rng_state_round_trips(tmp_path):
    lc.next_call_survives_reload(tmp_path, lambda: L.Dropout(0.5), X)
