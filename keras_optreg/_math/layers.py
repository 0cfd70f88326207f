r"""The math of Dropout, InputNoise and BatchNormalization: pure ``keras.ops`` functions, random draws as
arguments (the image layers' math is in :mod:`keras_optreg._math.images`).

Each function is checked by Hypothesis against ``keras_optreg_spec`` with the same draws (``tests/test_layers_*``).
"""

from __future__ import annotations

from keras import ops


def dropout_inverted(x, keep_mask, rate):
    r"""Inverted dropout in training (Srivastava et al. 2014, JMLR 15(56), sec. 4, with p = 1 - rate).

    .. math:: y = \frac{r \odot x}{1 - \text{rate}},\qquad r \sim \text{Bernoulli}(1 - \text{rate})

    Lecture: "Randomly remove connections during training" (unnumbered). ``keep_mask`` is boolean,
    True where the unit is kept; it broadcasts against ``x``. Spec: ``keras_optreg_spec.unnumbered.dropout_inverted``.
    """
    x = ops.convert_to_tensor(x)
    # a multiply by the rounded 1/(1-rate), not a divide: XLA rewrites x/c as x*(1/c) anyway, so
    # this keeps eager and compiled outputs bit-identical.
    return dropout_scaled(x, keep_mask, ops.cast(1.0 / (1.0 - rate), x.dtype))


def dropout_scaled(x, keep_mask, scale):
    r""":func:`dropout_inverted` with its factor given: :math:`y = r \odot x \cdot s`, s the rounded
    :math:`1/(1-\text{rate})` (a scalar tensor, so one compiled kernel serves every rate)."""
    x = ops.convert_to_tensor(x)
    return ops.where(keep_mask, x * ops.cast(scale, x.dtype), ops.zeros_like(x))


def batchnorm_moments(x, reduction_axes):
    r"""Batch mean and biased variance, [IS15] Alg. 1 lines 1-2 (lecture eq. 20):

    .. math:: \mu_B = \frac1m\sum_i x_i,\qquad \sigma_B^2 = \frac1m\sum_i (x_i-\mu_B)^2

    Returns ``(mu_B, sigma2_B)`` with kept dims (broadcastable against ``x``).
    """
    x = ops.convert_to_tensor(x)
    # sums over m, not ops.mean: Keras' mean on JAX accumulates float64 in float32 (its result_type(float64,
    # float32) is float32 there)
    m = ops.cast(ops.prod(ops.take(ops.shape(x), list(reduction_axes))), x.dtype)
    mean = ops.divide(ops.sum(x, axis=reduction_axes, keepdims=True), m)
    var = ops.divide(ops.sum(ops.square(ops.subtract(x, mean)), axis=reduction_axes, keepdims=True), m)
    return mean, var


def batchnorm_moments_masked(x, reduction_axes, mask):
    r"""Alg. 1 lines 1-2 over the unmasked values only (Keras' masked BatchNormalization):

    .. math:: m = \sum_i w_i,\quad \mu_B = \frac1m\sum_i w_i x_i,\quad \sigma_B^2 = \frac1m\sum_i w_i (x_i-\mu_B)^2

    with :math:`w_i = 1` where ``mask`` (boolean, broadcastable against ``x``) is True, else 0; masked
    values never enter a sum (not even as 0 * NaN). Returns ``(mu_B, sigma2_B, m)`` with kept dims; a
    statistic with m = 0 gets mean and variance 0. Spec: ``keras_optreg_spec.corrected.batchnorm_masked_moments``.
    """
    x = ops.convert_to_tensor(x)
    mask = ops.broadcast_to(ops.cast(mask, "bool"), ops.shape(x))
    m = ops.sum(ops.cast(mask, x.dtype), axis=reduction_axes, keepdims=True)
    count = ops.maximum(m, ops.ones_like(m))
    mean = ops.sum(ops.where(mask, x, ops.zeros_like(x)), axis=reduction_axes, keepdims=True) / count
    dev = ops.where(mask, ops.square(x - mean), ops.zeros_like(x))
    return mean, ops.sum(dev, axis=reduction_axes, keepdims=True) / count, m


def batchnorm_moments_global(x, reduction_axes, all_sum):
    r"""Alg. 1 lines 1-2 over a batch split across replicas, two-pass like :func:`batchnorm_moments`:

    .. math:: m = \sum_r m_r,\quad \mu_B = \frac1m\sum_r\sum_{i\in r} x_i,\quad
              \sigma_B^2 = \frac1m\sum_r\sum_{i\in r} (x_i-\mu_B)^2

    ``all_sum`` adds a tensor over the replicas (identity on one device), so the statistics are
    those of the global batch. Returns ``(mu_B, sigma2_B, m)``, mean and variance with kept dims.
    """
    x = ops.convert_to_tensor(x)
    ones = ops.ones_like(x)
    m = all_sum(ops.sum(ones, axis=reduction_axes, keepdims=True))
    mean = all_sum(ops.sum(x, axis=reduction_axes, keepdims=True)) / m
    var = all_sum(ops.sum(ops.square(x - mean), axis=reduction_axes, keepdims=True)) / m
    return mean, var, ops.reshape(m, (-1,))[0]


def batchnorm_normalize(x, mean, var, epsilon):
    r"""[IS15] Alg. 1 line 3 (lecture eq. 20, corrected with epsilon):
    :math:`\hat x_i = (x_i - \mu_B) / \sqrt{\sigma_B^2 + \epsilon}`."""
    var = ops.convert_to_tensor(var)
    # epsilon converted to var's dtype (not cast: a cast, and PyTorch's keras.ops, round a Python float to float32 first)
    return ops.multiply(ops.subtract(x, mean), ops.rsqrt(ops.add(var, ops.convert_to_tensor(epsilon, var.dtype))))


def batchnorm_affine(x_hat, gamma, beta):
    r"""[IS15] Alg. 1 line 4 (lecture eq. 20): :math:`y_i = \gamma \hat x_i + \beta`. None skips a term."""
    y = x_hat if gamma is None else x_hat * gamma
    return y if beta is None else y + beta


def unbiased_variance(var, m):
    r"""[IS15] Alg. 2 step 10: :math:`\frac{m}{m-1}\sigma_B^2`, m = number of values per statistic (m >= 2)."""
    m = ops.convert_to_tensor(m)
    return ops.multiply(var, ops.divide(m, ops.subtract(m, ops.cast(1.0, m.dtype))))


def moving_average(moving, batch, momentum):
    r"""Keras' convention: :math:`\text{moving} \leftarrow \text{momentum}\cdot\text{moving} + (1-\text{momentum})\cdot\text{batch}`."""
    moving = ops.convert_to_tensor(moving)
    # both factors in moving's dtype (PyTorch's keras.ops would make a Python float a float32 tensor first)
    return ops.add(ops.multiply(moving, ops.convert_to_tensor(momentum, moving.dtype)),
                   ops.multiply(batch, ops.convert_to_tensor(1.0 - momentum, moving.dtype)))


def moving_average_guarded(moving, batch, momentum, valid):
    r""":func:`moving_average` where ``valid`` and the result is finite; ``moving`` unchanged elsewhere.

    The layer's policy for a batch statistic that carries no information (fewer values than it needs)
    or a non-finite one (a NaN or infinite input, an overflowing variance): the moving statistic keeps
    its value, so one bad batch does not poison inference for good.
    """
    new = moving_average(moving, batch, momentum)
    return ops.where(ops.logical_and(valid, ops.isfinite(new)), new, moving)


def input_noise(x, z, stddev):
    r"""Lecture, "Overfitting": "Input-noise" (unnumbered; Goodfellow et al. 2016 sec. 7.4-7.5):
    :math:`\tilde x = x + \sigma z`, :math:`z \sim \mathcal N(0, 1)`. Spec: ``keras_optreg_spec.unnumbered.input_noise``."""
    x = ops.convert_to_tensor(x)
    return x + ops.cast(stddev, x.dtype) * ops.cast(z, x.dtype)
