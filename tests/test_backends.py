"""The library on whichever Keras backend runs the suite (``KERAS_BACKEND``; README runs all three).

No TensorFlow import here: initializers, LinearDecay, the regularizers, BatchNormalization,
``nonfinite="skip"``, model.fit and the .keras round trip against the spec on the current backend,
and, on JAX and PyTorch, that ``import keras_optreg`` loads no TensorFlow module.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_optreg as ko
import keras_optreg_spec.corrected as sc
from keras_optreg import initializers as ki
from keras_optreg import layers as L
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg_spec import algorithms as A
from keras_optreg_spec import printed
from tests import backend as B
from tests import stats

BACKEND = keras.backend.backend()
F32 = 2.0 ** -23


def _law(name, fan_in, fan_out):
    if name == "flax":
        sigma = float(sc.eq03_lecun_normal_sigma(fan_in))
        m2, _ = stats.truncated_standard_normal_moments(2.0)
        return sigma ** 2 * m2, stats.truncated_normal_kurtosis(2.0), \
            (lambda x: sc.truncated_normal_cdf(x, sigma)), 2.0 * sigma
    b = float(sc.eq01_glorot_uniform_bound(fan_in, fan_out) if name == "glorot"
              else printed.eq02_he_uniform_bound(fan_in))
    return b * b / 3.0, stats.UNIFORM_KURTOSIS, stats.uniform_cdf(b), b


KERAS_TORCH_TRUNCATION = pytest.mark.xfail(
    BACKEND == "torch", strict=True,
    reason="Keras 3.15.1's torch truncated_normal keeps the first of 4 candidates inside (-2, 2) and returns an "
           "outside one when all 4 miss (p = 4.3e-6 per draw; measured: these 60000 draws hold one); FlaxDefault "
           "draws what its Keras twin LecunNormal draws (tests/test_initializers_dropin.py)")


@pytest.mark.parametrize("seed", [0, 12345])
@pytest.mark.parametrize("name, cls", [("glorot", ki.GlorotUniform), ("torch", ki.TorchDefault),
                                       pytest.param("flax", ki.FlaxDefault, marks=KERAS_TORCH_TRUNCATION)])
@pytest.mark.spec("eq01", "eq02", "eq03")
def test_eq01_eq02_eq03_initializers_on_this_backend(name, cls, seed):
    shape = (200, 300)
    var, kurt, cdf, bound = _law(name, *shape)
    w = np.asarray(cls(seed=seed)(shape, dtype="float32"))
    assert w.dtype == np.float32 and w.shape == shape
    assert np.max(np.abs(w)) <= bound * (1 + 2 * F32)
    assert abs(stats.variance_z(w, var, kurt)) < stats.Z_LIMIT
    assert stats.ks_pvalue(w, cdf) > stats.KS_P_MIN
    np.testing.assert_array_equal(np.asarray(cls(seed=seed)(shape, dtype="float32")), w)  # seeded: reproducible


@pytest.mark.spec("eq06")
def test_eq06_linear_decay_on_this_backend():
    sched = ko.LinearDecay(0.1, 0.01, decay_steps=10)
    steps = np.arange(0, 15)
    got = np.array([float(sched(keras.ops.convert_to_tensor(k, "int32"))) for k in steps])
    want = sc.eq06_linear_decay(steps, np.float32(0.1), np.float32(0.01), 10)
    assert_matches_spec(got, want, eq="eq06", rtol=8 * F32)


@pytest.mark.parametrize("cls, spec_fn", [(ko.regularizers.Tikhonov, sc.eq19_tikhonov_penalty),
                                          (ko.regularizers.WeightNorm, sc.weight_norm_penalty)])
@pytest.mark.spec("eq19")
def test_eq19_regularizers_on_this_backend(cls, spec_fn):
    w = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float32)
    got = float(cls(0.03)(keras.ops.convert_to_tensor(w)))
    assert_matches_spec(got, spec_fn([w], float(np.float32(0.03))), eq="eq19", rtol=64 * F32)


@pytest.mark.spec("eq20")
def test_eq20_batchnorm_on_this_backend():
    x = np.random.default_rng(2).normal(3.0, 2.0, size=(6, 4, 4, 3)).astype(np.float32)
    layer = L.BatchNormalization(momentum=0.5)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    assert_matches_spec(y, sc.eq20_batchnorm_normalize(x.astype(np.float64), epsilon=1e-3)[0], eq="eq20",
                    rtol=1e-5, atol=1e-5)
    moving = sc.batchnorm_moving_update(np.zeros(3), np.ones(3), x, momentum=0.5)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), moving[0], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), moving[1], rtol=1e-5)
    mean, var = np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)
    want = (x - mean) / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, training=False)), want, rtol=1e-5, atol=1e-5)


@pytest.mark.spec("eq18")
def test_eq18_nonfinite_skip_on_this_backend():
    var = keras.Variable(np.array([1.0, 2.0], np.float32))
    opt = ko.Adam(0.1, nonfinite="skip")
    opt.build([var])
    opt.apply([keras.ops.convert_to_tensor(np.array([np.inf, 1.0], np.float32))], [var])
    np.testing.assert_array_equal(np.asarray(var), [1.0, 2.0])
    assert int(opt.skipped_steps) == 1
    g = np.array([1.0, -1.0], np.float32)
    opt.apply([keras.ops.convert_to_tensor(g)], [var])
    # the skipped step still counts (t = iterations + 1 = 2, see keras_optreg.optimizers): spec step t index 1
    want, *_ = A.alg_adam_step(np.array([1.0, 2.0]), np.zeros(2), np.zeros(2), 1, g.astype(np.float64), 0.1,
                               float(np.float32(0.9)), float(np.float32(0.999)), float(np.float32(1e-8)))
    np.testing.assert_allclose(np.asarray(var), want, rtol=8 * F32)


def _model():
    inp = keras.Input((6,))
    h = keras.layers.Dense(16, kernel_initializer=ki.GlorotUniform(seed=0),
                           kernel_regularizer=ko.regularizers.Tikhonov(1e-4))(inp)
    h = keras.layers.ReLU()(L.BatchNormalization(momentum=0.9)(h))
    return keras.Model(inp, keras.layers.Dense(1, kernel_initializer=ki.FlaxDefault(seed=1))(h))


@pytest.mark.parametrize("opt", ["adam", "sgd", "rmsprop", "adagrad"])
@pytest.mark.spec("eq04", "eq12", "eq18", "eq19", "eq20")
def test_fit_and_keras_round_trip_on_this_backend(opt, tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(128, 6)).astype(np.float32)
    y = (x @ rng.normal(size=(6, 1))).astype(np.float32)
    schedule = ko.LinearDecay(3e-2, 3e-3, decay_steps=40)
    optimizer = {"adam": lambda: ko.Adam(schedule), "sgd": lambda: ko.SGD(schedule, momentum=0.9),
                 "rmsprop": lambda: ko.RMSprop(schedule, momentum=0.5), "adagrad": lambda: ko.Adagrad(0.1)}[opt]()
    model = _model()
    model.compile(optimizer=optimizer, loss="mse", jit_compile=B.JIT_COMPILE)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, batch_size=16, verbose=0, shuffle=False)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.5 * before, (before, after)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    assert type(again.optimizer) is type(model.optimizer)
    saved = [v for v in model.optimizer.variables if not v.path.endswith("gradient_norm")]  # JAX: never saved
    restored = [v for v in again.optimizer.variables if not v.path.endswith("gradient_norm")]
    for a, b in zip(restored, saved, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(again.predict(x, verbose=0)), np.asarray(model.predict(x, verbose=0)))


@pytest.mark.skipif(BACKEND == "tensorflow", reason="checked by the KERAS_BACKEND=jax and torch runs of the suite")
def test_import_loads_no_tensorflow_on_this_backend():
    """``import keras_optreg`` (every subpackage, the demo and the conformance tool) under JAX or PyTorch
    imports no TensorFlow module: in a fresh interpreter, ``sys.modules`` has none afterwards."""
    code = ("import sys, keras_optreg, keras_optreg.callbacks, keras_optreg.conformance, keras_optreg.demo, "
            "keras_optreg.functional, keras_optreg.layers, keras_optreg.optimizers; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras')))")
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "PYTHONPATH": str(pathlib.Path(__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-2000:]
