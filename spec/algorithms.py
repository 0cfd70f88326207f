"""Multi-step rules: one optimizer step, built only from equation functions.

``printed_*`` chain the lecture's equations as printed (:mod:`keras_optreg_spec.printed`) and take the
per-example gradients, as the lecture's eqs. (4), (7), (10), (13) do. ``alg_*`` chain the
corrected forms (:mod:`keras_optreg_spec.corrected`), follow the GBC16 algorithm they are named after, and take
the minibatch gradient ``g`` (``keras_optreg_spec.corrected.minibatch_gradient`` of the per-example gradients).

Each returns the new parameters followed by the new state, in the order of its arguments.
"""

from __future__ import annotations

import numpy as np

from . import corrected as C
from . import printed as P

# ---- the lecture, as printed ----------------------------------------------------------------


def printed_sgd_step(theta, per_example_grads, eps):
    """Eqs. (4)-(5)."""
    g = P.eq04_minibatch_gradient(per_example_grads)
    return P.eq05_sgd_update(theta, g, eps)


def printed_momentum_step(theta, v, per_example_grads, eps, alpha):
    """Eqs. (7)-(9), as printed (theta - v). Returns (theta, v)."""
    g = P.eq07_minibatch_gradient(per_example_grads)
    v = P.eq08_momentum_velocity(v, g, alpha, eps)
    return P.eq09_momentum_update(theta, v), v


def printed_rmsprop_step(theta, r, per_example_grads, eps, delta):
    """Eqs. (10)-(12), as printed. Returns (theta, r)."""
    g = P.eq10_minibatch_gradient(per_example_grads)
    r = P.eq11_rmsprop_accumulator(r, g)
    return P.eq12_rmsprop_update(theta, g, r, eps, delta), r


def printed_adam_step(theta, s, r, per_example_grads, eps, rho1, rho2, delta):
    """Eqs. (13)-(18), as printed. Returns (theta, s, r)."""
    g = P.eq13_minibatch_gradient(per_example_grads)
    s = P.eq14_adam_first_moment(s, g, rho1)
    r = P.eq15_adam_second_moment(r, g, rho2)
    s_hat = P.eq16_adam_first_moment_hat(s, rho1)
    r_hat = P.eq17_adam_second_moment_hat(r, rho2)
    return P.eq18_adam_update(theta, s_hat, r_hat, g, eps, delta), s, r


# ---- corrected: GBC16 chapter 8 ------------------------------------------------------------


def alg_sgd_step(theta, g, eps):
    """GBC16 Alg. 8.1 (corrected eqs. 4-5)."""
    return C.eq05_sgd_update(theta, g, eps)


def alg_momentum_step(theta, v, g, eps, alpha):
    """GBC16 Alg. 8.2 (corrected eqs. 7-9), v_{-1} = 0. Returns (theta, v)."""
    v = C.eq08_momentum_velocity(v, g, alpha, eps)
    return C.eq09_momentum_update(theta, v), v


def alg_nesterov_step(theta, v, grad_fn, eps, alpha):
    """GBC16 Alg. 8.3: the gradient is taken at the interim point theta + alpha v. Returns (theta, v)."""
    g = grad_fn(C.eq09_momentum_update(theta, np.float64(alpha) * np.asarray(v, np.float64)))
    v = C.eq08_momentum_velocity(v, g, alpha, eps)
    return C.eq09_momentum_update(theta, v), v


def alg_nesterov_step_lookahead(phi, v, g, eps, alpha):
    """Alg. 8.3 after the change of variables phi = theta + alpha v (Bengio et al. 2013, eq. 7).

    ``g`` is the gradient at ``phi``; then v <- alpha v - eps g, phi <- phi + alpha v - eps g.
    This is the form Keras and PyTorch implement; it visits the interim points of Alg. 8.3.
    Returns (phi, v).
    """
    v = C.eq08_momentum_velocity(v, g, alpha, eps)
    return C.eq09_momentum_update(phi, C.eq08_momentum_velocity(v, g, alpha, eps)), v


def alg_adagrad_step(theta, r, g, eps, delta):
    """GBC16 Alg. 8.4 (what the lecture's RMSprop slide prints, with its square root). Returns (theta, r).

    GBC16 starts from r = 0; any other start r_0 (Keras' ``initial_accumulator_value``, 0.1 by
    default) is the state handed to the first step.
    """
    r = C.adagrad_accumulator(r, g)
    return C.adagrad_update(theta, g, r, eps, delta), r


def alg_rmsprop_step(theta, r, g, eps, rho, delta):
    """GBC16 Alg. 8.5 (corrected eqs. 10-12). Returns (theta, r)."""
    r = C.eq11_rmsprop_accumulator(r, g, rho)
    return C.eq12_rmsprop_update(theta, g, r, eps, delta), r


def alg_rmsprop_nesterov_step(theta, r, v, grad_fn, eps, rho, alpha):
    """GBC16 Alg. 8.6: RMSProp with Nesterov momentum (the box has no delta). Returns (theta, r, v)."""
    g = grad_fn(C.eq09_momentum_update(theta, np.float64(alpha) * np.asarray(v, np.float64)))
    r = C.eq11_rmsprop_accumulator(r, g, rho)
    v = np.float64(alpha) * np.asarray(v, np.float64) - np.float64(eps) / np.sqrt(r) * np.asarray(g, np.float64)
    return C.eq09_momentum_update(theta, v), r, v


def alg_adam_step(theta, s, r, t, g, eps=1e-3, rho1=0.9, rho2=0.999, delta=1e-8):
    """GBC16 Alg. 8.7 = Kingma & Ba Alg. 1 (corrected eqs. 13-18). ``t`` counts steps taken so far.

    Returns (theta, s, r, t + 1).
    """
    t = t + 1
    s = C.eq14_adam_first_moment(s, g, rho1)
    r = C.eq15_adam_second_moment(r, g, rho2)
    s_hat = C.eq16_adam_first_moment_hat(s, rho1, t)
    r_hat = C.eq17_adam_second_moment_hat(r, rho2, t)
    return C.eq18_adam_update(theta, s_hat, r_hat, eps, delta), s, r, t


# ---- variants Keras users select by argument -------------------------------------------------


def alg_amsgrad_step(theta, s, r, r_max, t, g, eps=1e-3, rho1=0.9, rho2=0.999, delta=1e-8):
    """AMSGrad [RKK18 Alg. 2] in Keras' and PyTorch's form: Alg. 8.7 with r_hat = max(r_max, r) / (1 - rho2^t).

    ``t`` counts steps taken so far. Returns (theta, s, r, r_max, t + 1).
    """
    t = t + 1
    s = C.eq14_adam_first_moment(s, g, rho1)
    r = C.eq15_adam_second_moment(r, g, rho2)
    r_max = C.amsgrad_second_moment_max(r_max, r)
    s_hat = C.eq16_adam_first_moment_hat(s, rho1, t)
    r_hat = C.eq17_adam_second_moment_hat(r_max, rho2, t)
    return C.eq18_adam_update(theta, s_hat, r_hat, eps, delta), s, r, r_max, t


def alg_centered_rmsprop_step(theta, r, b, g, eps, rho, delta):
    """Centered RMSProp [Gra13 eqs. 38-41] without momentum. Returns (theta, r, b)."""
    r = C.eq11_rmsprop_accumulator(r, g, rho)
    b = C.centered_rmsprop_mean_gradient(b, g, rho)
    return C.centered_rmsprop_update(theta, g, r, b, eps, delta), r, b


def alg_centered_rmsprop_nesterov_step(theta, r, b, v, grad_fn, eps, rho, alpha, delta):
    """GBC16 Alg. 8.6 (Nesterov momentum, gradient at the interim point theta + alpha v) with [Gra13]'s
    centered denominator sqrt(r - b^2 + delta) (delta kept: r - b^2 can be 0). Returns (theta, r, b, v)."""
    g = grad_fn(C.eq09_momentum_update(theta, np.float64(alpha) * np.asarray(v, np.float64)))
    r = C.eq11_rmsprop_accumulator(r, g, rho)
    b = C.centered_rmsprop_mean_gradient(b, g, rho)
    b64 = np.asarray(b, np.float64)
    v = np.float64(alpha) * np.asarray(v, np.float64) - np.float64(eps) / np.sqrt(
        r - b64 * b64 + np.float64(delta)) * np.asarray(g, np.float64)
    return C.eq09_momentum_update(theta, v), r, b, v


def alg_adamw_step(theta, s, r, t, g, eps=1e-3, rho1=0.9, rho2=0.999, delta=1e-8, weight_decay=0.0):
    r"""AdamW, decoupled weight decay [LH19 Alg. 2, the green term], in the parametrisation of PyTorch's
    ``AdamW``, ``optax.adamw`` and Keras' ``weight_decay``: the schedule multiplier is
    :math:`\eta_t = \epsilon/\alpha`, so the decay is scaled by the learning rate (L&H's
    :math:`\lambda` = ``weight_decay`` times their :math:`\alpha`):

    .. math:: \theta_t = \theta_{t-1} - \epsilon \lambda \theta_{t-1} - \epsilon \frac{\hat s_t}{\sqrt{\hat r_t} + \delta}

    with :math:`\hat s_t, \hat r_t` of GBC16 Alg. 8.7 from the loss gradient ``g`` alone (the decay does not
    enter the moments). ``t`` counts steps taken so far. Returns (theta, s, r, t + 1).
    """
    theta = np.asarray(theta, np.float64)
    new, s, r, t = alg_adam_step(theta, s, r, t, g, eps, rho1, rho2, delta)
    return new - np.float64(eps) * np.float64(weight_decay) * theta, s, r, t


def alg_adam_l2_step(theta, s, r, t, g, eps=1e-3, rho1=0.9, rho2=0.999, delta=1e-8, lam=0.0):
    r"""Adam on the loss plus the Tikhonov penalty :math:`\frac\lambda2\|\theta\|^2` (corrected eq. 19):
    [LH19 Alg. 2 with the red term], :math:`g \leftarrow g + \lambda\theta` before GBC16 Alg. 8.7, so the
    decay is divided by :math:`\sqrt{\hat r}` like the gradient: not AdamW's decoupled decay.
    Returns (theta, s, r, t + 1)."""
    theta = np.asarray(theta, np.float64)
    return alg_adam_step(theta, s, r, t, np.asarray(g, np.float64) + np.float64(lam) * theta, eps, rho1, rho2, delta)
