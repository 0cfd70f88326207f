"""keras_optreg.functional: the lecture's snippet, against the corrected spec, pure and compilable."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import keras_optreg
from keras_optreg import functional as F
from keras_optreg.conformance import cases
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg_spec import algorithms as A

FACTORIES = {"sgd": F.sgd, "momentum": F.sgd, "nesterov": F.sgd, "adagrad": F.adagrad, "rmsprop": F.rmsprop,
             "rmsprop_momentum": F.rmsprop, "adam": F.adam, "adagrad_r0": F.adagrad, "centered_rmsprop": F.rmsprop,
             "amsgrad": F.adam}


def functional_trajectory(kind, hp, theta0, grads, dtype="float32"):
    opt = FACTORIES[kind](**cases.constructor_kwargs(kind, hp))
    weights = {"layer": [tf.constant(theta0, dtype)]}  # nested: a dict of lists
    opt_state = opt.init(weights)
    out = []
    for g in grads:
        updates, opt_state = opt.update({"layer": [tf.constant(g, dtype)]}, opt_state, weights)
        weights = F.apply_updates(weights, updates)
        out.append(np.asarray(weights["layer"][0].numpy(), np.float64))
    assert weights["layer"][0].dtype == dtype
    return out


def _check(kind, eq, data, dtype="float32"):
    hp, theta0, grads = data
    states = cases.spec_states(kind, hp, theta0, grads, dtype, functional=True)
    want = [theta for theta, _ in states]
    assume(max(float(np.max(np.abs(w))) for w in want) < float(ml_dtypes.finfo(cases.NP_DTYPES[dtype]).max) / 2)
    got = functional_trajectory(kind, hp, theta0, grads, dtype)
    rtol, atol = cases.tolerance(kind, hp, theta0, want, dtype, grads, states, functional=True)
    for t, (a, b) in enumerate(zip(got, want, strict=True), start=1):
        assert_matches_spec(a, b, eq=f"{eq} t={t} {dtype}", rtol=rtol, atol=atol, inputs={"hp": hp, "theta0": theta0})


@pytest.mark.parametrize("kind, eq", [("sgd", "eq05"), ("momentum", "eq09"), ("nesterov", "eq09"),
                                      ("adagrad", "alg8.4"), ("rmsprop", "eq12"), ("adam", "eq18"),
                                      ("adagrad_r0", "alg8.4 r0"), ("centered_rmsprop", "Graves eqs. 38-40"),
                                      ("amsgrad", "AMSGrad")])
@pytest.mark.spec("eq05", "eq09", "eq12", "eq18", "adagrad", "centered_rmsprop", "amsgrad")
def test_functional_trajectories_match_spec(kind, eq):
    @given(cases.trajectories(kind))
    def check(data):
        _check(kind, eq, data)

    check()


@pytest.mark.parametrize("kind", cases.KINDS)
@pytest.mark.spec("eq05", "eq09", "eq12", "eq18", "adagrad", "centered_rmsprop", "amsgrad")
def test_functional_on_float16_bfloat16_float64(kind):
    """Low-precision parameters: slots and updates in float32, apply_updates rounds once per step."""
    @settings(max_examples=30)
    @given(st.sampled_from(("float16", "bfloat16", "float64")).flatmap(
        lambda d: st.tuples(st.just(d), cases.trajectories(kind, d))))
    def check(drawn):
        dtype, data = drawn
        _check(kind, kind, data, dtype)

    check()


@given(cases.rmsprop_nesterov_quadratics())
@pytest.mark.spec("eq12")
def test_eq12_functional_rmsprop_nesterov_momentum_trajectory_matches_gbc16_alg86(data):
    """functional.rmsprop(momentum): the parameters are phi = theta + alpha v; theta = phi - alpha v
    follows spec GBC16 Alg. 8.6 on f = 0.5 sum(a theta^2) (tolerance: ``cases.rmsprop_nesterov_tolerance``)."""
    hp, a, theta0 = data
    opt = F.rmsprop(epsilon=cases.NESTEROV_RMSPROP_DELTA, **hp)
    weights = {"layer": [tf.constant(theta0)]}
    opt_state = opt.init(weights)
    alpha = float(cases.S.as_float32(hp["momentum"]))
    got = []
    for _ in range(cases.STEPS):
        phi = weights["layer"][0]
        updates, opt_state = opt.update({"layer": [tf.constant(a) * phi]}, opt_state, weights)
        weights = F.apply_updates(weights, updates)
        m = opt_state["momentum"]["layer"][0].numpy().astype(np.float64)  # m = -v, Keras' sign
        got.append(weights["layer"][0].numpy().astype(np.float64) + alpha * m)
    want = cases.spec_rmsprop_nesterov(hp, a, theta0)
    rtol, atol = cases.rmsprop_nesterov_tolerance(hp, a, theta0, want)
    for t, (g, (w, _, _, _)) in enumerate(zip(got, want, strict=True), start=1):
        assert_matches_spec(g, w, eq=f"eq12 alg8.6 t={t}", rtol=rtol, atol=atol,
                        inputs={"hp": hp, "a": a, "theta0": theta0})


@pytest.mark.spec("eq13")
def test_eq13_functional_mean_of_per_example_gradients_matches_spec():
    """Feeding the mean of per-example gradients (corrected eq. 13) gives spec's Adam step."""
    rng = np.random.default_rng(3)
    per_example = rng.normal(size=(5, 4)).astype(np.float32)
    theta = rng.normal(size=4).astype(np.float32)
    opt = F.adam(learning_rate=0.01)
    state = opt.init([tf.constant(theta)])
    updates, _ = opt.update([tf.reduce_mean(tf.constant(per_example), axis=0)], state)
    got = F.apply_updates([tf.constant(theta)], updates)[0].numpy()
    want = A.alg_adam_step(theta, 0.0, 0.0, 0, per_example.astype(np.float64).mean(axis=0), 0.01)[0]
    assert_matches_spec(got, want, eq="eq13", rtol=1e-5, atol=1e-7)


def test_lecture_snippet_line_for_line_and_pure():
    weights = [tf.ones((2, 3)), {"b": tf.zeros((3,))}]
    grads = [tf.fill((2, 3), 0.5), {"b": tf.fill((3,), -1.0)}]
    opt = keras_optreg.functional.adam(learning_rate=0.001)
    opt_state = opt.init(weights)
    updates, opt_state2 = opt.update(grads, opt_state, weights)
    weights2 = keras_optreg.functional.apply_updates(weights, updates)
    assert int(opt_state["count"]) == 0 and int(opt_state2["count"]) == 1  # the input state is not mutated
    again, _ = opt.update(grads, opt_state, weights)  # pure: same inputs, same outputs
    for a, b in zip(tf.nest.flatten(updates), tf.nest.flatten(again), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Adam's first step moves every coordinate by lr against the gradient's sign (Kingma & Ba sec. 2.1)
    np.testing.assert_allclose(weights2[0].numpy(), 1.0 - 0.001, rtol=1e-5)
    np.testing.assert_allclose(weights2[1]["b"].numpy(), 0.001, rtol=1e-4)


@pytest.mark.parametrize("kind", list(FACTORIES))
def test_functional_eager_equals_xla_with_one_trace(kind):
    hp = ({"learning_rate": 0.01, "momentum": 0.9} if kind in ("momentum", "nesterov", "rmsprop_momentum")
          else {"learning_rate": 0.01})
    opt = FACTORIES[kind](**cases.constructor_kwargs(kind, hp))
    rng = np.random.default_rng(0)
    weights = [tf.constant(rng.normal(size=(3, 5)).astype(np.float32))]
    grads = [[tf.constant(rng.normal(size=(3, 5)).astype(np.float32))] for _ in range(8)]

    def step(w, s, g):
        u, s = opt.update(g, s, w)
        return F.apply_updates(w, u), s

    xla = tf.function(step, jit_compile=True)
    we, se, wx, sx = weights, opt.init(weights), weights, opt.init(weights)
    for g in grads:
        we, se = step(we, se, g)
        wx, sx = xla(wx, sx, g)
    assert xla.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(wx[0].numpy(), we[0].numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(we[0].numpy(), weights[0].numpy())


@pytest.mark.spec("eq06")
def test_eq06_functional_accepts_a_schedule():
    sched = keras_optreg.LinearDecay(0.1, 0.01, 4)
    opt = F.sgd(learning_rate=sched)
    w = [tf.zeros((2,))]
    state = opt.init(w)
    for k in range(6):
        updates, state = opt.update([tf.ones((2,))], state, w)
        np.testing.assert_allclose(updates[0].numpy(), -float(sched(k)), rtol=1e-6)
