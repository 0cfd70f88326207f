"""The lecture's numbered equations (1)-(20), transcribed literally, as printed.

Source: Moritz Wolter, "Initialization, Optimization, and Regularization", lecture slides,
High-Performance Computing and Analytics Lab, University of Bonn, 27 September 2023
(``shared/seed/000_052f3f66258a76da.txt``).

Rules of this module:

* one function per printed equation, ``eqNN_<name>``; nothing is fixed here, not even an obvious
  typo. The corrected forms live in :mod:`keras_optreg_spec.corrected`, the errata in :mod:`keras_optreg_spec.errata`;
* NumPy only, float64; no guard the lecture does not have (a division by zero stays one);
* randomness is an argument (uniform or normal draws), never drawn here.
"""

from __future__ import annotations

import numpy as np

F64 = np.float64


def _f64(x):
    return np.asarray(x, dtype=F64)


# --------------------------------------------------------------------------------------------
# Initialization
# --------------------------------------------------------------------------------------------


def eq01_glorot_uniform_bound(m, n):
    r"""Eq. (1), section "Initialization": the Glorot bound [GB10].

    .. math:: w_{ij} \sim \mathcal{U}\left(-\sqrt{\frac{6}{m+n}}, \sqrt{\frac{6}{m+n}}\right)

    Symbols: m -> ``m`` (input dimensions), n -> ``n`` (output dimensions).
    Returns the bound :math:`\sqrt{6/(m+n)}`.
    """
    return np.sqrt(F64(6.0) / (_f64(m) + _f64(n)))


def eq01_glorot_uniform(u, m, n):
    r"""Eq. (1) as a sampler: maps uniform draws ``u`` in [0, 1) onto U(-b, b), b = eq01 bound.

    Symbols: w_ij -> return value, m -> ``m``, n -> ``n``; ``u`` is the randomness.
    """
    b = eq01_glorot_uniform_bound(m, n)
    return -b + 2.0 * b * _f64(u)


def eq02_he_uniform_bound(m):
    r"""Eq. (2), section "Initialization", printed as "He-uniform" [He+15].

    .. math:: w_{ij} \sim \mathcal{U}\left(-\frac{1}{\sqrt{m}}, \frac{1}{\sqrt{m}}\right)

    Symbols: m -> ``m`` (input dimensions). Returns :math:`1/\sqrt{m}`. See erratum E-init2.
    """
    return F64(1.0) / np.sqrt(_f64(m))


def eq02_he_uniform(u, m):
    """Eq. (2) as a sampler: uniform draws ``u`` in [0, 1) onto U(-1/sqrt(m), 1/sqrt(m))."""
    b = eq02_he_uniform_bound(m)
    return -b + 2.0 * b * _f64(u)


TRUNCATION_SIGMAS = 2.0
"""Eq. (3)'s rule: "Outliers are redrawn if they are larger than 2 sigma"."""


def eq03_truncated_normal_std(n):
    r"""Eq. (3), section "Initialization": the printed standard deviation.

    .. math:: w_{ij} \sim \mathcal{N}\left(0, \sqrt{\frac{1}{n}}\right)

    with :math:`\mathcal{N}(\mu, \sigma)` parametrised by the standard deviation, "outliers are
    redrawn if they are larger than 2 sigma". Symbols: n -> ``n`` (output dimensions),
    sigma -> return value. See erratum E-init3.
    """
    return np.sqrt(F64(1.0) / _f64(n))


def eq03_truncated_normal(z, n):
    r"""Eq. (3) as a sampler, with the lecture's redraw rule made explicit.

    ``z`` holds standard-normal draws of shape ``(k, *shape)``: draw 0 is the first try, draws
    1..k-1 are the redraws. Each output takes the first draw with :math:`|z| \le 2` and scales it
    by :math:`\sigma = \sqrt{1/n}`. A position whose k draws are all outliers is NaN (the lecture
    gives no rule for running out of redraws).
    """
    z = _f64(z)
    ok = np.abs(z) <= TRUNCATION_SIGMAS
    first = np.argmax(ok, axis=0)
    picked = np.take_along_axis(z, first[None], axis=0)[0]
    picked = np.where(ok.any(axis=0), picked, np.nan)
    return eq03_truncated_normal_std(n) * picked


# --------------------------------------------------------------------------------------------
# Network optimization
# --------------------------------------------------------------------------------------------


def eq04_minibatch_gradient(per_example_grads):
    r"""Eq. (4), section "Network optimization" [GBC16, ch. 8].

    .. math:: \mathbf{g}_{\tau} = \frac{1}{m} \nabla_{\theta} \sum_{i=1}^{m} C(f(\mathbf{x}^{i}; \theta), \mathbf{y}^{i})

    The gradient of a sum is the sum of the per-example gradients
    :math:`\nabla_\theta C(f(x^i;\theta), y^i)`, given as the rows of ``per_example_grads``
    (row ``i - 1`` is example ``i``). Symbols: m -> ``len(per_example_grads)``, g_tau -> return.
    """
    grads = _f64(per_example_grads)
    m = grads.shape[0]
    return grads.sum(axis=0) / F64(m)


def eq05_sgd_update(theta, g, eps):
    r"""Eq. (5): :math:`\theta_{\tau+1} = \theta_{\tau} - \epsilon \mathbf{g}_{\tau}`.

    Symbols: theta_tau -> ``theta``, g_tau -> ``g``, epsilon -> ``eps``.
    """
    return _f64(theta) - _f64(eps) * _f64(g)


def eq06_linear_decay(k, eps_0, eps_tau, tau):
    r"""Eq. (6), "Learning rate decay" [GBC16, sec. 8.3.1].

    .. math:: \epsilon_k = (1 - \alpha)\epsilon_0 + \alpha \epsilon_\tau, \quad \alpha = \frac{k}{\tau}

    "After step tau the step size typically remains the same": for k > tau the result is
    eps_tau. Nothing is said for k < 0; the formula is applied as printed (it extrapolates).
    Symbols: k -> ``k``, epsilon_0 -> ``eps_0``, epsilon_tau -> ``eps_tau``, tau -> ``tau``.
    """
    k = _f64(k)
    alpha = k / _f64(tau)
    value = (1.0 - alpha) * _f64(eps_0) + alpha * _f64(eps_tau)
    return np.where(k > _f64(tau), _f64(eps_tau), value)


def _gradient_sum_from_zero(per_example_grads):
    # Shared by eqs. (7), (10), (13), which print the same (erroneous) sum over i = 0..m.
    grads = _f64(per_example_grads)
    m = grads.shape[0] - 1  # rows are x^0 .. x^m: m + 1 of them
    return grads.sum(axis=0) / F64(m)


def eq07_minibatch_gradient(per_example_grads):
    r"""Eq. (7), the gradient on the momentum slide, as printed.

    .. math:: \mathbf{g}_{\tau} = \frac{1}{m} \nabla_{\theta} \sum_{i=0}^{m} C(f(\mathbf{x}^{i}; \theta), \mathbf{y}^{i})

    Rows of ``per_example_grads`` are examples i = 0..m, so m = ``len(per_example_grads) - 1``
    and m + 1 terms are divided by m. See erratum E-sum.
    """
    return _gradient_sum_from_zero(per_example_grads)


def eq08_momentum_velocity(v_prev, g, alpha, eps):
    r"""Eq. (8): :math:`\mathbf{v}_{\tau} = \alpha \mathbf{v}_{\tau-1} - \epsilon \mathbf{g}_{\tau}`.

    "Use v_{-1} = 0". Symbols: v_{tau-1} -> ``v_prev``, g_tau -> ``g``, alpha -> ``alpha``,
    epsilon -> ``eps``.
    """
    return _f64(alpha) * _f64(v_prev) - _f64(eps) * _f64(g)


def eq09_momentum_update(theta, v):
    r"""Eq. (9), as printed: :math:`\theta_{\tau+1} = \theta_{\tau} - \mathbf{v}_{\tau}`.

    Symbols: theta_tau -> ``theta``, v_tau -> ``v``. See erratum E-mom (it ascends).
    """
    return _f64(theta) - _f64(v)


def eq10_minibatch_gradient(per_example_grads):
    r"""Eq. (10), the gradient on the RMSprop slide, as printed (sum i = 0..m, 1/m); see E-sum."""
    return _gradient_sum_from_zero(per_example_grads)


def eq11_rmsprop_accumulator(r_prev, g):
    r"""Eq. (11), as printed: :math:`\mathbf{r}_{\tau} = \mathbf{r}_{\tau-1} + \mathbf{g}_{\tau} \odot \mathbf{g}_{\tau}`.

    Symbols: r_{tau-1} -> ``r_prev``, g_tau -> ``g``. See erratum E-rms (this is AdaGrad's sum).
    """
    g = _f64(g)
    return _f64(r_prev) + g * g


def eq12_rmsprop_update(theta, g, r, eps, delta):
    r"""Eq. (12), as printed.

    .. math:: \theta_{\tau+1} = \theta_{\tau} - \frac{\epsilon}{\delta + \mathbf{r}_{\tau}} \odot \mathbf{g}

    Symbols: theta_tau -> ``theta``, g -> ``g``, r_tau -> ``r``, epsilon -> ``eps``,
    delta -> ``delta``. See erratum E-rms (no square root).
    """
    return _f64(theta) - _f64(eps) / (_f64(delta) + _f64(r)) * _f64(g)


def eq13_minibatch_gradient(per_example_grads):
    r"""Eq. (13), the gradient on the Adam slide, as printed (sum i = 0..m, 1/m); see E-sum."""
    return _gradient_sum_from_zero(per_example_grads)


def eq14_adam_first_moment(s_prev, g, rho1):
    r"""Eq. (14): :math:`\mathbf{s}_{\tau} = \rho_1 \mathbf{s}_{\tau-1} + (1 - \rho_1) \mathbf{g}_{\tau}`.

    Symbols: s_{tau-1} -> ``s_prev``, g_tau -> ``g``, rho_1 -> ``rho1``.
    """
    rho1 = _f64(rho1)
    return rho1 * _f64(s_prev) + (1.0 - rho1) * _f64(g)


def eq15_adam_second_moment(r_prev, g, rho2):
    r"""Eq. (15): :math:`\mathbf{r}_{\tau} = \rho_2 \mathbf{r}_{\tau-1} + (1 - \rho_2) \mathbf{g}_{\tau} \odot \mathbf{g}_{\tau}`.

    Symbols: r_{tau-1} -> ``r_prev``, g_tau -> ``g``, rho_2 -> ``rho2``.
    """
    rho2 = _f64(rho2)
    g = _f64(g)
    return rho2 * _f64(r_prev) + (1.0 - rho2) * g * g


def eq16_adam_first_moment_hat(s, rho1):
    r"""Eq. (16), as printed: :math:`\hat{\mathbf{s}}_{\tau} = \frac{\mathbf{s}_{\tau}}{1 - \rho_1}`.

    Symbols: s_tau -> ``s``, rho_1 -> ``rho1``. See erratum E-adam (power tau missing).
    """
    return _f64(s) / (1.0 - _f64(rho1))


def eq17_adam_second_moment_hat(r, rho2):
    r"""Eq. (17), as printed: :math:`\hat{\mathbf{r}}_{\tau} = \frac{\mathbf{r}_{\tau}}{1 - \rho_2}`.

    Symbols: r_tau -> ``r``, rho_2 -> ``rho2``. See erratum E-adam (power tau missing).
    """
    return _f64(r) / (1.0 - _f64(rho2))


def eq18_adam_update(theta, s_hat, r_hat, g, eps, delta):
    r"""Eq. (18), as printed.

    .. math:: \theta_{\tau+1} = \theta_{\tau} - \frac{\epsilon \hat{\mathbf{s}}_{\tau}}{\delta + \hat{\mathbf{r}}_{\tau}} \odot \mathbf{g}

    Symbols: theta_tau -> ``theta``, s_hat -> ``s_hat``, r_hat -> ``r_hat``, g -> ``g``,
    epsilon -> ``eps``, delta -> ``delta``. See erratum E-adam (no square root, spurious "⊙ g").
    """
    return _f64(theta) - _f64(eps) * _f64(s_hat) / (_f64(delta) + _f64(r_hat)) * _f64(g)


# --------------------------------------------------------------------------------------------
# Regularization
# --------------------------------------------------------------------------------------------


def eq19_weight_norm_penalty(weights, lam):
    r"""Eq. (19), section "Regularization", as printed.

    .. math:: C_w(\theta) = \lambda_r \sum_{i=1}^w |\mathbf{W}_i|_2

    :math:`|\mathbf{W}_i|_2` is read as the (unsquared) Frobenius norm of weight object i, the
    2-norm of its flattened entries. Symbols: W_i -> ``weights[i - 1]``, w -> ``len(weights)``,
    lambda_r -> ``lam``. See erratum E-reg (named Tikhonov, which is squared).
    """
    total = F64(0.0)
    for w in weights:
        total = total + np.sqrt(np.sum(_f64(w) ** 2))
    return _f64(lam) * total


def eq20_batchnorm_normalize(x):
    r"""Eq. (20), first line, as printed [IS15].

    .. math:: \hat{x}_{ij}^{(l)} = \frac{x_{ij}^{(l)} - \mu_x^{(l)}}{\sigma_x^{(l)}}

    "mu and sigma are the batch mean and standard deviation ... for every feature position i, j":
    statistics over the batch axis 0 only, separately for every other index; sigma is the batch
    (biased, 1/m) standard deviation; no epsilon. Symbols: x^(l) -> ``x`` with batch on axis 0.
    See erratum E-bn.
    """
    x = _f64(x)
    mu = x.mean(axis=0, keepdims=True)
    sigma = np.sqrt(((x - mu) ** 2).mean(axis=0, keepdims=True))
    return (x - mu) / sigma


def eq20_batchnorm_affine(x_hat, gamma, beta):
    r"""Eq. (20), second line: :math:`\tilde{x}_{ij}^{(l)} = \gamma \hat{x}_{ij}^{(l)} + \beta^{(l)}`.

    Symbols: x_hat -> ``x_hat``, gamma^(l) -> ``gamma``, beta^(l) -> ``beta`` (broadcast).
    """
    return _f64(gamma) * _f64(x_hat) + _f64(beta)
