"""keras_optreg optimizers against the corrected spec (GBC16 Alg. 8.1-8.7): trajectories."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given

import keras_optreg
from keras_optreg_spec import algorithms as A
from keras_optreg_spec import corrected as C
from tests import _optim_cases as cases
from tests.assertions import assert_conforms

CLASSES = {"sgd": keras_optreg.SGD, "momentum": keras_optreg.SGD, "nesterov": keras_optreg.SGD,
           "adagrad": keras_optreg.Adagrad, "rmsprop": keras_optreg.RMSprop, "adam": keras_optreg.Adam}


def keras_trajectory(kind, hp, theta0, grads):
    opt = CLASSES[kind](**cases.constructor_kwargs(kind, hp))
    var = keras.Variable(theta0)
    out = []
    for g in grads:
        opt.apply([g], [var])
        out.append(np.array(var.numpy()))
    return out


def check_trajectory(kind, eq, data):
    hp, theta0, grads = data
    got = keras_trajectory(kind, hp, theta0, grads)
    want = cases.spec_trajectory(kind, hp, theta0, grads)
    rtol, atol = cases.tolerance(kind, hp, theta0, want)
    for t, (a, b) in enumerate(zip(got, want, strict=True), start=1):
        assert_conforms(a, b, eq=f"{eq} t={t}", rtol=rtol, atol=atol,
                        inputs={"hp": hp, "theta0": theta0, "grads": grads[:t]})


@given(cases.trajectories("sgd"))
def test_eq04_eq05_sgd_trajectory_matches_spec(data):
    check_trajectory("sgd", "eq05", data)


@given(cases.trajectories("momentum"))
def test_eq08_eq09_momentum_trajectory_matches_spec(data):
    check_trajectory("momentum", "eq09", data)


@given(cases.trajectories("nesterov"))
def test_eq09_nesterov_lookahead_trajectory_matches_spec(data):
    check_trajectory("nesterov", "eq09", data)


@given(cases.trajectories("adagrad"))
def test_adagrad_trajectory_matches_spec_alg84(data):
    check_trajectory("adagrad", "alg8.4", data)


@given(cases.trajectories("rmsprop"))
def test_eq11_eq12_rmsprop_trajectory_matches_spec(data):
    check_trajectory("rmsprop", "eq12", data)


@given(cases.trajectories("adam"))
def test_eq14_eq15_eq16_eq17_eq18_adam_trajectory_matches_spec(data):
    check_trajectory("adam", "eq18", data)


def test_eq18_adam_differs_from_keras_epsilon_hat_form():
    """The docstring's claim: Keras' Adam puts epsilon outside sqrt(r) without bias correction."""
    g = np.array([1e-6], np.float32)
    ours, theirs = keras_optreg.Adam(0.1, epsilon=1e-6), keras.optimizers.Adam(0.1, epsilon=1e-6)
    a, b = keras.Variable(np.zeros(1, np.float32)), keras.Variable(np.zeros(1, np.float32))
    ours.apply([g], [a])
    theirs.apply([g], [b])
    want = A.alg_adam_step(np.zeros(1), 0.0, 0.0, 0, g, 0.1, 0.9, 0.999, 1e-6)[0]
    assert_conforms(a.numpy(), want, eq="eq18", rtol=1e-4)
    assert not np.allclose(b.numpy(), want, rtol=1e-2)


@pytest.mark.parametrize("batch", [1, 4, 7])
def test_eq04_eq07_eq10_eq13_fit_uses_the_mean_of_per_example_gradients(batch):
    """model.fit with a mean loss hands the optimizer the mean of per-example gradients (corrected
    eqs. 4, 7, 10, 13), not their sum as printed."""
    rng = np.random.default_rng(batch)
    x = rng.normal(size=(batch, 3)).astype(np.float32)
    y = rng.normal(size=(batch, 1)).astype(np.float32)
    w0 = rng.normal(size=(3, 1)).astype(np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    model.layers[0].kernel.assign(w0)
    model.compile(keras_optreg.SGD(0.1), loss="mse")
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    w = w0.astype(np.float64)
    per_example = [2.0 * (x[i] @ w - y[i])[0] * x[i][:, None] for i in range(batch)]
    want = A.alg_sgd_step(w, C.minibatch_gradient(per_example), 0.1)
    assert_conforms(model.layers[0].kernel.numpy(), want, eq="eq04", rtol=1e-5, atol=1e-6)


def _velocity(opt):
    (v,) = [w for w in opt.variables if "velocity" in w.path]
    return v


@given(cases.rmsprop_nesterov_quadratics())
def test_eq12_rmsprop_nesterov_momentum_trajectory_matches_gbc16_alg86(data):
    """RMSprop(momentum) holds phi = theta + alpha v (look-ahead form); theta = phi - alpha v follows
    spec GBC16 Alg. 8.6 with the gradient a * theta~ of f = 0.5 sum(a theta^2) at the interim point."""
    hp, a, theta0 = data
    opt = keras_optreg.RMSprop(epsilon=cases.NESTEROV_RMSPROP_DELTA, **hp)
    var = keras.Variable(theta0)
    opt.build([var])
    alpha = float(cases.S.as_float32(hp["momentum"]))
    got = []
    for _ in range(cases.STEPS):
        opt.apply([a * var.numpy()], [var])  # the gradient at phi, the interim point of Alg. 8.6
        got.append(var.numpy().astype(np.float64) - alpha * _velocity(opt).numpy().astype(np.float64))
    want = cases.spec_rmsprop_nesterov(hp, a, theta0)
    rtol, atol = cases.rmsprop_nesterov_tolerance(hp, a, theta0, want)
    for t, (g, (w, _, _)) in enumerate(zip(got, want, strict=True), start=1):
        assert_conforms(g, w, eq=f"eq12 alg8.6 t={t}", rtol=rtol, atol=atol,
                        inputs={"hp": hp, "a": a, "theta0": theta0})


def test_eq12_rmsprop_momentum_is_nesterov_not_keras_classical_momentum():
    """The docstring's claim: Keras' RMSprop(momentum) is classical momentum, so the two differ."""
    g = np.array([1.0, -2.0], np.float32)
    ours, theirs = keras_optreg.RMSprop(0.01, momentum=0.9), keras.optimizers.RMSprop(0.01, momentum=0.9)
    a, b = keras.Variable(np.zeros(2, np.float32)), keras.Variable(np.zeros(2, np.float32))
    for _ in range(3):
        ours.apply([g], [a])
        theirs.apply([g], [b])
    assert not np.allclose(a.numpy(), b.numpy(), rtol=1e-2)
    plain = keras_optreg.RMSprop(momentum=0.0)
    plain.build([keras.Variable(np.zeros(2, np.float32))])
    assert not [w for w in plain.variables if "velocity" in w.path]  # the slot only when momentum > 0
    assert _velocity(ours).shape == (2,)
