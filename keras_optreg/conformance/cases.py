"""Optimizer cases shared by the test suite and the conformance tool's optimizer rows.

Drawn hyper-parameters, the float64 spec step of each optimizer kind (``spec_step``), the spec
trajectory and its slots, and the tolerance of a float32 (or float16/bfloat16/float64) trajectory
against it. NumPy, Hypothesis and ``keras_optreg_spec`` only (``ml_dtypes`` comes with TensorFlow).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

from keras_optreg.conformance import strategies as S
from keras_optreg_spec import algorithms as A

STEPS = 7  # t = 1 .. 7
KINDS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adagrad_r0", "centered_rmsprop", "amsgrad")
#: Adam with Keras' ``weight_decay`` (decoupled, LH19 Alg. 2): a tool row, and ``spec_step`` / ``hyper`` know it
DECAY_KINDS = ("adamw",)
ULP = 2.0 ** -24
#: unit roundoff of the dtype an update is computed in (float32 for float16/bfloat16 variables)
COMPUTE_U = {"float16": 2.0 ** -24, "bfloat16": 2.0 ** -24, "float32": 2.0 ** -24, "float64": 2.0 ** -53}
#: relative spacing of a stored variable (one ulp: either rounding mode of the final cast) and its smallest normal
STORE = {"float16": (2.0 ** -10, 2.0 ** -14), "bfloat16": (2.0 ** -7, 2.0 ** -126)}
NP_DTYPES = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16),
             "float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def hyper(kind, **overrides):
    """Hyper-parameters in their domain, as keyword arguments of the keras_optreg constructor.

    ``overrides``: another strategy for a hyper-parameter by name (the tool's rows draw epsilon from
    ``S.small_epsilons``), or None to leave it out; the key order, hence the draws, stay as here.
    """
    lr = S.learning_rates
    if kind == "sgd":
        fields = {"learning_rate": lr}
    elif kind in ("momentum", "nesterov"):
        fields = {"learning_rate": lr, "momentum": S.unit_interval}
    elif kind == "adagrad":
        fields = {"learning_rate": lr, "epsilon": S.epsilons}
    elif kind == "adagrad_r0":
        fields = {"learning_rate": lr, "epsilon": S.epsilons,
                  "initial_accumulator_value": st.one_of(st.just(0.1), S.log_uniform(-4, 2))}
    elif kind in ("rmsprop", "centered_rmsprop"):
        fields = {"learning_rate": lr, "rho": S.unit_interval, "epsilon": S.epsilons}
    else:
        fields = {"learning_rate": lr, "beta_1": S.unit_interval, "beta_2": S.unit_interval, "epsilon": S.epsilons}
        if kind == "adamw":  # lr * weight_decay <= 0.5: the decay is a visible fraction of theta per step
            fields["weight_decay"] = S.log_uniform(-3, -0.3)
    fields.update({k: v for k, v in overrides.items() if k in fields})
    return st.fixed_dictionaries({k: v for k, v in fields.items() if v is not None})


def constructor_kwargs(kind, hp):
    kw = dict(hp)
    if kind == "nesterov":
        kw["nesterov"] = True
    if kind == "centered_rmsprop":
        kw["centered"] = True
    if kind == "amsgrad":
        kw["amsgrad"] = True
    return kw


def flush(x, dtype):
    """``x`` rounded to ``dtype``, values below its smallest normal number set to 0 (TensorFlow on CPU
    flushes float32 subnormals to zero; float16 subnormals are flushed too, to keep both sides equal)."""
    x = np.asarray(x, np.float64).astype(NP_DTYPES[dtype])
    tiny = float(ml_dtypes.finfo(NP_DTYPES[dtype]).tiny)
    return np.where(np.abs(x.astype(np.float64)) < tiny, np.zeros((), x.dtype), x)


@st.composite
def trajectories(draw, kind, dtype="float32"):
    """(hp, theta0, grads of shape (STEPS, *shape)) in ``dtype``: gradient scales 1e-6 .. 1e3."""
    shape = draw(S.shapes())
    store = "float32" if dtype == "float32" else dtype
    theta0 = flush(draw(S.arrays(shape, -10.0, 10.0)), store)
    grads = flush(draw(S.scaled_arrays((STEPS, *shape))), store)
    return draw(hyper(kind)), theta0, grads


def rounded_hyper(hp, dtype="float32", functional=False):
    """The hyper-parameters as the optimizer computes with them: rounded to float32, except on a
    float64 variable, which computes in float64 with everything but the learning rate (a float32
    Variable, ``keras.backend.floatx()``; the functional API keeps the Python float) exact."""
    if dtype == "float64":
        return {k: float(S.as_float32(v)) if k == "learning_rate" and not functional else float(v)
                for k, v in hp.items()}
    return {k: float(S.as_float32(v)) for k, v in hp.items()}


def spec_step(kind, theta, s, g, lr, t, h):
    """One float64 spec step of optimizer ``kind`` (GBC16 Alg. 8.1-8.7 and the variants' sources) at 1-based
    step ``t``: returns the new theta and updates the slots dict ``s`` ("v", "r", "s", "b", "m") in place."""
    if kind == "sgd":
        return A.alg_sgd_step(theta, g, lr)
    if kind == "momentum":
        theta, s["v"] = A.alg_momentum_step(theta, s["v"], g, lr, h["momentum"])
    elif kind == "nesterov":
        theta, s["v"] = A.alg_nesterov_step_lookahead(theta, s["v"], g, lr, h["momentum"])
    elif kind in ("adagrad", "adagrad_r0"):
        theta, s["r"] = A.alg_adagrad_step(theta, s["r"], g, lr, h["epsilon"])
    elif kind == "rmsprop":
        theta, s["r"] = A.alg_rmsprop_step(theta, s["r"], g, lr, h["rho"], h["epsilon"])
    elif kind == "centered_rmsprop":
        theta, s["r"], s["b"] = A.alg_centered_rmsprop_step(theta, s["r"], s["b"], g, lr, h["rho"], h["epsilon"])
    elif kind == "amsgrad":
        theta, s["s"], s["r"], s["m"], _ = A.alg_amsgrad_step(theta, s["s"], s["r"], s["m"], t - 1, g, lr,
                                                               h["beta_1"], h["beta_2"], h["epsilon"])
    elif kind == "adamw":
        theta, s["s"], s["r"], _ = A.alg_adamw_step(theta, s["s"], s["r"], t - 1, g, lr, h["beta_1"], h["beta_2"],
                                                    h["epsilon"], h["weight_decay"])
    else:
        theta, s["s"], s["r"], _ = A.alg_adam_step(theta, s["s"], s["r"], t - 1, g, lr, h["beta_1"],
                                                   h["beta_2"], h["epsilon"])
    return theta


def spec_states(kind, hp, theta0, grads, dtype="float32", functional=False):
    """Float64 spec steps, hyper-parameters rounded as the optimizer does: [(theta, slots dict)] after each step."""
    h = rounded_hyper(hp, dtype, functional)
    theta = np.asarray(theta0, np.float64)
    z = np.zeros_like(theta)
    s = {"v": z, "r": z + h.get("initial_accumulator_value", 0.0), "s": z, "b": z, "m": z}
    out = []
    for t, g in enumerate(np.asarray(grads, np.float64), start=1):
        theta = spec_step(kind, theta, s, g, h["learning_rate"], t, h)
        out.append((theta, dict(s)))
    return out


def spec_trajectory(kind, hp, theta0, grads, dtype="float32"):
    """Float64 spec parameters after each step, hyper-parameters rounded as the optimizer does."""
    return [theta for theta, _ in spec_states(kind, hp, theta0, grads, dtype)]


def _centered_slack(h, grads, states, u):
    r"""Extra absolute error of centered RMSprop's parameters: its denominator :math:`D = r - b^2 + \delta`
    cancels. Computed in precision ``u``, :math:`r_t` and :math:`b_t` carry at most
    :math:`4 u t \max r` and :math:`4 u t B` (B bounds :math:`\rho|b| + (1-\rho)|g|`; four roundings per
    step, errors decay by :math:`\rho`), so :math:`\tilde D` is within
    :math:`e = 4ut\max r + 2|b| 4utB + (4utB)^2 + 2u(r + b^2) + uD` of :math:`D` and, clamped, at
    least :math:`\delta`. The step :math:`\epsilon g / \sqrt{D}` is then off by at most
    :math:`\epsilon |g| \max(|D_-^{-1/2} - D^{-1/2}|, |D_+^{-1/2} - D^{-1/2}|)`, :math:`D_\pm` the ends of
    the interval (no linearisation: valid however ill-conditioned :math:`D` is)."""
    total = 0.0
    r_max = b_max = bound = 0.0
    for t, (g, (_, s)) in enumerate(zip(np.asarray(grads, np.float64), states, strict=True), start=1):
        r, b = s["r"], s["b"]
        r_max, b_max = max(r_max, float(np.max(r))), max(b_max, float(np.max(np.abs(b))))
        bound = max(bound, float(np.max(h["rho"] * np.abs(b) + (1 - h["rho"]) * np.abs(g))))
        d = r - b * b + h["epsilon"]
        e = 4 * u * t * r_max + 8 * u * t * b_max * bound + (4 * u * t * bound) ** 2 + 2 * u * (r + b * b) + u * d
        lo, hi = np.maximum(d - 2 * e, h["epsilon"]), d + 2 * e
        inv = 1.0 / np.sqrt(d)
        total += float(np.max(h["learning_rate"] * np.abs(g)
                              * np.maximum(np.abs(1 / np.sqrt(lo) - inv), np.abs(1 / np.sqrt(hi) - inv))))
    return total


def base_tolerance(kind, h, theta0, spec_thetas, u=ULP, rel_factor=1.0):
    """(rtol, atol) of STEPS steps in unit roundoff ``u`` (a handful of roundings per step: 64 u), summed
    over steps, relative to |theta0| + the travelled distance; Adam's 1 - beta**t adds u / (1 - beta) per
    step (cancellation), momentum carries errors with weight 1 / (1 - alpha). ``h``: the rounded
    hyper-parameters; ``rel_factor`` scales the relative part (the tool's centered RMSprop rows: 20)."""
    rel = 64 * u * STEPS
    if kind in ("adam", "amsgrad", "adamw"):
        rel += 4 * u * STEPS / (1.0 - max(h["beta_1"], h["beta_2"]))
    if kind in ("momentum", "nesterov"):
        rel *= 1.0 / (1.0 - h["momentum"])
    rel *= rel_factor
    path = [np.asarray(theta0, np.float64)] + [np.asarray(p, np.float64) for p in spec_thetas]
    with np.errstate(all="ignore"):
        travel = np.abs(path[0]) + sum(np.abs(b - a) for a, b in zip(path, path[1:], strict=False))
    scale = float(np.max(travel)) if np.all(np.isfinite(travel)) else 0.0
    return rel, rel * scale + 1e-30


def tolerance(kind, hp, theta0, spec_thetas, dtype="float32", grads=None, states=None, functional=False):
    """(rtol, atol) for a trajectory of STEPS steps on a ``dtype`` variable against the float64 spec.

    Every step rounds each intermediate to the computing dtype (unit roundoff u, a handful of ops:
    64 u); errors add up over steps relative to |theta0| + sum |update|. Adam's 1 - beta**t loses
    u / (1 - beta) relative accuracy (cancellation), which bounds its bias correction; momentum
    carries errors with weight 1 / (1 - alpha). A float16/bfloat16 variable is stored rounded after
    each step (one ulp of the largest |theta| per step, or a flushed value below its smallest normal);
    the gradients are given, so these errors add up and do not feed back. Centered RMSprop adds the
    error of its cancelling denominator (``_centered_slack``; needs ``grads`` and the spec ``states``).
    """
    h = rounded_hyper(hp, dtype, functional)
    u = COMPUTE_U[dtype]
    rel, atol = base_tolerance(kind, h, theta0, spec_thetas, u)
    if dtype in STORE:
        spacing, tiny = STORE[dtype]
        path = [theta0, *spec_thetas]
        atol += STEPS * max(spacing * max(float(np.max(np.abs(np.asarray(p, np.float64)))) for p in path), tiny)
    if kind == "centered_rmsprop":
        atol += 2 * _centered_slack(h, grads, states, u)
    return rel, atol


# ---- GBC16 Alg. 8.6 (RMSProp with Nesterov momentum) on a quadratic ---------------------------

NESTEROV_RMSPROP_DELTA = 1e-12  # the library's delta; the spec box (Alg. 8.6) has none


@st.composite
def rmsprop_nesterov_quadratics(draw, centered=False):
    r"""(hp, a, theta0) for f(theta) = 0.5 sum(a theta^2), grad a * theta, well-conditioned by construction.

    lr in [1e-4, 1e-2], rho in [0, 0.9], momentum in [0.01, 0.9], a in [0.5, 2], |theta0| in [3, 10]:
    each step :math:`|u| = \epsilon |g| / \sqrt{\delta + r} \le \epsilon / \sqrt{1-\rho} < 0.032`,
    :math:`|v| \le |u| / (1-\alpha) < 0.32`, so in STEPS = 7 steps theta and the interim point stay
    more than 0.4 from 0: :math:`|g| > 0.2` and :math:`r > 0.004`, and the library's
    :math:`\delta = 10^{-12}` changes each step by a relative :math:`\delta / 2r < 10^{-9}`.
    ``centered``: rho in [0.5, 0.9], so that :math:`r - b^2 \ge (1-\rho^t)\rho^t \min g^2 > 3 \cdot 10^{-4}`
    for a slowly varying gradient (at rho = 0 it is 0: the denominator would be delta alone).
    """
    shape = draw(S.shapes())
    sign = np.where(draw(S.arrays(shape, -1.0, 1.0)) < 0, -1.0, 1.0)
    theta0 = S.as_float32(sign * draw(S.arrays(shape, 3.0, 10.0))).astype(np.float32)
    a = S.as_float32(draw(S.arrays(shape, 0.5, 2.0))).astype(np.float32)
    hp = draw(st.fixed_dictionaries({"learning_rate": S.log_uniform(-4, -2),
                                     "rho": st.floats(0.5 if centered else 0.0, 0.9),
                                     "momentum": st.floats(0.01, 0.9)}))
    return hp, a, theta0


def spec_rmsprop_nesterov(hp, a, theta0, centered=False, dtype="float32"):
    """Float64 spec Alg. 8.6 with grad_fn = a * theta: [(theta, r, v, b)] after each step; ``centered`` with
    Graves' denominator sqrt(r - b^2 + delta) (``alg_centered_rmsprop_nesterov_step``, the library's delta)."""
    h = rounded_hyper(hp, dtype)
    a = np.asarray(a, np.float64)
    theta = np.asarray(theta0, np.float64)
    r, v, b = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    out = []
    for _ in range(STEPS):
        if centered:
            theta, r, b, v = A.alg_centered_rmsprop_nesterov_step(theta, r, b, v, lambda x: a * x, h["learning_rate"],
                                                                  h["rho"], h["momentum"], NESTEROV_RMSPROP_DELTA)
        else:
            theta, r, v = A.alg_rmsprop_nesterov_step(theta, r, v, lambda x: a * x, h["learning_rate"], h["rho"],
                                                      h["momentum"])
        out.append((theta, r, v, b))
    return out


def rmsprop_nesterov_tolerance(hp, a, theta0, spec_steps, centered=False, dtype="float32"):
    r"""(rtol, atol) for the look-ahead trajectory, mapped back to theta, against the spec.

    Each step rounds a handful of ops in the computing dtype (64 u relative to the scale |theta0| +
    travel, as ``tolerance``), plus, in the plain case, the relative :math:`\delta / 2r` of the
    library's delta (Alg. 8.6's box has none; the centered spec step takes it). D is the
    denominator: r, or r - b^2 centered. Centered, D cancels: r and b carry 4 u t relative to
    r + b^2, so the step carries at most :math:`4 u t (r + b^2) / D` more (``cond``). An error
    :math:`e` in :math:`\phi` changes the gradient by :math:`a e` and the step by at most
    :math:`\kappa e` with :math:`\kappa = \epsilon \max a / \sqrt{\min D}`
    (:math:`\partial_g\, g/\sqrt{c + (1-\rho) g^2} \le 1/\sqrt{c + (1-\rho) g^2}`; centered, the mean
    term doubles it), which enters :math:`v` and :math:`\phi` (:math:`\phi \leftarrow \phi + \alpha v - u`):
    errors grow at most by :math:`1 + (2+\alpha) 2\kappa` per step, and :math:`v` carries them with
    weight :math:`1/(1-\alpha)`.
    """
    h = rounded_hyper(hp, dtype)
    u = COMPUTE_U[dtype]
    denominators = [r - b * b if centered else r for _, r, _, b in spec_steps]
    min_d = min(float(np.min(d)) for d in denominators)
    cond = max(float(np.max((r + b * b) / d)) for (_, r, _, b), d in zip(spec_steps, denominators, strict=True)) \
        if centered else 0.0
    kappa = h["learning_rate"] * float(np.max(a)) / np.sqrt(min_d) * (2.0 if centered else 1.0)
    grow = (1.0 + (2.0 + h["momentum"]) * kappa) ** STEPS
    # the centered spec step takes the library's delta; Alg. 8.6's box (the plain case) has none
    delta_term = 0.0 if centered else NESTEROV_RMSPROP_DELTA / (2 * min_d)
    rel = (64 * u + 4 * u * STEPS * cond + delta_term) * STEPS * grow / (1.0 - h["momentum"])
    path = [np.asarray(theta0, np.float64)] + [t for t, _, _, _ in spec_steps]
    travel = np.abs(path[0]) + sum(np.abs(y - x) for x, y in zip(path, path[1:], strict=False))
    travel = travel + max(float(np.max(np.abs(v))) for _, _, v, _ in spec_steps)  # phi = theta + alpha v
    return rel, rel * float(np.max(travel)) + 1e-30
