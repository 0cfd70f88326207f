"""Initializers, eqs. (1)-(3), as drop-ins for their Keras twins: fans from input/output axes (EinsumDense,
MultiHeadAttention), seeds (SeedGenerator, keras.utils.set_random_seed across processes), dtypes, odd
shapes, configs and signatures. The laws themselves are tested in tests/test_initializers.py."""

import hashlib
import inspect
import json
import os
import pathlib
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keras.src import testing

from keras_optreg import initializers as ki
from keras_optreg._math import init as init_math
from keras_optreg_spec import corrected
from tests import stats
from tests.backend import BACKEND, JIT_COMPILE, TENSORFLOW
from tests.layer_checks import assert_keras_round_trip
from tests.test_initializers import _expected

K = keras.initializers
FACTORIES = {"glorot": ki.GlorotUniform, "torch": ki.TorchDefault, "flax": ki.FlaxDefault}
# Each initializer and the Keras configuration of the same law (the README's drop-in table).
TWINS = {"glorot": lambda **kw: K.GlorotUniform(**kw),
         "torch": lambda **kw: K.VarianceScaling(1.0 / 3.0, "fan_in", "uniform", **kw),
         "flax": lambda **kw: K.VarianceScaling(1.0, "fan_in", "truncated_normal", **kw)}

# ---- fans ------------------------------------------------------------------------------------

# (shape, input_axes, output_axes): no axes, EinsumDense's kernels ("abc,cde->abde" query kernel,
# "abcd,cde->abe" output kernel), an axis in neither list, negative axes, empty lists (fan 1),
# 1-D, scalar and zero-size shapes.
AXES_CASES = (((6, 10), None, None), ((3, 3, 4, 5), None, None), ((7,), None, None), ((), None, None),
              ((0, 4), None, None), ((32, 8, 16), [0], [1, 2]), ((8, 16, 32), [0, 1], [2]),
              ((5, 4, 3, 2), [1], [3]), ((4, 6, 5), [-3], [-1, -2]), ((4, 6), [], []), ((2, 0, 3), [0], [1, 2]))


@st.composite
def shapes_and_axes(draw):
    shape = tuple(draw(st.lists(st.integers(0, 6), max_size=5)))
    if not shape or not draw(st.booleans()):
        return shape, None, None
    roles = draw(st.lists(st.sampled_from(("in", "out", "none")), min_size=len(shape), max_size=len(shape)))
    neg = draw(st.booleans())
    axis = (lambda i: i - len(shape)) if neg else (lambda i: i)
    return (shape, [axis(i) for i, r in enumerate(roles) if r == "in"],
            [axis(i) for i, r in enumerate(roles) if r == "out"])


@pytest.mark.spec("eq01", "eq02", "eq03")
@given(case=shapes_and_axes())
def test_eq01_eq02_eq03_fans_match_spec(case):
    shape, ins, outs = case
    lib = ki.GlorotUniform(input_axes=ins, output_axes=outs)._fans(shape)
    assert lib == corrected.kernel_fans(shape, ins, outs), case


@pytest.mark.spec("eq01", "eq02", "eq03")
def test_eq01_eq02_eq03_torch_layout_fans_match_spec_transposed():
    # PyTorch's (out, in, *spatial) is Keras' (*spatial, in, out) with the axes permuted.
    torch_shape = (5, 3, 2, 4)
    keras_shape = (2, 4, 3, 5)
    assert init_math.compute_fans(torch_shape, "torch") == corrected.kernel_fans(keras_shape) == (24, 40)


@pytest.mark.spec("eq01", "eq02", "eq03")
@pytest.mark.parametrize("shape,ins,outs", AXES_CASES)
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_eq01_eq02_eq03_equal_keras_twin_for_the_same_seed(name, shape, ins, outs):
    # Same int seed, same stateless draw: ours maps u to b (2u - 1) where Keras computes -b + 2b u, and
    # sigma z where Keras passes stddev to the truncated normal: equal within 2 float32 ulps of the bound.
    axes = {} if ins is None else {"input_axes": ins, "output_axes": outs}
    ours = np.asarray(FACTORIES[name](seed=11, **axes)(shape, dtype="float32"))
    theirs = np.asarray(TWINS[name](seed=11, **axes)(shape, dtype="float32"))
    assert ours.shape == theirs.shape == shape
    fi, fo = corrected.kernel_fans(shape, ins, outs)
    bound = _expected(name, max(fi, 1), max(fo, 1))[3]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2 * bound * 2.0 ** -23)


@pytest.mark.spec("eq01", "eq02", "eq03")
@pytest.mark.parametrize("make", [lambda: ki.GlorotUniform(seed=4), lambda: ki.TorchDefault(seed=4),
                                  lambda: ki.FlaxDefault(seed=4), lambda: ki.FlaxDefault(seed=4, mode="fan_out"),
                                  lambda: ki.FlaxDefault(seed=4, mode="fan_out", variance_corrected=False)],
                         ids=["glorot", "torch", "flax", "flax-fan_out", "flax-printed"])
def test_eq01_eq02_eq03_variance_scaling_attributes_describe_the_law(make):
    # scale, mode and distribution (the VarianceScaling attributes EinsumDense and users read) configure
    # Keras' VarianceScaling to draw the same values for the same seed (2 float32 ulps of the bound, as above).
    ours = make()
    keras_vs = K.VarianceScaling(ours.scale, ours.mode, ours.distribution, seed=4)
    shape = (12, 30)
    a, b = np.asarray(ours(shape, dtype="float32")), np.asarray(keras_vs(shape, dtype="float32"))
    np.testing.assert_allclose(a, b, rtol=0, atol=2 * np.abs(b).max() * 2.0 ** -23)


def _law_accepts(name, w, fan_in, fan_out):
    var, kurt, cdf, bound = _expected(name, fan_in, fan_out)
    return (np.abs(w).max() <= bound * (1 + 1e-6) and abs(stats.variance_z(w, var, kurt)) < stats.Z_LIMIT
            and stats.ks_pvalue(w, cdf) > stats.KS_P_MIN)


@pytest.mark.spec("eq01", "eq02", "eq03")
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_eq01_eq02_eq03_multi_head_attention_kernels_get_einsum_fans(name):
    # MultiHeadAttention(8 heads, key_dim 16) on 32 features: query/key/value kernels (32, 8, 16) map
    # 32 inputs to 8 x 16 outputs (fans 32, 128); the output kernel (8, 16, 32) maps 128 to 32. Read as a
    # conv kernel (trailing two axes: in, out) they would get fans (256, 512) and (128, 256); the check
    # rejects those laws on the same draws. 4096 draws per kernel: variance z-test and KS as in
    # tests/stats.py.
    mha = keras.layers.MultiHeadAttention(8, 16, kernel_initializer=FACTORIES[name](seed=4))
    x = np.zeros((1, 3, 32), "float32")
    mha(x, x)
    kernels = {v.path.split("/")[-2]: np.asarray(v, np.float64) for v in mha.weights if v.path.endswith("kernel")}
    assert set(kernels) == {"query", "key", "value", "attention_output"}
    for part, (fans, conv_fans) in {"query": ((32, 128), (256, 512)), "value": ((32, 128), (256, 512)),
                                    "attention_output": ((128, 32), (128, 256))}.items():
        w = kernels[part]
        assert _law_accepts(name, w, *fans), (name, part)
        if name == "glorot" or conv_fans[0] != fans[0]:  # the fan_in laws differ only where fan_in does
            assert not _law_accepts(name, w, *conv_fans), (name, part)


@pytest.mark.spec("eq03")
def test_eq03_einsum_dense_passes_axes_and_keeps_the_initializer_config():
    init = ki.FlaxDefault(seed=2, mode="fan_out", variance_corrected=False)
    layer = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 64), kernel_initializer=init)
    layer.build((None, 5, 64))
    w = np.asarray(layer.kernel, np.float64)
    sigma = float(corrected.eq03_lecun_normal_sigma(64)) * corrected.TRUNCNORM_STD_2  # printed form, fan_out 64
    m2, _ = stats.truncated_standard_normal_moments(2.0)
    assert abs(stats.variance_z(w, sigma ** 2 * m2, stats.truncated_normal_kurtosis())) < stats.Z_LIMIT
    assert layer.kernel_initializer is init and init.input_axes is None  # the layer used a configured copy
    assert layer.get_config()["kernel_initializer"]["config"]["mode"] == "fan_out"


# ---- seeds -----------------------------------------------------------------------------------


@pytest.mark.spec("eq01", "eq02", "eq03")
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_eq01_eq02_eq03_seed_generator_advances_as_keras(name):
    ours = FACTORIES[name](seed=keras.random.SeedGenerator(3))
    first, second = np.asarray(ours((20, 30))), np.asarray(ours((20, 30)))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(np.asarray(FACTORIES[name](seed=keras.random.SeedGenerator(3))((20, 30))), first)
    twin = TWINS[name](seed=keras.random.SeedGenerator(3))
    assert not np.array_equal(np.asarray(twin((20, 30))), np.asarray(twin((20, 30))))  # Keras advances too
    cfg, twin_cfg = ours.get_config()["seed"], twin.get_config()["seed"]
    assert {k: cfg[k] for k in ("module", "class_name")} == {k: twin_cfg[k] for k in ("module", "class_name")}
    assert cfg["config"]["seed"] == twin_cfg["config"]["seed"] == 3
    restored = FACTORIES[name].from_config(json.loads(json.dumps(ours.get_config())))
    assert isinstance(restored.seed, keras.random.SeedGenerator)
    np.testing.assert_array_equal(np.asarray(restored((20, 30))), first)  # restarts at the initial seed


@pytest.mark.spec("eq01")
@pytest.mark.tensorflow_only("tf.function: a SeedGenerator advancing inside a compiled function is TensorFlow's "
                             "(under jax.jit its state must be passed in and out)")
def test_eq01_seed_generator_under_jit_compile_advances():
    import tensorflow as tf

    init = ki.GlorotUniform(seed=keras.random.SeedGenerator(8))
    fn = tf.function(lambda: init((64, 64), dtype="float32"), jit_compile=True)
    a, b = np.asarray(fn()), np.asarray(fn())
    bound = float(corrected.eq01_glorot_uniform_bound(64, 64))
    assert not np.array_equal(a, b) and max(np.abs(a).max(), np.abs(b).max()) <= bound


def _unseeded_draws():
    """Draws of every unseeded initializer, directly and through a layer; a digest of their bytes."""
    parts = [ki.GlorotUniform()((5, 7)), ki.TorchDefault()((3, 3, 2, 4)), ki.FlaxDefault()((6, 6)),
             ki.TorchDefaultBias(6)((4,))]
    for make in (ki.GlorotUniform, ki.FlaxDefault):
        dense = keras.layers.EinsumDense("ab,bc->ac", output_shape=(5,), kernel_initializer=make())
        dense.build((None, 4))
        parts.append(dense.kernel)
    return hashlib.sha256(b"".join(np.asarray(p, np.float32).tobytes() for p in parts)).hexdigest()


_WORKER = """
import keras, sys
from tests.test_initializers_dropin import _unseeded_draws
keras.utils.set_random_seed(int(sys.argv[1]))
print("DIGEST", _unseeded_draws())
"""


@pytest.mark.spec("eq01", "eq02", "eq03")
def test_eq01_eq02_eq03_unseeded_reproduce_across_processes_after_set_random_seed():
    # A fresh process and this one, each after keras.utils.set_random_seed(5), draw the same values;
    # seed 6 draws others; an unseeded instance still draws fresh values on each call.
    root = pathlib.Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "KERAS_BACKEND": BACKEND, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-c", _WORKER, "5"], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-2000:]
    digests = [line.split()[1] for line in out.splitlines() if line.startswith("DIGEST")]
    keras.utils.set_random_seed(5)
    here = _unseeded_draws()
    keras.utils.set_random_seed(6)
    other = _unseeded_draws()
    assert digests == [here]
    assert other != here
    init = ki.GlorotUniform()
    assert not np.array_equal(np.asarray(init((4, 4))), np.asarray(init((4, 4))))


@pytest.mark.spec("eq01")
def test_eq01_shared_unseeded_instance_gives_layers_different_kernels_unlike_keras():
    # The documented deviation: Keras' unseeded instance fixes its seed at construction, so two layers
    # sharing it get identical kernels; ours draws per call.
    for init, identical in ((ki.GlorotUniform(), False), (K.GlorotUniform(), True)):
        a, b = keras.layers.Dense(4, kernel_initializer=init), keras.layers.Dense(4, kernel_initializer=init)
        a.build((None, 3))
        b.build((None, 3))
        assert np.array_equal(np.asarray(a.kernel), np.asarray(b.kernel)) == identical


@pytest.mark.spec("eq02")
def test_eq02_torch_default_pair_shares_a_seed_generator():
    gen = keras.random.SeedGenerator(1)
    kernel, bias = ki.torch_default_pair((7, 3), seed=gen)
    assert kernel.seed is gen and bias.seed is gen
    k, b = np.asarray(kernel((7, 3), "float64")), np.asarray(bias((3,), "float64"))
    assert not np.array_equal(k[0], b)  # the generator advanced between the draws
    assert np.abs(b).max() <= float(corrected.eq02_torch_linear_bound(7))


# ---- dtypes and shapes -----------------------------------------------------------------------


@pytest.mark.spec("eq01", "eq02", "eq03")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", sorted(FACTORIES) + ["torch_bias"])
def test_eq01_eq02_eq03_low_precision_is_the_float32_draw_rounded_once(name, dtype):
    make = (lambda: ki.TorchDefaultBias(30, seed=9)) if name == "torch_bias" else (lambda: FACTORIES[name](seed=9))
    low = make()((30, 40), dtype=dtype)
    assert keras.backend.standardize_dtype(low.dtype) == dtype
    want = keras.ops.cast(make()((30, 40), dtype="float32"), dtype)
    np.testing.assert_array_equal(np.asarray(keras.ops.cast(low, "float32")),
                                  np.asarray(keras.ops.cast(want, "float32")))


@pytest.mark.spec("eq01")
def _shapes():
    """The shape types Keras' initializers accept: lists, tuples of NumPy ints, a tensor, TensorFlow's TensorShape."""
    shapes = [[3, 4], (np.int64(3), np.int32(4)), keras.ops.convert_to_tensor([3, 4])]
    if TENSORFLOW:
        import tensorflow as tf

        shapes.append(tf.TensorShape([3, 4]))
    return shapes


@pytest.mark.parametrize("shape", _shapes())
def test_eq01_shape_types_keras_accepts(shape):
    want = np.asarray(ki.GlorotUniform(seed=1)((3, 4)))
    np.testing.assert_array_equal(np.asarray(ki.GlorotUniform(seed=1)(shape)), want)


@pytest.mark.spec("eq01", "eq02", "eq03")
def test_eq01_eq02_eq03_scalar_and_empty_shapes_as_keras():
    # Keras' compute_fans gives a scalar fans (1, 1); a zero dimension gives an empty tensor.
    for name, make in FACTORIES.items():
        w = np.asarray(make(seed=1)((), dtype="float64"))
        assert w.shape == () and abs(float(w)) <= _expected(name, 1, 1)[3]
        empty = make(seed=1)((0, 5), dtype="float16")
        assert tuple(empty.shape) == (0, 5) and keras.backend.standardize_dtype(empty.dtype) == "float16"


# ---- configs, signatures, files --------------------------------------------------------------


@pytest.mark.spec("eq01", "eq02", "eq03")
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_eq01_eq02_eq03_signature_and_config_cover_the_keras_twin(name):
    cls = FACTORIES[name]
    twin_cls = {"glorot": K.GlorotUniform, "torch": K.VarianceScaling, "flax": K.LecunNormal}[name]
    fixed = {"scale", "mode", "distribution"} if name != "glorot" else set()  # fixed by the law (eq. 2 / 3)
    ours_params = set(inspect.signature(cls).parameters)
    assert set(inspect.signature(twin_cls).parameters) - fixed <= ours_params
    assert {"seed", "input_axes", "output_axes"} <= ours_params
    assert isinstance(cls(), K.VarianceScaling)
    init = cls(seed=3, input_axes=[0], output_axes=[1, 2])
    config = init.get_config()
    assert set(TWINS[name](seed=3).get_config()) - fixed <= set(config)
    restored = cls.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config
    np.testing.assert_array_equal(np.asarray(restored((4, 2, 3))), np.asarray(init((4, 2, 3))))


@pytest.mark.spec("eq01", "eq02", "eq03")
def test_eq01_eq02_eq03_keras_file_round_trip_with_einsum_and_attention(tmp_path):
    inp = keras.Input((3, 16))
    h = keras.layers.MultiHeadAttention(2, 4, kernel_initializer=ki.FlaxDefault(seed=keras.random.SeedGenerator(5)))(
        inp, inp)
    h = keras.layers.EinsumDense("abc,cd->abd", output_shape=(3, 6), kernel_initializer=ki.TorchDefault(
        seed=2, input_axes=[0], output_axes=[1]))(h)
    out = keras.layers.Dense(1, kernel_initializer=ki.GlorotUniform(layout="torch"))(keras.layers.Flatten()(h))
    model = keras.Model(inp, out)
    loaded = assert_keras_round_trip(model, tmp_path / "m.keras")
    ed = loaded.layers[2]
    assert isinstance(ed.kernel_initializer, ki.TorchDefault) and ed.kernel_initializer.input_axes == [0]
    assert isinstance(loaded.layers[1]._kernel_initializer.seed, keras.random.SeedGenerator)
    loaded.compile(optimizer="sgd", loss="mse", jit_compile=JIT_COMPILE)
    hist = loaded.fit(np.ones((4, 3, 16), "float32"), np.zeros((4, 1), "float32"), epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])


@pytest.mark.spec("eq01", "eq02", "eq03")
@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_eq01_eq02_eq03_docstrings_name_the_equation_and_arguments(name):
    doc = FACTORIES[name].__doc__
    assert "math::" in doc and "Args:" in doc and "Keras twin" in doc
    for arg in inspect.signature(FACTORIES[name]).parameters:
        assert f"{arg}:" in doc, arg


class TestKerasLayerHarness(testing.TestCase):
    """Keras' own layer checks (config and serialization round trips, symbolic and eager shapes, training,
    mixed precision) on an EinsumDense layer whose kernel comes from each initializer."""

    @pytest.mark.spec("eq01", "eq02", "eq03")
    def test_eq01_eq02_eq03_einsum_dense_in_run_layer_test(self):
        # one seed kind per initializer: an int, a SeedGenerator, None
        for (name, cls), seed in zip(FACTORIES.items(), (3, keras.random.SeedGenerator(3), None), strict=True):
            with self.subTest(name=name, seed=seed):
                self.run_layer_test(
                    keras.layers.EinsumDense,
                    init_kwargs={"equation": "abc,cde->abde", "output_shape": (3, 4, 5),
                                 "kernel_initializer": cls(seed=seed)},
                    input_shape=(2, 3, 6), expected_output_shape=(2, 3, 4, 5),
                    expected_num_trainable_weights=1, expected_num_non_trainable_weights=0,
                    expected_num_seed_generators=0, expected_num_losses=0, supports_masking=False)
