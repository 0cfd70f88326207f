"""keras_optreg optimizers against the corrected spec (GBC16 Alg. 8.1-8.7 and the variants): trajectories.

Imports no TensorFlow: ``tox -e jax`` runs this file on the JAX backend too.
"""

from __future__ import annotations

import keras
import ml_dtypes
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import keras_optreg
from keras_optreg.conformance import cases
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg_spec import algorithms as A
from keras_optreg_spec import corrected as C

CLASSES = {"sgd": keras_optreg.SGD, "momentum": keras_optreg.SGD, "nesterov": keras_optreg.SGD,
           "adagrad": keras_optreg.Adagrad, "rmsprop": keras_optreg.RMSprop, "adam": keras_optreg.Adam,
           "adagrad_r0": keras_optreg.Adagrad, "centered_rmsprop": keras_optreg.RMSprop, "amsgrad": keras_optreg.Adam,
           "adamw": keras_optreg.Adam}
#: float64 where the backend holds it (JAX does only with jax_enable_x64; tox -e jax runs without)
FLOAT64 = float(keras.ops.convert_to_numpy(keras.ops.convert_to_tensor(1 + 2.0 ** -40, dtype="float64"))) != 1.0
LOW_AND_DOUBLE = ("float16", "bfloat16") + (("float64",) if FLOAT64 else ())


def keras_trajectory(kind, hp, theta0, grads, dtype="float32"):
    opt = CLASSES[kind](**cases.constructor_kwargs(kind, hp))
    var = keras.Variable(np.asarray(theta0), dtype=dtype)
    out = []
    for g in grads:
        opt.apply([keras.ops.convert_to_tensor(np.asarray(g), dtype=dtype)], [var])
        out.append(np.asarray(keras.ops.convert_to_numpy(var), np.float64))
    assert keras.backend.standardize_dtype(var.dtype) == dtype
    return out


def check_trajectory(kind, eq, data, dtype="float32"):
    hp, theta0, grads = data
    states = cases.spec_states(kind, hp, theta0, grads, dtype)
    want = [theta for theta, _ in states]
    # a spec trajectory beyond the variable's range (float16: 65504) cannot be stored: not an example
    assume(max(float(np.max(np.abs(w))) for w in want) < float(ml_dtypes.finfo(cases.NP_DTYPES[dtype]).max) / 2)
    got = keras_trajectory(kind, hp, theta0, grads, dtype)
    rtol, atol = cases.tolerance(kind, hp, theta0, want, dtype, grads, states)
    for t, (a, b) in enumerate(zip(got, want, strict=True), start=1):
        assert_matches_spec(a, b, eq=f"{eq} t={t} {dtype}", rtol=rtol, atol=atol,
                        inputs={"hp": hp, "theta0": theta0, "grads": grads[:t]})


@pytest.mark.spec("eq04", "eq05")
@given(cases.trajectories("sgd"))
def test_eq04_eq05_sgd_trajectory_matches_spec(data):
    check_trajectory("sgd", "eq05", data)


@pytest.mark.spec("eq08", "eq09")
@given(cases.trajectories("momentum"))
def test_eq08_eq09_momentum_trajectory_matches_spec(data):
    check_trajectory("momentum", "eq09", data)


@pytest.mark.spec("eq09")
@given(cases.trajectories("nesterov"))
def test_eq09_nesterov_lookahead_trajectory_matches_spec(data):
    check_trajectory("nesterov", "eq09", data)


@pytest.mark.spec("adagrad")
@given(cases.trajectories("adagrad"))
def test_adagrad_trajectory_matches_spec_alg84(data):
    check_trajectory("adagrad", "alg8.4", data)


@pytest.mark.spec("adagrad")
@given(cases.trajectories("adagrad_r0"))
def test_adagrad_initial_accumulator_value_trajectory_matches_spec_alg84_from_r0(data):
    """``Adagrad(initial_accumulator_value=r0)``: Alg. 8.4 started from r = r0 (Keras' default 0.1 among them)."""
    check_trajectory("adagrad_r0", "alg8.4 r0", data)


@pytest.mark.spec("eq11", "eq12")
@given(cases.trajectories("rmsprop"))
def test_eq11_eq12_rmsprop_trajectory_matches_spec(data):
    check_trajectory("rmsprop", "eq12", data)


@pytest.mark.spec("centered_rmsprop")
@given(cases.trajectories("centered_rmsprop"))
def test_centered_rmsprop_trajectory_matches_spec_graves2013(data):
    check_trajectory("centered_rmsprop", "Graves eqs. 38-40", data)


@pytest.mark.spec("eq14", "eq15", "eq16", "eq17", "eq18")
@given(cases.trajectories("adam"))
def test_adam_trajectory_matches_spec(data):
    check_trajectory("adam", "eq18", data)


@pytest.mark.spec("amsgrad")
@given(cases.trajectories("amsgrad"))
def test_amsgrad_trajectory_matches_spec(data):
    check_trajectory("amsgrad", "AMSGrad", data)


@pytest.mark.spec("adamw")
@given(cases.trajectories("adamw"))
def test_adam_weight_decay_is_decoupled_adamw(data):
    """``Adam(weight_decay=wd)`` (Keras' decay, inherited): theta <- theta - lr wd theta outside the moments,
    Loshchilov & Hutter 2019 Alg. 2 as ``algorithms.alg_adamw_step``."""
    check_trajectory("adamw", "adamw", data)


@pytest.mark.spec("eq18")
@pytest.mark.parametrize("beta_2", [2.0 ** -23, 0.999])
@pytest.mark.parametrize("size", [1, 4096], ids=["small", "fused_size"])
def test_adam_with_a_tiny_beta_keeps_the_spec_precision(beta_2, size):
    """Hypothesis' example (CI, issue 17): beta_2 = 2^-23, a gradient then 0. TensorFlow's ResourceApplyAdam
    updates r + (g^2 - r)(1 - beta_2), which cancels there (2e-4 relative off the spec); M.adam's
    beta_2 r + (1 - beta_2) g^2 does not. keras_optreg takes that kernel only for betas >= 1/2
    (keras_optreg._fused.ADAM_MIN_BETA), so both sizes, both betas, match the spec within its tolerance."""
    hp = {"learning_rate": 1.0, "beta_1": 0.5, "beta_2": beta_2, "epsilon": 0.001}
    theta0 = np.zeros(size, np.float32)
    grads = np.asarray([np.full(size, 0.01171875), np.zeros(size)], np.float32)
    check_trajectory("adam", "eq18", (hp, theta0, grads))


@st.composite
def _low_and_double(draw, kind):
    dtype = draw(st.sampled_from(LOW_AND_DOUBLE))
    return dtype, draw(cases.trajectories(kind, dtype))


@pytest.mark.parametrize("kind", cases.KINDS)
@pytest.mark.spec("eq05", "eq09", "eq12", "eq18", "adagrad", "centered_rmsprop", "amsgrad")
def test_optimizers_on_float16_bfloat16_float64_variables(kind):
    """Every optimizer on float16, bfloat16 and float64 variables: the update is computed in float32
    (float64), the low-precision variable rounded once per step (``cases.tolerance``)."""
    @settings(max_examples=40)
    @given(_low_and_double(kind))
    def check(drawn):
        dtype, data = drawn
        check_trajectory(kind, kind, data, dtype)

    check()


@pytest.mark.spec("eq18")
def test_eq18_adam_differs_from_keras_epsilon_hat_form():
    """The docstring's claim: Keras' Adam puts epsilon outside sqrt(r) without bias correction."""
    g = np.array([1e-6], np.float32)
    ours, theirs = keras_optreg.Adam(0.1, epsilon=1e-6), keras.optimizers.Adam(0.1, epsilon=1e-6)
    a, b = keras.Variable(np.zeros(1, np.float32)), keras.Variable(np.zeros(1, np.float32))
    ours.apply([g], [a])
    theirs.apply([keras.ops.convert_to_tensor(g)], [b])  # Keras' torch Adam takes tensors only
    want = A.alg_adam_step(np.zeros(1), 0.0, 0.0, 0, g, 0.1, 0.9, 0.999, 1e-6)[0]
    assert_matches_spec(a.numpy(), want, eq="eq18", rtol=1e-4)
    assert not np.allclose(b.numpy(), want, rtol=1e-2)


@pytest.mark.parametrize("batch", [1, 4, 7])
@pytest.mark.spec("eq04", "eq07", "eq10", "eq13")
def test_fit_uses_the_mean_of_per_example_gradients(batch):
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
    assert_matches_spec(model.layers[0].kernel.numpy(), want, eq="eq04", rtol=1e-5, atol=1e-6)


def _slot(opt, name):
    (v,) = [w for w in opt.variables if w.path.endswith(f"_{name}")]
    return v


@pytest.mark.parametrize("centered", [False, True], ids=["plain", "centered"])
@pytest.mark.spec("eq12", "centered_rmsprop")
def test_eq12_centered_rmsprop_nesterov_momentum_trajectory_matches_gbc16_alg86(centered):
    """RMSprop(momentum) holds phi = theta + alpha v (look-ahead form) and the slot m = -v (Keras' sign);
    theta = phi + alpha m follows spec GBC16 Alg. 8.6 with the gradient a * theta~ of f = 0.5 sum(a theta^2)
    at the interim point; ``centered`` with Graves' denominator (float64 variables: centered RMSprop's
    r - b^2 cancels, which float32 would turn into noise on this slowly varying gradient)."""
    dtype = "float64" if centered else "float32"
    if not FLOAT64 and centered:
        pytest.skip("this backend stores float64 as float32 (JAX without jax_enable_x64)")

    @given(cases.rmsprop_nesterov_quadratics(centered))
    def check(data):
        hp, a, theta0 = data
        opt = keras_optreg.RMSprop(epsilon=cases.NESTEROV_RMSPROP_DELTA, centered=centered, **hp)
        var = keras.Variable(np.asarray(theta0), dtype=dtype)
        opt.build([var])
        alpha = cases.rounded_hyper(hp, dtype)["momentum"]
        got = []
        for _ in range(cases.STEPS):
            phi = np.asarray(keras.ops.convert_to_numpy(var), np.float64)
            opt.apply([keras.ops.convert_to_tensor(a * phi, dtype=dtype)], [var])  # the gradient at phi
            m = np.asarray(keras.ops.convert_to_numpy(_slot(opt, "momentum")), np.float64)
            got.append(np.asarray(keras.ops.convert_to_numpy(var), np.float64) + alpha * m)
        want = cases.spec_rmsprop_nesterov(hp, a, theta0, centered, dtype)
        rtol, atol = cases.rmsprop_nesterov_tolerance(hp, a, theta0, want, centered, dtype)
        for t, (g, (w, _, _, _)) in enumerate(zip(got, want, strict=True), start=1):
            assert_matches_spec(g, w, eq=f"eq12 alg8.6 centered={centered} t={t}", rtol=rtol, atol=atol,
                            inputs={"hp": hp, "a": a, "theta0": theta0})

    check()


@pytest.mark.spec("eq12")
def test_eq12_rmsprop_momentum_is_nesterov_not_keras_classical_momentum():
    """The docstring's claim: Keras' RMSprop(momentum) is classical momentum, so the two differ; the
    slots are Keras' (velocity r, then momentum m only when momentum > 0)."""
    g = np.array([1.0, -2.0], np.float32)
    ours, theirs = keras_optreg.RMSprop(0.01, momentum=0.9), keras.optimizers.RMSprop(0.01, momentum=0.9)
    a, b = keras.Variable(np.zeros(2, np.float32)), keras.Variable(np.zeros(2, np.float32))
    for _ in range(3):
        ours.apply([g], [a])
        theirs.apply([keras.ops.convert_to_tensor(g)], [b])  # Keras' torch RMSprop takes tensors only
    assert not np.allclose(a.numpy(), b.numpy(), rtol=1e-2)
    plain = keras_optreg.RMSprop(momentum=0.0)
    plain.build([keras.Variable(np.zeros(2, np.float32))])
    assert not [w for w in plain.variables if w.path.endswith("_momentum")]  # the slot only when momentum > 0
    assert _slot(ours, "momentum").shape == (2,)
    # Keras' sign: both momentum buffers grow along the gradient at the first step (m = lr g / sqrt(...) > 0 for g > 0)
    assert np.sign(_slot(ours, "momentum").numpy()[0]) == np.sign(_slot(theirs, "momentum").numpy()[0]) == 1.0
