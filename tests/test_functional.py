"""keras_optreg.functional: the lecture's snippet, against the corrected spec, pure and compilable, on every
backend: ``tf.function(jit_compile=True)`` on TensorFlow, ``jax.jit`` on JAX, ``torch.compile(fullgraph=True)``
on PyTorch (``compiled`` below)."""

from __future__ import annotations

import keras
import ml_dtypes
import numpy as np
import pytest
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st

import keras_optreg
from keras_optreg import functional as F
from keras_optreg.conformance import cases
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg_spec import algorithms as A
from tests.backend import JAX, TORCH, jit, x64

FACTORIES = {"sgd": F.sgd, "momentum": F.sgd, "nesterov": F.sgd, "adagrad": F.adagrad, "rmsprop": F.rmsprop,
             "rmsprop_momentum": F.rmsprop, "adam": F.adam, "adagrad_r0": F.adagrad, "centered_rmsprop": F.rmsprop,
             "amsgrad": F.adam}


def T(x, dtype="float32"):
    return keras.ops.convert_to_tensor(np.asarray(x), dtype=dtype)


def N(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def functional_trajectory(kind, hp, theta0, grads, dtype="float32"):
    opt = FACTORIES[kind](**cases.constructor_kwargs(kind, hp))
    weights = {"layer": [T(theta0, dtype)]}  # nested: a dict of lists
    opt_state = opt.init(weights)
    out = []
    for g in grads:
        updates, opt_state = opt.update({"layer": [T(g, dtype)]}, opt_state, weights)
        weights = F.apply_updates(weights, updates)
        out.append(N(weights["layer"][0]).astype(np.float64))
    assert keras.backend.standardize_dtype(weights["layer"][0].dtype) == dtype
    return out


def _check(kind, eq, data, dtype="float32"):
    if dtype == "float64" and not x64():
        reject()  # JAX without jax_enable_x64 holds no float64 array
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
    """Low-precision parameters: slots and updates in float32, apply_updates rounds once per step
    (float64 too where the backend has it)."""
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
    weights = {"layer": [T(theta0)]}
    opt_state = opt.init(weights)
    alpha = float(cases.S.as_float32(hp["momentum"]))
    got = []
    for _ in range(cases.STEPS):
        phi = weights["layer"][0]
        updates, opt_state = opt.update({"layer": [T(a) * phi]}, opt_state, weights)
        weights = F.apply_updates(weights, updates)
        m = N(opt_state["momentum"]["layer"][0]).astype(np.float64)  # m = -v, Keras' sign
        got.append(N(weights["layer"][0]).astype(np.float64) + alpha * m)
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
    state = opt.init([T(theta)])
    updates, _ = opt.update([keras.ops.mean(T(per_example), axis=0)], state)
    got = N(F.apply_updates([T(theta)], updates)[0])
    want = A.alg_adam_step(theta, 0.0, 0.0, 0, per_example.astype(np.float64).mean(axis=0), 0.01)[0]
    assert_matches_spec(got, want, eq="eq13", rtol=1e-5, atol=1e-7)


def test_lecture_snippet_line_for_line_and_pure():
    weights = [keras.ops.ones((2, 3)), {"b": keras.ops.zeros((3,))}]
    grads = [keras.ops.full((2, 3), 0.5), {"b": keras.ops.full((3,), -1.0)}]
    opt = keras_optreg.functional.adam(learning_rate=0.001)
    opt_state = opt.init(weights)
    updates, opt_state2 = opt.update(grads, opt_state, weights)
    weights2 = keras_optreg.functional.apply_updates(weights, updates)
    assert int(opt_state["count"]) == 0 and int(opt_state2["count"]) == 1  # the input state is not mutated
    again, _ = opt.update(grads, opt_state, weights)  # pure: same inputs, same outputs
    for a, b in zip(keras.tree.flatten(updates), keras.tree.flatten(again), strict=True):
        np.testing.assert_array_equal(N(a), N(b))
    # Adam's first step moves every coordinate by lr against the gradient's sign (Kingma & Ba sec. 2.1)
    np.testing.assert_allclose(N(weights2[0]), 1.0 - 0.001, rtol=1e-5)
    np.testing.assert_allclose(N(weights2[1]["b"]), 0.001, rtol=1e-4)


def compiled(fn):
    """``fn`` compiled as this backend compiles a step, and a function giving how many times it was
    traced: ``tests.backend.jit`` (XLA) on TensorFlow and JAX; on PyTorch ``torch.compile(fullgraph=True)``
    (a graph break is an error) with a backend that counts the graphs Dynamo captures and runs them as
    captured (Inductor itself: ``test_functional_adam_under_torch_compile_inductor``)."""
    if TORCH:
        import torch

        torch._dynamo.reset()  # every test's step is a new closure over the same code object
        graphs = []

        def count(gm, example_inputs):
            graphs.append(gm)
            return gm.forward

        return torch.compile(fn, fullgraph=True, backend=count), lambda: len(graphs)
    traces = []

    def traced(*args):
        traces.append(1)  # runs once per trace under tf.function and jax.jit
        return fn(*args)

    return jit(traced), lambda: len(traces)


def _step(opt):
    def step(w, s, g):  # pure: the state goes in and comes out (jax.jit, torch.compile)
        u, s = opt.update(g, s, w)
        return F.apply_updates(w, u), s
    return step


def _xla_case(kind):
    hp = ({"learning_rate": 0.01, "momentum": 0.9} if kind in ("momentum", "nesterov", "rmsprop_momentum")
          else {"learning_rate": 0.01})
    opt = FACTORIES[kind](**cases.constructor_kwargs(kind, hp))
    rng = np.random.default_rng(0)
    weights = [T(rng.normal(size=(3, 5)))]
    grads = [[T(rng.normal(size=(3, 5)))] for _ in range(8)]
    return opt, weights, grads


@pytest.mark.parametrize("kind", list(FACTORIES))
def test_functional_eager_equals_compiled_with_one_trace(kind):
    """8 steps eager and compiled (XLA on TensorFlow and JAX, torch.compile's graph on PyTorch) agree,
    and the compiled step is traced once: the state (count included) is data, not Python."""
    opt, weights, grads = _xla_case(kind)
    step = _step(opt)
    fast, traces = compiled(step)
    we, se, wx, sx = weights, opt.init(weights), weights, opt.init(weights)
    for g in grads:
        we, se = step(we, se, g)
        wx, sx = fast(wx, sx, g)
    assert traces() == 1
    np.testing.assert_allclose(N(wx[0]), N(we[0]), rtol=1e-5, atol=1e-6)
    assert int(N(sx["count"])) == 8
    assert not np.allclose(N(we[0]), N(weights[0]))


@pytest.mark.skipif(not TORCH, reason="PyTorch's compiler (Inductor); the other backends compile with XLA above")
def test_functional_adam_under_torch_compile_inductor():
    """torch.compile with its default backend (Inductor, generated C++ on CPU): the same 8 Adam steps as eager."""
    import torch

    torch._dynamo.reset()
    opt, weights, grads = _xla_case("adam")
    step = _step(opt)
    fast = torch.compile(step, fullgraph=True)
    we, se, wx, sx = weights, opt.init(weights), weights, opt.init(weights)
    for g in grads:
        we, se = step(we, se, g)
        wx, sx = fast(wx, sx, g)
    np.testing.assert_allclose(N(wx[0]), N(we[0]), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not JAX, reason="jax.grad through a jitted step: JAX's functional training loop")
def test_eq18_functional_adam_trains_under_jax_jit_with_jax_grad():
    """The optax-style loop JAX users write: jax.value_and_grad of a loss, functional.adam's update and
    apply_updates in one jax.jit step. Least squares with an exact solution: the loss falls below 1e-3
    of its start within 300 steps (lr 0.05), and matches the same loop run eagerly."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.normal(size=(16, 4)).astype(np.float32))
    b = a @ jnp.asarray(rng.normal(size=(4,)).astype(np.float32))
    opt = F.adam(learning_rate=0.05)

    def loss(w):
        return jnp.mean((a @ w["w"] - b) ** 2)

    def step(w, s):
        value, g = jax.value_and_grad(loss)(w)
        u, s = opt.update(g, s, w)
        return F.apply_updates(w, u), s, value

    fast = jax.jit(step)
    w = {"w": jnp.zeros(4)}
    we, se, wx, sx = w, opt.init(w), w, opt.init(w)
    first = float(loss(w))
    for t in range(300):
        wx, sx, _ = fast(wx, sx)
        if t < 5:
            we, se, _ = step(we, se)
            if t == 4:
                np.testing.assert_allclose(N(wx["w"]), N(we["w"]), rtol=1e-5, atol=1e-6)
    assert float(loss(wx)) < 1e-3 * first


@pytest.mark.spec("eq06")
def test_eq06_functional_accepts_a_schedule():
    """LinearDecay as the learning rate, eager and compiled: step k uses sched(k) (count before the step)."""
    sched = keras_optreg.LinearDecay(0.1, 0.01, 4)
    opt = F.sgd(learning_rate=sched)
    fast, traces = compiled(lambda g, s, w: opt.update(g, s, w))
    w = [keras.ops.zeros((2,))]
    state = fast_state = opt.init(w)
    for k in range(6):
        updates, state = opt.update([keras.ops.ones((2,))], state, w)
        np.testing.assert_allclose(N(updates[0]), -float(N(sched(k))), rtol=1e-6)
        fast_updates, fast_state = fast([keras.ops.ones((2,))], fast_state, w)
        np.testing.assert_allclose(N(fast_updates[0]), -float(N(sched(k))), rtol=1e-6)
    assert traces() == 1


@pytest.mark.skipif(not x64(), reason="this backend stores float64 as float32 (JAX without jax_enable_x64)")
@pytest.mark.spec("centered_rmsprop")
def test_centered_rmsprop_functional_float64_step_is_float64_accurate():
    """Regression (PyTorch backend): Graves' max(r - b^2, 0) was computed in float32 for float64
    parameters (Keras' torch ``ops.maximum`` demotes float64, keras-team/keras#23223). rho = 0, g = 1:
    r = b = 1, so the step is -lr / sqrt(0 + delta) = -1 / sqrt(1e-3) (Graves 2013 eq. 40), to float64's precision."""
    opt = F.rmsprop(1.0, rho=0.0, epsilon=1e-3, centered=True)
    w = [T([0.0], "float64")]
    updates, _ = opt.update([T([1.0], "float64")], opt.init(w), w)
    assert keras.backend.standardize_dtype(updates[0].dtype) == "float64"
    np.testing.assert_allclose(N(updates[0]), [-1.0 / np.sqrt(1e-3)], rtol=4 * np.finfo(np.float64).eps)


@pytest.mark.skipif(not x64(), reason="this backend stores float64 as float32 (JAX without jax_enable_x64)")
@pytest.mark.spec("amsgrad")
def test_amsgrad_functional_float64_step_is_float64_accurate():
    """Regression (PyTorch backend): AMSGrad's running maximum max(r_max, r) came back float32 for float64
    parameters (the same Keras demotion). beta_1 = beta_2 = 0, g = 1: s = r = r_max = 1 and both bias
    corrections are 1, so the step is -lr / (sqrt(1) + delta) = -1 / 1.001 (Kingma & Ba Alg. 1, Keras'
    AMSGrad form), to float64's precision; a NaN gradient still gives a NaN step (the maximum keeps NaN)."""
    opt = F.adam(1.0, beta_1=0.0, beta_2=0.0, epsilon=1e-3, amsgrad=True)
    w = [T([0.0, 0.0], "float64")]
    updates, state = opt.update([T([1.0, np.nan], "float64")], opt.init(w), w)
    assert keras.backend.standardize_dtype(updates[0].dtype) == "float64"
    u = N(updates[0])
    np.testing.assert_allclose(u[0], -1.0 / 1.001, rtol=4 * np.finfo(np.float64).eps)
    assert np.isnan(u[1]) and np.isnan(N(state["velocity_hat"][0])[1])
