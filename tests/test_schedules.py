"""keras_optreg.LinearDecay against the lecture's eq. (6) (keras_optreg_spec.corrected.eq06_linear_decay)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_optreg
from keras_optreg.conformance import strategies as S
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg_spec import corrected as C
from tests.backend import JAX, jit
from tests.layer_checks import float64_on, numpy

LR = st.floats(0.0, 1.0, width=32, allow_subnormal=False)  # 0 or a normal float32 (LinearDecay checks)


@pytest.mark.spec("eq06")
@given(eps0=LR, eps_tau=LR, tau=st.integers(1, 10_000), k=st.integers(-100, 20_000))
def test_eq06_linear_decay_matches_spec(eps0, eps_tau, tau, k):
    sched = keras_optreg.LinearDecay(eps0, eps_tau, tau)
    got = float(sched(keras.ops.convert_to_tensor(k)))
    kk = min(max(k, 0), tau)  # clamped: negative steps -> eps_0, after tau -> eps_tau
    want = C.eq06_linear_decay(kk, S.as_float32(eps0), S.as_float32(eps_tau), tau)
    assert_matches_spec(got, want, eq="eq06", rtol=1e-5, atol=1e-7, inputs={"eps0": eps0, "eps_tau": eps_tau,
                                                                          "tau": tau, "k": k})


@pytest.mark.spec("eq06")
def test_eq06_negative_steps_clamp_unlike_keras_polynomial_decay():
    ours = keras_optreg.LinearDecay(0.01, 0.001, 500)
    keras_poly = keras.optimizers.schedules.PolynomialDecay(0.01, 500, 0.001)
    assert float(ours(-100)) == np.float32(0.01)
    assert float(keras_poly(-100)) > 0.01  # Keras extrapolates above the initial rate
    assert float(ours(500)) == float(ours(10_000)) == np.float32(0.001)


@pytest.mark.spec("eq06")
def test_eq06_linear_decay_in_an_optimizer_under_xla_and_round_trip():
    sched = keras_optreg.LinearDecay(0.1, 0.0, 3)
    assert keras_optreg.LinearDecay.from_config(sched.get_config()).get_config() == sched.get_config()
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(sched))
    assert isinstance(restored, keras_optreg.LinearDecay)
    opt = keras_optreg.SGD(sched)
    v = keras.Variable(np.zeros(1, np.float32))
    opt.build([v])
    if JAX:  # jax.jit needs a pure step: the optimizer's state in and out (stateless_apply)
        step = jit(lambda ov, tv: opt.stateless_apply(ov, [keras.ops.ones(1)], tv))
        ov, tv = [x.value for x in opt.variables], [v.value]
        for _ in range(5):
            tv, ov = step(ov, tv)
        v.assign(tv[0])
    else:  # XLA on TensorFlow, eager on PyTorch
        step = jit(lambda: opt.apply([keras.ops.ones(1)], [v]))
        for _ in range(5):
            step()
    # SGD with g = 1: theta = -sum_k eps_k over k = 0..4, eps = 0.1, 0.0667, 0.0333, 0, 0 (eq. 6)
    want = -sum(C.eq06_linear_decay(min(k, 3), np.float32(0.1), 0.0, 3) for k in range(5))
    assert_matches_spec(v.numpy(), [want], eq="eq06", rtol=1e-5)


STEP_DTYPES = ("int32", "int64", "float16", "float32", "float64")


@pytest.mark.spec("eq06")
def test_eq06_linear_decay_step_dtypes_eager_and_under_xla():
    # Keras passes the optimizer's int64 `iterations`; a user may pass any integer or float step. The rate is
    # float32 whatever the step's dtype; steps are exact in every dtype here (float16 holds integers to 2048).
    eps0, eps_tau, tau = 0.3, 0.01, 40
    sched = keras_optreg.LinearDecay(eps0, eps_tau, tau)
    steps = [-7, 0, 1, 2.5, 17, 39, 40, 41, 1000]
    want = [C.eq06_linear_decay(min(max(k, 0), tau), S.as_float32(eps0), S.as_float32(eps_tau), tau) for k in steps]
    # float32: alpha, 1 - alpha, two products and a sum, each within an ulp of its terms: at most
    # 8 ulps of eps0 + eps_tau absolute (keras_optreg/conformance/scalars.py's schedule tolerance).
    tol = 8 * 2.0 ** -24 * (eps0 + eps_tau)
    with float64_on("int64", "float64"):  # on JAX, int64 and float64 steps exist inside jax.enable_x64
        fn = jit(sched)
        for dtype in STEP_DTYPES:
            k = [s for s in steps if dtype.startswith("float") or float(s).is_integer()]
            w = [v for s, v in zip(steps, want, strict=True) if s in k]
            for run in (sched, fn):
                got = run(keras.ops.convert_to_tensor(k, dtype))
                assert keras.backend.standardize_dtype(got.dtype) == "float32", dtype
                assert_matches_spec(numpy(got), w, eq="eq06", rtol=0, atol=tol, inputs={"dtype": dtype, "k": k})
        big = keras.ops.convert_to_tensor([2 ** 40, 2 ** 62], "int64")  # beyond int32 and float32's integers
        assert_matches_spec(numpy(fn(big)), [want[-1]] * 2, eq="eq06", rtol=0, atol=tol)  # clamped to tau


@pytest.mark.spec("eq06")
def test_eq06_linear_decay_docstring_and_signature():
    import inspect

    doc = keras_optreg.LinearDecay.__doc__
    assert "math::" in doc and "Args:" in doc and "eq. (6)" in doc and "PolynomialDecay" in doc
    params = list(inspect.signature(keras_optreg.LinearDecay).parameters)
    assert params == ["initial_learning_rate", "final_learning_rate", "decay_steps", "name"]
    assert all(f"{p}:" in doc for p in params)
