"""Corrected forms of eqs. (1)-(20), transcribed from the sources the lecture cites.

Every function here is written from its source's own statement (an algorithm box of GBC16, a paper's
equation, a framework's documented definition), not copied from :mod:`keras_optreg_spec.printed`. Where the
lecture is right the two transcriptions must agree, which ``tests/test_spec_equations.py`` checks;
where it is wrong, :mod:`keras_optreg_spec.errata` names the erratum and the tests exhibit it.

References:
  [GB10]  Glorot & Bengio, AISTATS 2010, eq. (16).
  [He+15] He, Zhang, Ren & Sun, ICCV 2015, sec. 2.2 (std sqrt(2/n_l)).
  [GBC16] Goodfellow, Bengio & Courville, Deep Learning, MIT Press 2016: eq. (8.14), Algorithms
          7.1, 8.1-8.7, sec. 7.1.1 (eq. 7.1).
  [IS15]  Ioffe & Szegedy, ICML 2015, Algorithms 1 and 2, sec. 3.2.
  [KB15]  Kingma & Ba, "Adam", ICLR 2015, Algorithm 1.
  [RKK18] Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018, Algorithm 2 (AMSGrad).
  [LH19]  Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 2 (AdamW).
  [Gra13] Graves, "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850, eqs. (38)-(41)
          (centered RMSProp).
  PyTorch torch.nn.Linear.reset_parameters: kaiming_uniform_(weight, a=sqrt(5)), bias
          U(-1/sqrt(fan_in), 1/sqrt(fan_in)); torch.nn.init.calculate_gain("leaky_relu", a).
  Flax    flax.linen.Dense default kernel_init = lecun_normal() =
          variance_scaling(1.0, "fan_in", "truncated_normal"); jax.nn.initializers divides the
          std by 0.87962566103423978, the std of a standard normal truncated to (-2, 2).
"""

from __future__ import annotations

import math

import numpy as np

F64 = np.float64


def _f64(x):
    return np.asarray(x, dtype=F64)


# --------------------------------------------------------------------------------------------
# Initialization
# --------------------------------------------------------------------------------------------


def kernel_fans(shape, input_axes=None, output_axes=None):
    r"""``(fan_in, fan_out)``: the :math:`n_j, n_{j+1}` of [GB10] eq. (16) and the :math:`n_l` of [He+15]
    sec. 2.2 (:math:`n_l = k^2 c`, kernel size times input channels) for a kernel of ``shape``.

    Keras' kernel layout (``keras.initializers.VarianceScaling``, Keras 3.15): a Dense kernel is
    (in, out); a convolution kernel (k_1, ..., k_d, in, out) has fan_in = in * k_1 ... k_d and
    fan_out = out * k_1 ... k_d; a vector (n,) has both fans n and a scalar both 1. An einsum kernel
    names its input axes and output axes (``keras.layers.EinsumDense`` passes them): each fan is the
    number of units on those axes, the product of their sizes.
    """
    dims = np.asarray(shape, dtype=np.int64).reshape(-1)
    if input_axes is not None and output_axes is not None:
        return int(np.prod(dims[list(input_axes)])), int(np.prod(dims[list(output_axes)]))
    if dims.size == 0:
        return 1, 1
    if dims.size == 1:
        return int(dims[0]), int(dims[0])
    receptive = int(np.prod(dims[:-2]))
    return int(dims[-2]) * receptive, int(dims[-1]) * receptive


def eq01_glorot_uniform_bound(fan_in, fan_out):
    r"""[GB10] eq. (16): :math:`W \sim U\left[-\frac{\sqrt6}{\sqrt{n_j+n_{j+1}}}, \frac{\sqrt6}{\sqrt{n_j+n_{j+1}}}\right]`."""
    return np.sqrt(F64(6.0)) / np.sqrt(_f64(fan_in) + _f64(fan_out))


def eq01_glorot_uniform(u, fan_in, fan_out):
    """Uniform draws ``u`` in [0, 1) onto U(-b, b) with the [GB10] bound."""
    b = eq01_glorot_uniform_bound(fan_in, fan_out)
    return b * (2.0 * _f64(u) - 1.0)


def torch_kaiming_uniform_bound(fan_in, a):
    r"""PyTorch ``kaiming_uniform_(w, a)``: gain = sqrt(2 / (1 + a^2)), bound = gain * sqrt(3 / fan_in)."""
    gain = np.sqrt(2.0 / (1.0 + _f64(a) ** 2))
    return gain * np.sqrt(3.0 / _f64(fan_in))


def eq02_torch_linear_bound(fan_in):
    r"""Corrected eq. (2): the bound is PyTorch's ``nn.Linear`` default, ``kaiming_uniform_(a=sqrt(5))``.

    .. math:: w_{ij} \sim \mathcal{U}\left(-\frac{1}{\sqrt{\text{fan\_in}}}, \frac{1}{\sqrt{\text{fan\_in}}}\right)

    The bias of ``nn.Linear`` is drawn from the same bound. The value is the lecture's; only the
    name "He-uniform" is wrong (erratum E-init2).
    """
    return torch_kaiming_uniform_bound(fan_in, math.sqrt(5.0))


def eq02_torch_linear(u, fan_in):
    """Uniform draws ``u`` in [0, 1) onto U(-b, b) with PyTorch's nn.Linear bound."""
    b = eq02_torch_linear_bound(fan_in)
    return b * (2.0 * _f64(u) - 1.0)


def he_uniform_bound(fan_in):
    r"""He-uniform, the name eq. (2) uses: the uniform law with [He+15]'s variance 2/fan_in.

    Var U(-b, b) = b^2 / 3 = 2 / fan_in gives :math:`b = \sqrt{6/\text{fan\_in}}` (Keras ``HeUniform``).
    """
    return np.sqrt(6.0 / _f64(fan_in))


def he_normal_std(fan_in):
    r"""[He+15] sec. 2.2: zero-mean Gaussian with standard deviation :math:`\sqrt{2/n_l}`, n_l = fan_in."""
    return np.sqrt(2.0 / _f64(fan_in))


def truncated_standard_normal_std(c=2.0):
    r"""Std of a standard normal truncated to (-c, c): :math:`\sqrt{1 - \frac{2c\,\varphi(c)}{\operatorname{erf}(c/\sqrt2)}}`."""
    phi = math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    return math.sqrt(1.0 - 2.0 * c * phi / math.erf(c / math.sqrt(2.0)))


TRUNCNORM_STD_2 = 0.87962566103423978
"""jax.nn.initializers' constant: ``truncated_standard_normal_std(2.0)``."""


def eq03_lecun_normal_sigma(fan_in):
    r"""Corrected eq. (3): Flax's default ``lecun_normal``, the *untruncated* sigma.

    Target std after truncation :math:`\sqrt{1/\text{fan\_in}}`; the draw is
    :math:`\sigma z` with :math:`z \sim \mathcal N(0,1)` truncated to (-2, 2) and
    :math:`\sigma = \sqrt{1/\text{fan\_in}} / 0.87962566103423978`.
    """
    return np.sqrt(1.0 / _f64(fan_in)) / F64(TRUNCNORM_STD_2)


def eq03_lecun_normal(z, fan_in):
    """Corrected eq. (3) as a sampler over draws ``z`` of shape ``(k, *shape)``: first |z| < 2, times sigma."""
    z = _f64(z)
    ok = np.abs(z) < 2.0
    first = np.argmax(ok, axis=0)
    picked = np.take_along_axis(z, first[None], axis=0)[0]
    picked = np.where(ok.any(axis=0), picked, np.nan)
    return eq03_lecun_normal_sigma(fan_in) * picked


def truncated_normal_cdf(x, sigma, c=2.0):
    """CDF of N(0, sigma) (std parametrisation) truncated to (-c sigma, c sigma); for KS tests."""
    x = _f64(x) / _f64(sigma)
    erf = np.vectorize(math.erf, otypes=[F64])
    phi = 0.5 * (1.0 + erf(np.clip(x, -c, c) / math.sqrt(2.0)))
    lo = 0.5 * (1.0 + math.erf(-c / math.sqrt(2.0)))
    return (phi - lo) / math.erf(c / math.sqrt(2.0))


# --------------------------------------------------------------------------------------------
# Optimization: GBC16 Algorithms 8.1-8.7, one update line per function
# --------------------------------------------------------------------------------------------


def minibatch_gradient(per_example_grads):
    r"""GBC16 Alg. 8.1: :math:`\hat g \leftarrow \frac1m \nabla_\theta \sum_i L(f(x^{(i)};\theta), y^{(i)})`, m examples."""
    grads = _f64(per_example_grads)
    return np.mean(grads, axis=0)


eq04_minibatch_gradient = minibatch_gradient
eq07_minibatch_gradient = minibatch_gradient
eq10_minibatch_gradient = minibatch_gradient
eq13_minibatch_gradient = minibatch_gradient


def eq05_sgd_update(theta, g, eps):
    r"""GBC16 Alg. 8.1: :math:`\theta \leftarrow \theta - \epsilon \hat g`."""
    return _f64(theta) + (-_f64(eps)) * _f64(g)


def eq06_linear_decay(k, eps_0, eps_tau, tau):
    r"""GBC16 eq. (8.14), held constant after iteration tau (sec. 8.3.1).

    :math:`\epsilon_k = \epsilon_0 + \frac{\min(k, \tau)}{\tau}(\epsilon_\tau - \epsilon_0)`. For
    k < 0 this extrapolates, as eq. (8.14) does (the library decides what to do with k < 0).
    """
    k = np.minimum(_f64(k), _f64(tau))
    return _f64(eps_0) + k / _f64(tau) * (_f64(eps_tau) - _f64(eps_0))


def eq08_momentum_velocity(v_prev, g, alpha, eps):
    r"""GBC16 Alg. 8.2: :math:`v \leftarrow \alpha v - \epsilon g`."""
    return _f64(alpha) * _f64(v_prev) + (-_f64(eps)) * _f64(g)


def eq09_momentum_update(theta, v):
    r"""GBC16 Alg. 8.2: :math:`\theta \leftarrow \theta + v` (erratum E-mom)."""
    return _f64(theta) + _f64(v)


def eq11_rmsprop_accumulator(r_prev, g, rho):
    r"""GBC16 Alg. 8.5: :math:`r \leftarrow \rho r + (1 - \rho) g \odot g` (erratum E-rms)."""
    g = _f64(g)
    return _f64(rho) * _f64(r_prev) + (1.0 - _f64(rho)) * (g * g)


def eq12_rmsprop_update(theta, g, r, eps, delta):
    r"""GBC16 Alg. 8.5: :math:`\Delta\theta = -\frac{\epsilon}{\sqrt{\delta + r}} \odot g`, :math:`\theta \leftarrow \theta + \Delta\theta`."""
    return _f64(theta) + (-_f64(eps) / np.sqrt(_f64(delta) + _f64(r))) * _f64(g)


def adagrad_accumulator(r_prev, g):
    r"""GBC16 Alg. 8.4: :math:`r \leftarrow r + g \odot g` (what eq. 11 prints)."""
    g = _f64(g)
    return _f64(r_prev) + g * g


def adagrad_update(theta, g, r, eps, delta):
    r"""GBC16 Alg. 8.4: :math:`\Delta\theta = -\frac{\epsilon}{\delta + \sqrt{r}} \odot g`."""
    return _f64(theta) + (-_f64(eps) / (_f64(delta) + np.sqrt(_f64(r)))) * _f64(g)


def eq14_adam_first_moment(s_prev, g, rho1):
    r"""GBC16 Alg. 8.7 / [KB15] Alg. 1: :math:`s \leftarrow \rho_1 s + (1 - \rho_1) g`."""
    return _f64(rho1) * _f64(s_prev) + (1.0 - _f64(rho1)) * _f64(g)


def eq15_adam_second_moment(r_prev, g, rho2):
    r"""GBC16 Alg. 8.7: :math:`r \leftarrow \rho_2 r + (1 - \rho_2) g \odot g`."""
    g = _f64(g)
    return _f64(rho2) * _f64(r_prev) + (1.0 - _f64(rho2)) * (g * g)


def eq16_adam_first_moment_hat(s, rho1, t):
    r"""GBC16 Alg. 8.7: :math:`\hat s \leftarrow \frac{s}{1 - \rho_1^t}` (erratum E-adam), t >= 1."""
    return _f64(s) / (1.0 - _f64(rho1) ** _f64(t))


def eq17_adam_second_moment_hat(r, rho2, t):
    r"""GBC16 Alg. 8.7: :math:`\hat r \leftarrow \frac{r}{1 - \rho_2^t}` (erratum E-adam), t >= 1."""
    return _f64(r) / (1.0 - _f64(rho2) ** _f64(t))


def eq18_adam_update(theta, s_hat, r_hat, eps, delta):
    r"""GBC16 Alg. 8.7: :math:`\Delta\theta = -\epsilon \frac{\hat s}{\sqrt{\hat r} + \delta}`, :math:`\theta \leftarrow \theta + \Delta\theta`."""
    return _f64(theta) + (-_f64(eps) * _f64(s_hat) / (np.sqrt(_f64(r_hat)) + _f64(delta)))


def amsgrad_second_moment_max(r_max_prev, r):
    r"""[RKK18] Alg. 2: :math:`\hat v_t = \max(\hat v_{t-1}, v_t)`, the running maximum of the second moment.

    Keras and PyTorch (``amsgrad=True``) take it of the uncorrected :math:`r` and then divide by
    :math:`1 - \rho_2^t` as Adam does; [RKK18]'s box has no bias correction.
    """
    return np.maximum(_f64(r_max_prev), _f64(r))


def centered_rmsprop_mean_gradient(b_prev, g, rho):
    r"""[Gra13] eq. (39): :math:`g_i = \aleph g_i + (1 - \aleph) \epsilon_i` (here :math:`b \leftarrow \rho b + (1-\rho) g`)."""
    return _f64(rho) * _f64(b_prev) + (1.0 - _f64(rho)) * _f64(g)


def centered_rmsprop_update(theta, g, r, b, eps, delta):
    r"""[Gra13] eqs. (40)-(41) with momentum :math:`\beth = 0`:
    :math:`\theta \leftarrow \theta - \frac{\epsilon}{\sqrt{r - b \odot b + \delta}} \odot g`, :math:`r` of eq. (38)
    (= ``eq11_rmsprop_accumulator``)."""
    b = _f64(b)
    return _f64(theta) + (-_f64(eps) / np.sqrt(_f64(r) - b * b + _f64(delta))) * _f64(g)


# --------------------------------------------------------------------------------------------
# Regularization
# --------------------------------------------------------------------------------------------


def weight_norm_penalty(weights, lam):
    r"""The penalty eq. (19) prints, read as group lasso: :math:`\lambda \sum_i \lVert W_i \rVert_F`.

    Written as sqrt of a dot product, independently of :func:`keras_optreg_spec.printed.eq19_weight_norm_penalty`.
    """
    total = F64(0.0)
    for w in weights:
        flat = _f64(w).ravel()
        total = total + math.sqrt(float(np.dot(flat, flat)))
    return _f64(lam) * total


def eq19_tikhonov_penalty(weights, lam):
    r"""Corrected eq. (19): Tikhonov / L2, GBC16 sec. 7.1.1, eq. (7.1) :math:`\Omega = \frac12 \lVert w \rVert_2^2`.

    .. math:: C_w(\theta) = \frac{\lambda}{2} \sum_{i=1}^{w} \lVert \mathbf W_i \rVert_F^2

    (keras.regularizers.L2(l) computes l * sum(w^2), without the 1/2.)
    """
    total = F64(0.0)
    for w in weights:
        flat = _f64(w).ravel()
        total = total + float(np.dot(flat, flat))
    return 0.5 * _f64(lam) * total


def _reduction_axes(ndim, axis):
    keep = {a % ndim for a in ((axis,) if np.isscalar(axis) else tuple(axis))}
    return tuple(a for a in range(ndim) if a not in keep)


def eq20_batchnorm_normalize(x, axis=-1, epsilon=1e-3):
    r"""[IS15] Alg. 1 with sec. 3.2: normalise per feature ``axis`` over the batch and all positions.

    .. math:: \mu_B = \frac1m\sum_i x_i,\quad \sigma_B^2 = \frac1m \sum_i (x_i - \mu_B)^2,\quad
              \hat x_i = \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}

    For a convolutional map (N, H, W, C) with ``axis=-1``, m = N * H * W. ``axis`` may be a tuple
    of kept axes: ``axis=(1, 2, 3)`` is the lecture's literal per-position reading (with epsilon).
    Returns ``(x_hat, mu_B, sigma2_B)``; sigma2_B is the biased (1/m) batch variance.
    """
    x = _f64(x)
    red = _reduction_axes(x.ndim, axis)
    mu = x.mean(axis=red, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=red, keepdims=True)
    return (x - mu) / np.sqrt(var + _f64(epsilon)), mu, var


def batchnorm_masked_moments(x, mask, axis=-1):
    r"""[IS15] Alg. 1 lines 1-2 where the mini-batch B is the unmasked positions only (a padded sequence:
    the padding is no data). ``mask`` has x's shape without its last axis (Keras' convention for
    masks) and is True where the value is data:

    .. math:: m = |B|,\quad \mu_B = \frac1m\sum_{i\in B} x_i,\quad \sigma_B^2 = \frac1m\sum_{i\in B} (x_i-\mu_B)^2

    per feature ``axis``. Returns ``(mu_B, sigma2_B, m)`` with kept dims; NaN where m = 0.
    """
    x = _f64(x)
    red = _reduction_axes(x.ndim, axis)
    inside = np.broadcast_to(np.asarray(mask, dtype=bool)[..., None], x.shape)
    m = inside.sum(axis=red, keepdims=True).astype(F64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mu = np.where(inside, x, 0.0).sum(axis=red, keepdims=True) / m
        var = np.where(inside, (x - mu) ** 2, 0.0).sum(axis=red, keepdims=True) / m
    return mu, var, m


def eq20_batchnorm_affine(x_hat, gamma, beta):
    r"""[IS15] Alg. 1, last line: :math:`y_i = \gamma \hat x_i + \beta`."""
    return _f64(x_hat) * _f64(gamma) + _f64(beta)


def batchnorm_population_statistics(batch_means, batch_vars, m):
    r"""[IS15] Alg. 2, step 10: :math:`E[x] = E_B[\mu_B]`, :math:`Var[x] = \frac{m}{m-1} E_B[\sigma_B^2]`.

    ``batch_means``/``batch_vars``: the (biased) statistics of several training batches, stacked on
    axis 0; m: the number of values each statistic was computed over.
    """
    mean = _f64(batch_means).mean(axis=0)
    var = F64(m) / F64(m - 1) * _f64(batch_vars).mean(axis=0)
    return mean, var


def batchnorm_moving_update(moving_mean, moving_var, x, momentum=0.99, axis=-1, mask=None):
    r"""[IS15] Alg. 2 steps 9-10 as the running averages frameworks keep in training, with Keras' momentum
    convention (``momentum`` weighs the old value):

    .. math:: \bar\mu \leftarrow m_o \bar\mu + (1 - m_o)\,\mu_B,\qquad
              \bar\sigma^2 \leftarrow m_o \bar\sigma^2 + (1 - m_o) \frac{m}{m-1} \sigma_B^2

    with :math:`\mu_B, \sigma_B^2` the biased (1/m) statistics of Alg. 1 over the batch ``x`` per feature
    ``axis`` (m values each: m = N H W for a (N, H, W, C) map), the unbiased :math:`m/(m-1)` of step 10
    in the variance. ``mask`` (x's shape without its last axis, True where the value is data): the
    batch is the unmasked positions (``batchnorm_masked_moments``). Needs m >= 2. Returns the new
    ``(moving_mean, moving_var)``, one value per feature.
    """
    with np.errstate(invalid="ignore", divide="ignore"):  # x_hat of a constant feature is 0/0; unused here
        if mask is None:
            _, mu, var = eq20_batchnorm_normalize(x, axis=axis, epsilon=0.0)
            m = F64(np.size(x) // np.size(mu))
        else:
            mu, var, m = batchnorm_masked_moments(x, mask, axis=axis)
        unbiased = m / (m - 1.0) * var
    a = _f64(momentum)
    mean = a * _f64(moving_mean) + (1.0 - a) * mu.ravel()
    var = a * _f64(moving_var) + (1.0 - a) * np.ravel(unbiased)
    return mean, var


def batchnorm_inference(x, mean, var, gamma, beta, epsilon=1e-3):
    r"""[IS15] Alg. 2, step 11: :math:`y = \frac{\gamma}{\sqrt{Var[x]+\epsilon}} x + \left(\beta - \frac{\gamma E[x]}{\sqrt{Var[x]+\epsilon}}\right)`."""
    scale = _f64(gamma) / np.sqrt(_f64(var) + _f64(epsilon))
    return scale * _f64(x) + (_f64(beta) - scale * _f64(mean))
