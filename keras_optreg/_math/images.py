r"""The math of the image layers (RandomFlip, RandomCrop, RandomRotation): pure ``keras.ops`` functions on
NHWC batches, the random draws (flip masks, offsets, angles) as arguments.

Per-image windows and interpolation taps are one ``ops.take`` on the pixels of all images
(``_take_pixels``), which compiles under XLA (Keras' RandomRotation does not). Each function is
checked by Hypothesis against ``keras_optreg_spec.unnumbered`` with the same draws
(``tests/test_layers_flip_noise.py``, ``tests/test_layers_crop_rotation.py``).
"""

from __future__ import annotations

import keras
from keras import ops

FILL_MODES = ("reflect", "wrap", "nearest", "constant")
INTERPOLATIONS = ("nearest", "bilinear")


def flip(images, flip_mask, axis):
    """Image b mirrored along ``axis`` where ``flip_mask[b]`` (any rank; axis 0 is the batch)."""
    images = ops.convert_to_tensor(images)
    mask = ops.reshape(ops.cast(flip_mask, "bool"), (-1,) + (1,) * (len(images.shape) - 1))
    return ops.where(mask, ops.flip(images, axis=axis), images)


def random_flip_left_right(images, flip_mask):
    r"""Lecture: "random left-right flips" (unnumbered). Image b (NHWC) is mirrored along its width
    where ``flip_mask[b]``: :math:`y_{b,i,j} = x_{b,i,W-1-j}`. Spec: ``keras_optreg_spec.unnumbered.random_flip_left_right``."""
    return flip(images, flip_mask, 2)


def random_flip_up_down(images, flip_mask):
    r"""Keras' ``"vertical"`` mode: image b (NHWC) mirrored along its height where ``flip_mask[b]``:
    :math:`y_{b,i,j} = x_{b,H-1-i,j}`. Spec: ``keras_optreg_spec.unnumbered.random_flip_up_down``."""
    return flip(images, flip_mask, 1)


def _take_pixels(images, index):
    """``images.reshape(-1, C)[index]``: pixels (n, H, W, C) read at flat indices b*H*W + i*W + j."""
    return ops.take(ops.reshape(images, (-1, ops.shape(images)[-1])), index, axis=0)


def random_crop(images, height, width, offset_h, offset_w, fill_outside=None):
    r"""Lecture: "random crops" (unnumbered). Image b (NHWC) is cut to rows
    :math:`o^h_b \ldots o^h_b+\text{height}-1` and columns :math:`o^w_b \ldots o^w_b+\text{width}-1`.

    One gather with per-image offsets, so it compiles under XLA. ``fill_outside``: the value of a
    window pixel outside the image (None: the caller guarantees the window fits); the layer passes
    NaN where the image size is unknown when it is traced, so an oversized crop that no check could
    catch cannot pass for an image. Spec: ``keras_optreg_spec.unnumbered.random_crop``.
    """
    images = ops.convert_to_tensor(images)
    shape = ops.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    rows = ops.cast(offset_h, "int32")[:, None] + ops.arange(height, dtype="int32")[None, :]
    cols = ops.cast(offset_w, "int32")[:, None] + ops.arange(width, dtype="int32")[None, :]
    base = ops.arange(n, dtype="int32") * (h * w)
    index = base[:, None, None] + rows[:, :, None] * w + cols[:, None, :]
    out = _take_pixels(images, index)
    if fill_outside is None:
        return out
    inside = ops.logical_and((rows < h)[:, :, None], (cols < w)[:, None, :])[..., None]
    return ops.where(inside, out, ops.cast(fill_outside, out.dtype))


def fill_index(i, n, fill_mode):
    r"""The pixel that integer position ``i`` of an axis of length ``n`` reads when the image is extended
    by ``fill_mode`` (Keras' RandomRotation definitions): ``"reflect"`` (d c b a | a b c d | d c b a),
    period 2n; ``"wrap"`` (a b c d | a b c d | a b c d), period n; ``"nearest"`` (a a | a b c d | d d);
    ``"constant"`` clamps too (the caller replaces outside reads by the fill value).
    Spec: ``keras_optreg_spec.unnumbered.fill_index``."""
    if fill_mode == "reflect":
        j = ops.mod(i, 2 * n)
        return ops.where(j >= n, 2 * n - 1 - j, j)
    if fill_mode == "wrap":
        return ops.mod(i, n)
    return ops.clip(i, 0, n - 1)


def random_rotation(images, angles, fill_mode="constant", interpolation="bilinear", fill_value=0.0):
    r"""Lecture: "small random rotations" (unnumbered). Image b (NHWC) is turned by ``angles[b]`` radians
    (counter-clockwise as displayed, row 0 on top; centre ((H-1)/2, (W-1)/2)); output pixel (y, x)
    samples the input, extended beyond its edges by ``fill_mode``, at

    .. math:: x_s = c_x + \cos\theta\,(x-c_x) - \sin\theta\,(y-c_y),\quad
              y_s = c_y + \sin\theta\,(x-c_x) + \cos\theta\,(y-c_y)

    by ``"bilinear"`` interpolation of its four neighbours or the ``"nearest"`` pixel
    (:math:`\lfloor x_s + 1/2 \rfloor`); with ``fill_mode="constant"`` a neighbour outside the image
    reads ``fill_value``. Computed in float32 (float64 for float64 images); returns that dtype.
    Spec: ``keras_optreg_spec.unnumbered.random_rotation`` (same conventions).
    """
    images = ops.convert_to_tensor(images)
    work = "float64" if keras.backend.standardize_dtype(images.dtype) == "float64" else "float32"
    flat = ops.cast(images, work)
    shape = ops.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    hf, wf = ops.cast(h, work), ops.cast(w, work)
    cy, cx = (hf - 1.0) / 2.0, (wf - 1.0) / 2.0
    yy = ops.arange(h, dtype=work)[:, None] - cy
    xx = ops.arange(w, dtype=work)[None, :] - cx
    theta = ops.cast(angles, work)[:, None, None]
    cos, sin = ops.cos(theta), ops.sin(theta)
    xs = cx + cos * xx - sin * yy
    ys = cy + sin * xx + cos * yy
    base = (ops.arange(n, dtype="int32") * (h * w))[:, None, None]
    fill = ops.cast(fill_value, work)

    def read(yi, xi):
        vals = _take_pixels(flat, base + fill_index(yi, h, fill_mode) * w + fill_index(xi, w, fill_mode))
        if fill_mode != "constant":
            return vals
        inside = ops.logical_and(ops.logical_and(yi >= 0, yi < h), ops.logical_and(xi >= 0, xi < w))
        return ops.where(inside[..., None], vals, fill)

    if interpolation == "nearest":
        return read(ops.cast(ops.floor(ys + 0.5), "int32"), ops.cast(ops.floor(xs + 0.5), "int32"))
    x0, y0 = ops.floor(xs), ops.floor(ys)
    fx, fy = xs - x0, ys - y0
    xi, yi = ops.cast(x0, "int32"), ops.cast(y0, "int32")
    acc = None
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            term = (wy * wx)[..., None] * read(yi + dy, xi + dx)
            acc = term if acc is None else acc + term
    return acc


def random_rotation_bilinear(images, angles, fill_value=0.0):
    r""":func:`random_rotation` with constant fill and bilinear interpolation.
    Spec: ``keras_optreg_spec.unnumbered.random_rotation_bilinear``."""
    return random_rotation(images, angles, "constant", "bilinear", fill_value)
