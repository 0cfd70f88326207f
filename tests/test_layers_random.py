"""The layers' random generator (keras_optreg._random): its bits against a NumPy transcription of the
hash, every draw bit-identical eager / tf.function / XLA, the normal draw against the exact quantile,
its statistics (with a companion test rejecting wrong generators), and the unseeded layers'
reproducibility across processes after keras.utils.set_random_seed."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from scipy import special, stats

from keras_optreg import _random as R
from keras_optreg import layers as L
from tests.backend import BACKEND, TENSORFLOW, jit, x64
from tests.layer_checks import numpy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _lowbias32(h):
    """C. Wellons' lowbias32 in uint32 NumPy arithmetic (the reference for the int32 keras.ops form)."""
    h = np.asarray(h, np.uint32)
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x7FEB352D)
    h = h ^ (h >> np.uint32(15))
    h = h * np.uint32(0x846CA68B)
    return h ^ (h >> np.uint32(16))


def reference_bits(seed, counter, n):
    """h(h(i ^ k) + 0x9E3779B9), k = h(seed ^ h(counter + 0x9E3779B9)), all modulo 2**32."""
    with np.errstate(over="ignore"):
        k = _lowbias32(np.uint32(seed) ^ _lowbias32(np.uint32(counter) + np.uint32(0x9E3779B9)))
        return _lowbias32(_lowbias32(np.arange(n, dtype=np.uint32) ^ k) + np.uint32(0x9E3779B9))


STATES = [(0, 0), (12345, 7), (2 ** 31 - 1, 2 ** 31 - 1), (1, 2 ** 20)]


@pytest.mark.parametrize("seed, counter", STATES)
def test_random_bits_match_the_numpy_hash(seed, counter):
    n = 4099
    want = reference_bits(seed, counter, n)
    # every SeedGenerator state dtype: int64 on TensorFlow, uint32 on JAX, int32 on PyTorch (int64 where it exists)
    for dtype in ("int32", "uint32", "int64") if x64() else ("int32", "uint32"):
        if BACKEND == "torch" and dtype == "uint32":
            continue  # PyTorch has no uint32 arithmetic: its seed state is int32
        state = keras.ops.convert_to_tensor(np.array([seed, counter]), dtype)
        got = numpy(R.bits(state, (n,))).view(np.uint32)  # int32 multiply, xor and masked shifts: the uint32 bits
        np.testing.assert_array_equal(got, want, err_msg=dtype)
        np.testing.assert_array_equal(numpy(jit(lambda s: R.bits(s, (n,)))(state)).view(np.uint32), want)


@pytest.mark.tensorflow_only("tf.function input_signature: a shape unknown until run time exists only in TensorFlow "
                             "graphs")
def test_random_bits_of_a_dynamic_shape_match_the_numpy_hash():
    import tensorflow as tf

    seed, counter, n = 12345, 7, 4099
    fn = tf.function(lambda s, t: R.bits(s, keras.ops.shape(t)), input_signature=[
        tf.TensorSpec((2,), tf.int32), tf.TensorSpec((None, None), tf.float32)])
    got = np.asarray(fn(tf.constant([seed, counter]), tf.zeros((1, n)))).view(np.uint32)
    np.testing.assert_array_equal(got.ravel(), reference_bits(seed, counter, n))


DRAWS = {"bits": lambda s: R.bits(s, (3, 1000)), "bernoulli": lambda s: R.bernoulli(s, (3, 1000), 0.3),
         "uniform": lambda s: R.uniform(s, (3, 1000)), "symmetric": lambda s: R.symmetric(s, (3, 1000)),
         "normal": lambda s: R.normal(s, (3, 1000))}


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_random_draws_are_bit_identical_eager_graph_and_xla(name):
    """Eager and compiled (tests.backend.jit: XLA on TensorFlow, jax.jit on JAX), and on TensorFlow a plain
    tf.function graph too."""
    state = keras.ops.convert_to_tensor(np.array([99, 3]), L.Dropout(0.5).rng_state.dtype)  # the backend's seed dtype
    eager = numpy(DRAWS[name](state))
    np.testing.assert_array_equal(numpy(jit(DRAWS[name])(state)), eager)
    if TENSORFLOW:
        import tensorflow as tf

        np.testing.assert_array_equal(np.asarray(tf.function(DRAWS[name])(state)), eager)


def test_random_derived_draws_follow_their_definitions_exactly():
    state = keras.ops.convert_to_tensor(np.array([5, 11]), "int32")
    u32 = reference_bits(5, 11, 4096)
    k = (u32 >> np.uint32(9)).astype(np.float64)  # the top 23 bits
    np.testing.assert_array_equal(numpy(R.uniform(state, (4096,)), np.float64), (k + 0.5) * 2.0 ** -23)
    np.testing.assert_array_equal(numpy(R.symmetric(state, (4096,)), np.float64),
                                  (2 * k + 1 - 2 ** 23) * 2.0 ** -23)
    t = R.threshold(0.3)
    np.testing.assert_array_equal(numpy(R.bernoulli(state, (4096,), 0.3)), u32 < t)
    assert R.threshold(0.0) == 0 and R.threshold(1.0) == 2 ** 32 - 1


def _quantile_of(bits_u32):
    """The exact normal draw for 32-bit words: sign from the top bit, z = -ndtri(q), q = (v + 1/2) 2**-32."""
    v = (bits_u32 & np.uint32(0x7FFFFFFF)).astype(np.float64)
    z = -special.ndtri((v + 0.5) * 2.0 ** -32)
    return np.where(bits_u32 >= np.uint32(2 ** 31), -z, z)


def test_random_normal_is_the_quantile_of_its_bits_within_1e_6():
    """Bound 1e-6 (derived in keras_optreg._random.normal: two Q21 roundings, 2**-22 each, a 15-bit
    interpolation weight and the interpolation error <= 2e-7); checked on every v < 2**12, on v around
    every power of two (segment edges) and on 2**20 hashed words, both signs."""
    rng = np.random.default_rng(0)
    edges = np.concatenate([np.arange(4096)] + [2 ** e + np.arange(-3, 4) for e in range(12, 31)] + [[2 ** 31 - 1]])
    words = np.concatenate([edges, rng.integers(0, 2 ** 31, size=1 << 20)]).astype(np.uint32)
    words = np.concatenate([words, words | np.uint32(2 ** 31)])
    z = np.asarray(R.normal_from_bits(keras.ops.convert_to_tensor(words.view(np.int32))), np.float64)
    err = np.abs(z - _quantile_of(words))
    assert err.max() <= 1e-6, (err.max(), words[err.argmax()])
    assert np.abs(z).max() <= 6.37  # q >= 2**-33


N = 1 << 20


def _normal_stats(draw, seeds):
    """Largest |z| of: the mean, the variance against 1, adjacent and successive-call correlation; and the
    smallest KS p-value against N(0, 1)."""
    worst, p_min = 0.0, 1.0
    for seed in seeds:
        a, b = (np.asarray(draw(seed, c), np.float64) for c in (0, 1))
        worst = max(worst, abs(a.mean()) * np.sqrt(N), abs(a.var() - 1.0) / np.sqrt(2.0 / N))
        for u, v in ((a[:-1], a[1:]), (a, b)):
            worst = max(worst, abs(np.corrcoef(u, v)[0, 1]) * np.sqrt(len(u)))  # corr ~ N(0, 1/n)
        p_min = min(p_min, stats.kstest(a, "norm").pvalue)
    return worst, p_min


def _accepts(result):
    worst, p_min = result
    return worst < 6.0 and p_min > 1e-6


def test_random_normal_statistics():
    fn = jit(lambda state: R.normal(state, (N,)))
    assert _accepts(_normal_stats(lambda s, c: numpy(fn(np.array([s, c], np.int32))), [0, 1, 12345]))


def test_random_normal_statistics_reject_a_bad_generator():
    rng = np.random.default_rng(0)
    assert not _accepts(_normal_stats(lambda s, c: rng.normal(0.0, 1.01, N), [0]))  # 1% too wide
    assert not _accepts(_normal_stats(lambda s, c: rng.normal(0.01, 1.0, N), [0]))  # biased
    assert not _accepts(_normal_stats(lambda s, c: rng.standard_t(30, N) / np.sqrt(30 / 28), [0]))  # heavy tails
    assert not _accepts(_normal_stats(lambda s, c: np.random.default_rng(s).normal(size=N), [0]))  # ignores c
    assert _accepts(_normal_stats(lambda s, c: np.random.default_rng([s, c]).normal(size=N), [0]))


_CHILD = """
import json, os, sys
os.environ["KERAS_BACKEND"] = {backend!r}
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, {root!r})
from tests.test_layers_random import draws_after_set_random_seed
print(json.dumps(draws_after_set_random_seed({seed})))
"""


def draws_after_set_random_seed(seed):
    """Each unseeded random layer's seed (its draws are a function of it: the tests above), and a digest of
    one layer's first training output, after keras.utils.set_random_seed."""
    keras.utils.set_random_seed(seed)
    layers = [L.Dropout(0.5), L.InputNoise(0.1), L.RandomFlip(), L.RandomCrop(4, 4), L.RandomRotation(0.1)]
    out = {type(layer).__name__: int(numpy(layer.rng_state)[0]) for layer in layers}
    x = np.linspace(0.0, 1.0, 256, dtype=np.float32)
    out["Dropout output"] = float(numpy(layers[0](x, training=True), np.float64).sum())
    return out


def test_random_unseeded_layers_reproduce_across_processes_after_set_random_seed():
    child = subprocess.run([sys.executable, "-c", _CHILD.format(root=ROOT, seed=7, backend=BACKEND)],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert child.returncode == 0, child.stderr[-2000:]
    theirs = json.loads(child.stdout.strip().splitlines()[-1])
    assert theirs == draws_after_set_random_seed(7)
    other = draws_after_set_random_seed(8)
    assert all(other[k] != theirs[k] for k in theirs)  # another seed, other seeds per layer
