"""Shared cases for the optimizer tests: drawn hyper-parameters, the float64 spec trajectory,
and the tolerance of a float32 trajectory against it."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from keras_optreg_spec import algorithms as A
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
    # TensorFlow on CPU flushes float32 subnormals to zero (FTZ/DAZ): hand both sides the flushed values
    tiny = np.finfo(np.float32).tiny
    theta0 = np.where(np.abs(theta0) < tiny, np.float32(0), theta0)
    grads = np.where(np.abs(grads) < tiny, np.float32(0), grads)
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


# ---- GBC16 Alg. 8.6 (RMSProp with Nesterov momentum) on a quadratic ---------------------------

NESTEROV_RMSPROP_DELTA = 1e-12  # the library's delta; the spec box (Alg. 8.6) has none


@st.composite
def rmsprop_nesterov_quadratics(draw):
    r"""(hp, a, theta0) for f(theta) = 0.5 sum(a theta^2), grad a * theta, well-conditioned by construction.

    lr in [1e-4, 1e-2], rho in [0, 0.9], momentum in [0.01, 0.9], a in [0.5, 2], |theta0| in [3, 10]:
    each step :math:`|u| = \epsilon |g| / \sqrt{\delta + r} \le \epsilon / \sqrt{1-\rho} < 0.032`,
    :math:`|v| \le |u| / (1-\alpha) < 0.32`, so in STEPS = 7 steps theta and the interim point stay
    more than 0.4 from 0: :math:`|g| > 0.2` and :math:`r > 0.004`, and the library's
    :math:`\delta = 10^{-12}` changes each step by a relative :math:`\delta / 2r < 10^{-9}`.
    """
    shape = draw(S.shapes())
    sign = np.where(draw(S.arrays(shape, -1.0, 1.0)) < 0, -1.0, 1.0)
    theta0 = S.as_float32(sign * draw(S.arrays(shape, 3.0, 10.0))).astype(np.float32)
    a = S.as_float32(draw(S.arrays(shape, 0.5, 2.0))).astype(np.float32)
    hp = draw(st.fixed_dictionaries({"learning_rate": S.log_uniform(-4, -2), "rho": st.floats(0.0, 0.9),
                                     "momentum": st.floats(0.01, 0.9)}))
    return hp, a, theta0


def spec_rmsprop_nesterov(hp, a, theta0):
    """Float64 spec Alg. 8.6 with grad_fn = a * theta: [(theta, r, v)] after each step."""
    h = {k: float(S.as_float32(v)) for k, v in hp.items()}
    a = np.asarray(a, np.float64)
    theta = np.asarray(theta0, np.float64)
    r, v = np.zeros_like(theta), np.zeros_like(theta)
    out = []
    for _ in range(STEPS):
        theta, r, v = A.alg_rmsprop_nesterov_step(theta, r, v, lambda x: a * x, h["learning_rate"], h["rho"],
                                                  h["momentum"])
        out.append((theta, r, v))
    return out


def rmsprop_nesterov_tolerance(hp, a, theta0, spec_steps):
    r"""(rtol, atol) for the float32 look-ahead trajectory, mapped back to theta, against the spec.

    Each step rounds a handful of float32 ops (64 ULP relative to the scale |theta0| + travel, as
    ``tolerance``), plus the relative :math:`\delta / 2r` of the library's delta. An error
    :math:`e` in :math:`\phi` changes the gradient by :math:`a e` and the step by at most
    :math:`\kappa e` with :math:`\kappa = \epsilon \max a / \sqrt{\min r}`
    (:math:`\partial_g\, g/\sqrt{c + (1-\rho) g^2} \le 1/\sqrt{c + (1-\rho) g^2}`), which enters
    :math:`v` and :math:`\phi` (:math:`\phi \leftarrow \phi + \alpha v - u`): errors grow at most by
    :math:`1 + (2+\alpha)\kappa` per step, and :math:`v` carries them with weight :math:`1/(1-\alpha)`.
    """
    h = {k: float(S.as_float32(v)) for k, v in hp.items()}
    min_r = min(float(np.min(r)) for _, r, _ in spec_steps)
    kappa = h["learning_rate"] * float(np.max(a)) / np.sqrt(min_r)
    grow = (1.0 + (2.0 + h["momentum"]) * kappa) ** STEPS
    rel = (64 * ULP + NESTEROV_RMSPROP_DELTA / (2 * min_r)) * STEPS * grow / (1.0 - h["momentum"])
    path = [np.asarray(theta0, np.float64)] + [t for t, _, _ in spec_steps]
    travel = np.abs(path[0]) + sum(np.abs(y - x) for x, y in zip(path, path[1:], strict=False))
    travel = travel + max(float(np.max(np.abs(v))) for _, _, v in spec_steps)  # phi = theta + alpha v
    return rel, rel * float(np.max(travel)) + 1e-30
