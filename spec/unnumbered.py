"""The lecture's unnumbered regularizers and tricks, with each source's definition.

Images are NHWC (batch, height, width, channels). Randomness is an argument.
"""

from __future__ import annotations

import math

import numpy as np

F64 = np.float64


def _f64(x):
    return np.asarray(x, dtype=F64)


def dropout_srivastava(x, retain_mask, p, training):
    r"""Dropout as in Srivastava et al. 2014 (JMLR 15(56)), sec. 4 and fig. 2.

    Lecture: "Randomly remove connections **during training**." In the paper p is the
    probability of *retaining* a unit: training multiplies by :math:`r \sim \text{Bernoulli}(p)`;
    at test time the outgoing weights are scaled by p, i.e. the unit's output is multiplied by p.
    ``retain_mask``: boolean draws, True where the unit is kept (P = p).
    """
    x = _f64(x)
    if training:
        return np.where(retain_mask, x, 0.0)
    return _f64(p) * x


def dropout_inverted(x, keep_mask, rate, training):
    r"""Inverted dropout (the modern form; Keras, PyTorch): rate = 1 - p is the *drop* probability.

    .. math:: y = \frac{r \odot x}{1 - \text{rate}}, \quad r \sim \text{Bernoulli}(1 - \text{rate}) \text{ in training}, \qquad y = x \text{ at inference}

    Same expectation as :func:`dropout_srivastava` up to the constant factor p moved from
    inference into training. ``keep_mask``: boolean draws, True where kept.
    """
    x = _f64(x)
    if not training:
        return x
    return np.where(keep_mask, x / (1.0 - _f64(rate)), 0.0)


def input_noise(x, z, stddev, training):
    r"""Lecture, "Overfitting": "Input-noise". Additive Gaussian noise in training (GBC16 sec. 7.4-7.5).

    .. math:: \tilde x = x + \sigma z, \quad z \sim \mathcal N(0, 1)

    ``z``: standard-normal draws of x's shape. Identity at inference.
    """
    x = _f64(x)
    return x + _f64(stddev) * _f64(z) if training else x


def random_crop(images, height, width, offset_h, offset_w):
    """Lecture: "random crops". Image b is cut to rows offset_h[b]..+height, columns offset_w[b]..+width.

    The offsets are the randomness: integers with 0 <= offset_h <= H - height (likewise w).
    """
    images = _f64(images)
    out = [img[oh:oh + height, ow:ow + width, :] for img, oh, ow in zip(images, offset_h, offset_w, strict=True)]
    return np.stack(out)


def center_crop_offsets(size, crop):
    """Offsets of the centred window of length ``crop`` in ``size`` (floor of the half margin)."""
    return (size - crop) // 2


def random_flip_left_right(images, flip_mask):
    """Lecture: "random left-right flips". Image b is mirrored along its width where flip_mask[b]."""
    images = _f64(images)
    flipped = images[:, :, ::-1, :]
    mask = np.asarray(flip_mask, dtype=bool).reshape(-1, 1, 1, 1)
    return np.where(mask, flipped, images)


def random_flip_up_down(images, flip_mask):
    """Keras' ``"vertical"`` flip: image b is mirrored along its height where flip_mask[b]."""
    images = _f64(images)
    mask = np.asarray(flip_mask, dtype=bool).reshape(-1, 1, 1, 1)
    return np.where(mask, images[:, ::-1, :, :], images)


FILL_MODES = ("reflect", "wrap", "nearest", "constant")


def fill_index(i, n, fill_mode):
    """The pixel read at integer position ``i`` of an axis of ``n`` pixels, the image extended beyond its
    edges as Keras' RandomRotation documents each ``fill_mode`` (the pixel-level picture of its docstring):

    - ``"reflect"``: (d c b a | a b c d | d c b a), reflected about the edge of the last pixel;
    - ``"wrap"``: (a b c d | a b c d | a b c d), wrapped to the opposite edge;
    - ``"nearest"``: (a a a a | a b c d | d d d d), the nearest edge pixel;
    - ``"constant"``: (k k k k | a b c d | k k k k); this function returns -1 for an outside position,
      which :func:`random_rotation` replaces by the fill value k.
    """
    i = int(i)
    if fill_mode == "reflect":
        j = i % (2 * n)
        return j if j < n else 2 * n - 1 - j
    if fill_mode == "wrap":
        return i % n
    if fill_mode == "nearest":
        return min(max(i, 0), n - 1)
    if fill_mode == "constant":
        return i if 0 <= i < n else -1
    raise ValueError(f"unknown fill_mode {fill_mode!r}")


def random_rotation(images, angles, fill_mode="constant", interpolation="bilinear", fill_value=0.0):
    r"""Lecture: "small random rotations". Rotation of image b by angles[b] radians about its centre.

    Conventions (those of Keras' RandomRotation and of ``np.rot90``): a positive angle turns the
    picture counter-clockwise as displayed with row 0 on top; pixel centres sit at integer
    coordinates and the centre of rotation at ((H-1)/2, (W-1)/2). Output pixel (y, x) samples the
    input at

    .. math:: x_s = c_x + \cos\theta\,(x - c_x) - \sin\theta\,(y - c_y),\quad
              y_s = c_y + \sin\theta\,(x - c_x) + \cos\theta\,(y - c_y)

    in the image extended by ``fill_mode`` (:func:`fill_index`): ``interpolation="bilinear"`` weighs
    the four neighbours :math:`(\lfloor y_s\rfloor + d_y, \lfloor x_s\rfloor + d_x)` by
    :math:`(1 - |y_s - y_i|)(1 - |x_s - x_i|)`; ``"nearest"`` reads :math:`(\lfloor y_s + 1/2\rfloor,
    \lfloor x_s + 1/2\rfloor)`. Written pixel by pixel, independently of the library's vectorised form.
    """
    images = _f64(images)
    n, h, w, _ = images.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    out = np.empty_like(images)

    def read(b, yi, xi):
        py, px = fill_index(yi, h, fill_mode), fill_index(xi, w, fill_mode)
        if py < 0 or px < 0:
            return np.full(images.shape[3], float(fill_value))
        return images[b, py, px, :]

    for b in range(n):
        c, s = np.cos(angles[b]), np.sin(angles[b])
        for y in range(h):
            for x in range(w):
                xs = cx + c * (x - cx) - s * (y - cy)
                ys = cy + s * (x - cx) + c * (y - cy)
                if interpolation == "nearest":
                    out[b, y, x] = read(b, math.floor(ys + 0.5), math.floor(xs + 0.5))
                    continue
                y0, x0 = math.floor(ys), math.floor(xs)
                fy, fx = ys - y0, xs - x0
                out[b, y, x] = ((1 - fy) * (1 - fx) * read(b, y0, x0) + (1 - fy) * fx * read(b, y0, x0 + 1)
                                + fy * (1 - fx) * read(b, y0 + 1, x0) + fy * fx * read(b, y0 + 1, x0 + 1))
    return out


def random_rotation_bilinear(images, angles, fill_value=0.0):
    r"""Lecture: "small random rotations". :func:`random_rotation` with ``fill_mode="constant"`` and
    ``interpolation="bilinear"`` (its conventions and sample coordinates), vectorised over pixels: a
    neighbour outside the image reads ``fill_value``. The two forms agree to 1e-12
    (``tests/test_layers_crop_rotation.py::test_random_rotation_spec_forms_agree``).
    """
    images = _f64(images)
    n, h, w, _ = images.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.meshgrid(np.arange(h, dtype=F64), np.arange(w, dtype=F64), indexing="ij")
    out = np.empty_like(images)
    for b in range(n):
        c, s = np.cos(angles[b]), np.sin(angles[b])
        xs = cx + c * (xx - cx) - s * (yy - cy)
        ys = cy + s * (xx - cx) + c * (yy - cy)
        x0, y0 = np.floor(xs), np.floor(ys)
        fx, fy = xs - x0, ys - y0
        acc = np.zeros((h, w, images.shape[3]), dtype=F64)
        for dy, wy in ((0, 1.0 - fy), (1, fy)):
            for dx, wx in ((0, 1.0 - fx), (1, fx)):
                yi, xi = (y0 + dy).astype(int), (x0 + dx).astype(int)
                inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
                vals = images[b, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1), :]
                vals = np.where(inside[..., None], vals, fill_value)
                acc += (wy * wx)[..., None] * vals
        out[b] = acc
    return out


def early_stopping(validation_errors, patience, n=1):
    r"""GBC16 Algorithm 7.1, the early-stopping meta-algorithm, over precomputed validation errors.

    ``validation_errors[j]`` is v' after the (j+1)-th block of n training steps. Following the box:
    v = inf, i* = 0, j = 0; each block: i += n, v' = error; if v' < v then j = 0, i* = i, v = v'
    else j += 1; stop when j = p (``patience``) or the errors run out.
    Returns (i_star, v_best, i_stop): the best step, its error and the step at which training stopped.
    """
    v, i, i_star, j = np.inf, 0, 0, 0
    for err in validation_errors:
        if j >= patience:
            break
        i += n
        if err < v:
            j, i_star, v = 0, i, err
        else:
            j += 1
    return i_star, v, i
