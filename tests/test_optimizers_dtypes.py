"""Issue 13: float16, bfloat16 and float64 variables, on a large variable (above ``FUSED_MIN_SIZE``: on
TensorFlow the fused kernel, eager and inside an outer XLA function; on JAX eager and under ``jax.jit``)
and in a Keras model, against the spec and against Keras' Adam.

The op-by-op path's Hypothesis trajectories are in ``tests/test_optimizers.py``; here the variable
has 64 x 80 = 5120 elements, so on TensorFlow the step is the fused kernel (``keras_optreg._fused``),
with the same derived tolerance (``keras_optreg.conformance.cases.tolerance``). float64 runs where the
backend has it (JAX only with ``jax_enable_x64``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_optreg as ko
from keras_optreg.conformance import cases
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg.optimizers._checks import FUSED_MIN_SIZE
from keras_optreg_spec import algorithms as A
from tests import backend as B
from tests.test_optimizers import CLASSES

SHAPE = (64, 80)
assert np.prod(SHAPE) >= FUSED_MIN_SIZE
DTYPES = ("float16", "bfloat16") + (("float64",) if B.x64() else ())
HP = {"sgd": {"learning_rate": 0.1}, "momentum": {"learning_rate": 0.05, "momentum": 0.9},
      "nesterov": {"learning_rate": 0.05, "momentum": 0.9}, "adagrad": {"learning_rate": 0.1, "epsilon": 1e-7},
      "adagrad_r0": {"learning_rate": 0.1, "epsilon": 1e-7, "initial_accumulator_value": 0.1},
      "rmsprop": {"learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-6},
      "centered_rmsprop": {"learning_rate": 0.01, "rho": 0.9, "epsilon": 1e-6},
      "adam": {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8},
      "amsgrad": {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-8}}


@pytest.mark.parametrize("kind", cases.KINDS)
@pytest.mark.spec("eq05", "eq09", "eq12", "eq18", "adagrad", "centered_rmsprop", "amsgrad")
def test_large_variable_on_low_precision_and_float64(kind):
    rng = np.random.default_rng(13)
    hp = HP[kind]
    for dtype in DTYPES:
        theta0 = cases.flush(rng.uniform(-2, 2, size=SHAPE), dtype)
        scales = 10.0 ** rng.uniform(-3, 1, size=(cases.STEPS, 1, 1))
        grads = cases.flush(rng.normal(size=(cases.STEPS, *SHAPE)) * scales, dtype)
        states = cases.spec_states(kind, hp, theta0, grads, dtype)
        want = [t for t, _ in states]
        rtol, atol = cases.tolerance(kind, hp, theta0, want, dtype, grads, states)
        for mode in sorted({B.MODES[0], B.MODES[-1]}):  # eager, and XLA / jax.jit where there is one
            opt = CLASSES[kind](**cases.constructor_kwargs(kind, hp))
            var = keras.Variable(theta0, dtype=dtype)
            fn = B.stepper(opt, [var], mode)
            for t, g in enumerate(grads, start=1):
                fn([keras.ops.convert_to_tensor(g, dtype)])
                assert_matches_spec(np.asarray(var.numpy(), np.float64), want[t - 1], eq=f"{kind} {dtype} {mode} t={t}",
                                rtol=rtol, atol=atol)
            slots = [v for v in opt.variables if tuple(v.shape) == SHAPE]
            assert len(slots) == {"sgd": 0, "centered_rmsprop": 2, "adam": 2, "amsgrad": 3}.get(kind, 1)
            assert all(v.dtype == ("float64" if dtype == "float64" else "float32") for v in slots)


@pytest.mark.spec("eq18")
def test_eq18_issue13_float16_adam_step_is_finite():
    """The issue's case: one Adam step on float16 [1, 2] with gradient [0, 1] gave [nan, 1.98]; bfloat16 [nan, nan].

    Spec: t = 1, s = (1 - rho1) g, r = (1 - rho2) g^2, s_hat = g, r_hat = g^2, so theta - eps g / (|g| + delta):
    [1, 2 - 0.001 / (1 + 1e-8)], rounded once to the variable's dtype."""
    for dtype in ("float16", "bfloat16"):
        var = keras.Variable(np.array([1.0, 2.0]), dtype=dtype)
        ko.Adam(1e-3).apply([keras.ops.convert_to_tensor([0.0, 1.0], dtype)], [var])
        want = A.alg_adam_step(np.array([1.0, 2.0]), 0.0, 0.0, 0, np.array([0.0, 1.0]), float(np.float32(1e-3)))[0]
        np.testing.assert_array_equal(var.numpy().astype(np.float64),
                                      cases.flush(want, dtype).astype(np.float64))


def _low_precision_model(dtype):
    keras.utils.set_random_seed(5)
    return keras.Sequential([keras.Input((8,), dtype=dtype), keras.layers.Dense(16, activation="tanh", dtype=dtype),
                             keras.layers.Dense(1, dtype=dtype)])


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.spec("eq18")
def test_eq18_dense_low_precision_model_trains_without_nan_where_keras_adam_trains(dtype):
    """Issue 13: Dense(dtype="float16") with Adam(1e-3) had NaN weights after 4 steps; now every optimizer
    halves the loss within 8 epochs, as Keras' Adam does in float16."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = (x @ rng.normal(size=(8, 1)) * 0.5).astype(np.float32)
    histories = {}
    for name, opt in (("keras", keras.optimizers.Adam(1e-2)), ("keras_optreg", ko.Adam(1e-2)),
                      ("keras_optreg_amsgrad", ko.Adam(1e-2, amsgrad=True)), ("rmsprop", ko.RMSprop(1e-2)),
                      ("adagrad", ko.Adagrad(5e-2))):
        model = _low_precision_model(dtype)
        model.compile(opt, loss="mse")
        histories[name] = model.fit(x, y, batch_size=16, epochs=8, shuffle=False, verbose=0).history["loss"]
        assert all(np.isfinite(w.astype(np.float32)).all() for w in model.get_weights()), name
        assert all(w.dtype == model.layers[0].kernel.dtype for w in model.get_weights())
    if dtype == "float16":  # Keras' Adam trains in float16 (in bfloat16 beta_2 rounds to 1 and it does not move)
        assert np.isfinite(histories["keras"]).all() and histories["keras"][-1] < 0.5 * histories["keras"][0]
    for name, losses in histories.items():
        if name != "keras":
            assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0], (name, losses)
