"""Shared cases for the optimizer tests: drawn hyper-parameters, the float64 spec trajectory,
and the tolerance of a float32 trajectory against it."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from spec import algorithms as A
from tests import strategies as S

STEPS = 7  # t = 1 .. 7
KINDS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
ULP = 2.0 ** -24


def hyper(kind):
    """Hyper-parameters in their domain, as keyword arguments of the keras_optreg constructor."""
    lr = S.learning_rates
    if kind == "sgd":
        return st.fixed_dictionaries({"learning_rate": lr})
    if kind in ("momentum", "nesterov"):
        return st.fixed_dictionaries({"learning_rate": lr, "momentum": S.unit_interval})
    if kind == "adagrad":
        return st.fixed_dictionaries({"learning_rate": lr, "epsilon": S.epsilons})
    if kind == "rmsprop":
        return st.fixed_dictionaries({"learning_rate": lr, "rho": S.unit_interval, "epsilon": S.epsilons})
    return st.fixed_dictionaries({"learning_rate": lr, "beta_1": S.unit_interval, "beta_2": S.unit_interval,
                                  "epsilon": S.epsilons})


def constructor_kwargs(kind, hp):
    kw = dict(hp)
    if kind == "nesterov":
        kw["nesterov"] = True
    return kw


@st.composite
def trajectories(draw, kind):
    """(hp, theta0 float32, grads float32 of shape (STEPS, *shape)): gradient scales 1e-6 .. 1e3."""
    shape = draw(S.shapes())
    theta0 = S.as_float32(draw(S.arrays(shape, -10.0, 10.0))).astype(np.float32)
    grads = S.as_float32(draw(S.scaled_arrays((STEPS, *shape)))).astype(np.float32)
    return draw(hyper(kind)), theta0, grads


def spec_trajectory(kind, hp, theta0, grads):
    """Float64 spec parameters after each step, hyper-parameters rounded to float32 first."""
    h = {k: float(S.as_float32(v)) for k, v in hp.items()}
    theta = np.asarray(theta0, np.float64)
    state = [np.zeros_like(theta), np.zeros_like(theta)]
    out = []
    for t, g in enumerate(np.asarray(grads, np.float64)):
        eps = h["learning_rate"]
        if kind == "sgd":
            theta = A.alg_sgd_step(theta, g, eps)
        elif kind == "momentum":
            theta, state[0] = A.alg_momentum_step(theta, state[0], g, eps, h["momentum"])
        elif kind == "nesterov":
            theta, state[0] = A.alg_nesterov_step_lookahead(theta, state[0], g, eps, h["momentum"])
        elif kind == "adagrad":
            theta, state[0] = A.alg_adagrad_step(theta, state[0], g, eps, h["epsilon"])
        elif kind == "rmsprop":
            theta, state[0] = A.alg_rmsprop_step(theta, state[0], g, eps, h["rho"], h["epsilon"])
        else:
            theta, state[0], state[1], _ = A.alg_adam_step(theta, state[0], state[1], t, g, eps, h["beta_1"],
                                                           h["beta_2"], h["epsilon"])
        out.append(theta)
    return out


def tolerance(kind, hp, theta0, spec_thetas):
    """(rtol, atol) for a float32 trajectory of STEPS steps against the float64 spec.

    Every step rounds each intermediate to float32 (relative error ULP each, a handful of ops);
    errors add up over steps relative to |theta0| + sum |update|. Adam's 1 - beta**t loses
    ULP / (1 - beta) relative accuracy in float32 (cancellation), which bounds its bias correction.
    """
    rel = 64 * ULP * STEPS
    if kind == "adam":
        rel += 4 * ULP * STEPS / (1.0 - max(float(S.as_float32(hp["beta_1"])), float(S.as_float32(hp["beta_2"]))))
    if kind in ("momentum", "nesterov"):
        rel *= 1.0 / (1.0 - float(S.as_float32(hp["momentum"])))
    path = [np.asarray(theta0, np.float64)] + list(spec_thetas)
    travel = np.abs(path[0]) + sum(np.abs(b - a) for a, b in zip(path, path[1:], strict=False))
    return rel, rel * float(np.max(travel)) + 1e-30
