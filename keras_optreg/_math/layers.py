r"""The math of the layers in ``keras_optreg.layers``: pure functions, random draws as arguments.

``keras.ops`` throughout, except ``random_crop`` and ``random_rotation_bilinear``, which use
``tf.gather(..., batch_dims=1)`` (per-image windows and bilinear taps that compile under XLA).

Each function is checked by Hypothesis against ``spec`` with the same draws (``tests/test_layers_*``).
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


def batchnorm_moments_global(x, reduction_axes, all_sum):
    r"""Alg. 1 lines 1-2 over a batch split across replicas, two-pass like :func:`batchnorm_moments`:

    .. math:: m = \sum_r m_r,\quad \mu_B = \frac1m\sum_r\sum_{i\in r} x_i,\quad
              \sigma_B^2 = \frac1m\sum_r\sum_{i\in r} (x_i-\mu_B)^2

    ``all_sum`` adds a tensor over the replicas (identity on one device), so the statistics are
    those of the global batch. Returns ``(mu_B, sigma2_B, m)``, mean and variance with kept dims.
    """
    ones = ops.ones_like(x)
    m = all_sum(ops.sum(ones, axis=reduction_axes, keepdims=True))
    mean = all_sum(ops.sum(x, axis=reduction_axes, keepdims=True)) / m
    var = all_sum(ops.sum(ops.square(x - mean), axis=reduction_axes, keepdims=True)) / m
    return mean, var, ops.reshape(m, (-1,))[0]


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
    where ``flip_mask[b]``: :math:`y_{b,i,j} = x_{b,i,W-1-j}`. Spec: ``keras_optreg_spec.unnumbered.random_flip_left_right``."""
    images = ops.convert_to_tensor(images)
    mask = ops.reshape(ops.cast(flip_mask, "bool"), (-1, 1, 1, 1))
    return ops.where(mask, ops.flip(images, axis=2), images)


def input_noise(x, z, stddev):
    r"""Lecture, "Overfitting": "Input-noise" (unnumbered; Goodfellow et al. 2016 sec. 7.4-7.5):
    :math:`\tilde x = x + \sigma z`, :math:`z \sim \mathcal N(0, 1)`. Spec: ``keras_optreg_spec.unnumbered.input_noise``."""
    x = ops.convert_to_tensor(x)
    return x + ops.cast(stddev, x.dtype) * ops.cast(z, x.dtype)


def random_crop(images, height, width, offset_h, offset_w):
    r"""Lecture: "random crops" (unnumbered). Image b (NHWC) is cut to rows
    :math:`o^h_b \ldots o^h_b+\text{height}-1` and columns :math:`o^w_b \ldots o^w_b+\text{width}-1`.

    Gather-based (``tf.gather`` with ``batch_dims=1``), so it compiles under XLA with per-image
    offsets. Spec: ``keras_optreg_spec.unnumbered.random_crop``.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    rows = tf.cast(offset_h, tf.int32)[:, None] + tf.range(height)[None, :]
    cols = tf.cast(offset_w, tf.int32)[:, None] + tf.range(width)[None, :]
    out = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def random_rotation_bilinear(images, angles, fill_value=0.0):
    r"""Lecture: "small random rotations" (unnumbered). Image b is turned by ``angles[b]`` radians
    (counter-clockwise as displayed, row 0 on top; centre ((H-1)/2, (W-1)/2)); output pixel (y, x)
    samples the input at

    .. math:: x_s = c_x + \cos\theta\,(x-c_x) - \sin\theta\,(y-c_y),\quad
              y_s = c_y + \sin\theta\,(x-c_x) + \cos\theta\,(y-c_y)

    by bilinear interpolation of its four neighbours, a neighbour outside the image reading
    ``fill_value``. Written with ``tf.gather`` (``batch_dims=1``) so it compiles under XLA (Keras'
    RandomRotation does not). Spec: ``keras_optreg_spec.unnumbered.random_rotation_bilinear`` (same conventions).
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    dtype = images.dtype
    shape = tf.shape(images)
    n, h, w, c = shape[0], shape[1], shape[2], shape[3]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    cy, cx = (hf - 1.0) / 2.0, (wf - 1.0) / 2.0
    yy, xx = tf.meshgrid(tf.range(hf), tf.range(wf), indexing="ij")
    theta = tf.cast(angles, tf.float32)[:, None, None]
    cos, sin = tf.cos(theta), tf.sin(theta)
    xs = cx + cos * (xx - cx) - sin * (yy - cy)
    ys = cy + sin * (xx - cx) + cos * (yy - cy)
    x0, y0 = tf.floor(xs), tf.floor(ys)
    fx, fy = xs - x0, ys - y0
    flat = tf.reshape(tf.cast(images, tf.float32), tf.stack([n, h * w, c]))
    fill = tf.cast(fill_value, tf.float32)
    acc = tf.zeros(tf.stack([n, h, w, c]), tf.float32)
    for dy, wy in ((0.0, 1.0 - fy), (1.0, fy)):
        for dx, wx in ((0.0, 1.0 - fx), (1.0, fx)):
            yi, xi = tf.cast(y0 + dy, tf.int32), tf.cast(x0 + dx, tf.int32)
            inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
            idx = tf.clip_by_value(yi, 0, h - 1) * w + tf.clip_by_value(xi, 0, w - 1)
            vals = tf.reshape(tf.gather(flat, tf.reshape(idx, tf.stack([n, h * w])), batch_dims=1),
                              tf.stack([n, h, w, c]))
            vals = tf.where(inside[..., None], vals, fill)
            acc = acc + (wy * wx)[..., None] * vals
    return tf.cast(acc, dtype)
