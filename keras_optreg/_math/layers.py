r"""The math of the layers in ``keras_optreg.layers``: pure ``keras.ops`` functions, draws as arguments.

Each function is checked by Hypothesis against ``spec`` with the same draws (``tests/test_layers_*``).
"""

from __future__ import annotations

from keras import ops


def dropout_inverted(x, keep_mask, rate):
    r"""Inverted dropout in training (Srivastava et al. 2014, JMLR 15(56), sec. 4, with p = 1 - rate).

    .. math:: y = \frac{r \odot x}{1 - \text{rate}},\qquad r \sim \text{Bernoulli}(1 - \text{rate})

    Lecture: "Randomly remove connections during training" (unnumbered). ``keep_mask`` is boolean,
    True where the unit is kept; it broadcasts against ``x``. Spec: ``spec.unnumbered.dropout_inverted``.
    """
    x = ops.convert_to_tensor(x)
    # a multiply by the rounded 1/(1-rate), not a divide: XLA rewrites x/c as x*(1/c) anyway, so
    # this keeps eager and compiled outputs bit-identical.
    scaled = x * ops.cast(1.0 / (1.0 - rate), x.dtype)
    return ops.where(keep_mask, scaled, ops.zeros_like(x))


def batchnorm_moments(x, reduction_axes):
    r"""Batch mean and biased variance, [IS15] Alg. 1 lines 1-2 (lecture eq. 20):

    .. math:: \mu_B = \frac1m\sum_i x_i,\qquad \sigma_B^2 = \frac1m\sum_i (x_i-\mu_B)^2

    Returns ``(mu_B, sigma2_B)`` with kept dims (broadcastable against ``x``).
    """
    mean = ops.mean(x, axis=reduction_axes, keepdims=True)
    var = ops.mean(ops.square(x - mean), axis=reduction_axes, keepdims=True)
    return mean, var


def batchnorm_normalize(x, mean, var, epsilon):
    r"""[IS15] Alg. 1 line 3 (lecture eq. 20, corrected with epsilon):
    :math:`\hat x_i = (x_i - \mu_B) / \sqrt{\sigma_B^2 + \epsilon}`."""
    return (x - mean) * ops.rsqrt(var + epsilon)


def batchnorm_affine(x_hat, gamma, beta):
    r"""[IS15] Alg. 1 line 4 (lecture eq. 20): :math:`y_i = \gamma \hat x_i + \beta`. None skips a term."""
    y = x_hat if gamma is None else x_hat * gamma
    return y if beta is None else y + beta


def unbiased_variance(var, m):
    r"""[IS15] Alg. 2 step 10: :math:`\frac{m}{m-1}\sigma_B^2`, m = number of values per statistic (m >= 2)."""
    return var * (m / (m - 1.0))


def moving_average(moving, batch, momentum):
    r"""Keras' convention: :math:`\text{moving} \leftarrow \text{momentum}\cdot\text{moving} + (1-\text{momentum})\cdot\text{batch}`."""
    return moving * momentum + batch * (1.0 - momentum)


def random_flip_left_right(images, flip_mask):
    r"""Lecture: "random left-right flips" (unnumbered). Image b (NHWC) is mirrored along its width
    where ``flip_mask[b]``: :math:`y_{b,i,j} = x_{b,i,W-1-j}`. Spec: ``spec.unnumbered.random_flip_left_right``."""
    images = ops.convert_to_tensor(images)
    mask = ops.reshape(ops.cast(flip_mask, "bool"), (-1, 1, 1, 1))
    return ops.where(mask, ops.flip(images, axis=2), images)


def input_noise(x, z, stddev):
    r"""Lecture, "Overfitting": "Input-noise" (unnumbered; Goodfellow et al. 2016 sec. 7.4-7.5):
    :math:`\tilde x = x + \sigma z`, :math:`z \sim \mathcal N(0, 1)`. Spec: ``spec.unnumbered.input_noise``."""
    x = ops.convert_to_tensor(x)
    return x + ops.cast(stddev, x.dtype) * ops.cast(z, x.dtype)
