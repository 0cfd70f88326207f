r"""The lecture's augmentations: RandomFlip, RandomCrop, RandomRotation (drop-ins for Keras' layers).

Shared behaviour, as Keras' image layers: a rank-3 input is one image, a rank-4 input a batch
(any other rank is a ``ValueError``); ``data_format`` is ``"channels_last"`` (NHWC, the default from
``keras.config.image_data_format()``) or ``"channels_first"``; the output is in the layer's compute
dtype (integer images are cast first, so ``Input(dtype="uint8") -> RandomCrop -> Conv2D`` trains and
bilinear values are not truncated); ``training`` defaults to True, so a layer called outside a
model (``ds.map(layer)``) augments, while ``fit``/``predict`` pass their own value.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from keras_optreg import _random, _validation
from keras_optreg._math import images as _mi
from keras_optreg.layers._seeded import SeededLayer, compiled, finite_in, tensorflow_backend

_register = keras.saving.register_keras_serializable(package="keras_optreg")

HORIZONTAL, VERTICAL, BOTH = "horizontal", "vertical", "horizontal_and_vertical"


def _data_format(value):
    if value is None:
        return keras.config.image_data_format()
    return _validation.one_of("data_format", value, ("channels_last", "channels_first"))


def _nhwc(x, data_format):
    return x if data_format == "channels_last" else ops.transpose(x, (0, 2, 3, 1))


def _from_nhwc(x, data_format):
    return x if data_format == "channels_last" else ops.transpose(x, (0, 3, 1, 2))


def _flip_train(x, state, mode, data_format):
    n = ops.shape(x)[0]
    h_axis, w_axis = (1, 2) if data_format == "channels_last" else (2, 3)
    if mode == BOTH:
        masks = _random.bernoulli(state, (2, n), 0.5)
        return _mi.flip(_mi.flip(x, masks[0], w_axis), masks[1], h_axis)
    return _mi.flip(x, _random.bernoulli(state, (n,), 0.5), w_axis if mode == HORIZONTAL else h_axis)


def _crop(x, state, height, width, data_format, guard):
    """Training (``state`` given): uniform offsets per image; inference (``state`` None): the centre window."""
    x = _nhwc(x, data_format)
    shape = ops.shape(x)
    n, span_h, span_w = shape[0], shape[1] - height, shape[2] - width
    if state is None:
        oh = ops.full((n,), ops.maximum(span_h, 0) // 2, dtype="int32")
        ow = ops.full((n,), ops.maximum(span_w, 0) // 2, dtype="int32")
    else:
        u = _random.uniform(state, (2, n))
        oh = ops.clip(ops.cast(u[0] * ops.cast(span_h + 1, "float32"), "int32"), 0, ops.maximum(span_h, 0))
        ow = ops.clip(ops.cast(u[1] * ops.cast(span_w + 1, "float32"), "int32"), 0, ops.maximum(span_w, 0))
    y = _mi.random_crop(x, height, width, oh, ow, fill_outside=float("nan") if guard else None)
    return _from_nhwc(y, data_format)


def rotation_angles(state, n, half, shift, fixed):
    """The ``n`` angles (radians, float32) RandomRotation draws from ``state``: half * (s + shift) + fixed for
    the exact draws s of ``_random.symmetric``: an add, a multiply, an add, where either half = 0 (a fixed
    angle) or fixed = 0, so an FMA contracting the last two gives the same result (fma(a, b, 0) and
    fma(0, b, c) are exact around one rounding): the same bits on every backend, eager or compiled."""
    s = _random.symmetric(state, (n,))
    return ops.add(ops.multiply(half, ops.add(s, shift)), fixed)


def _rotation_train(x, state, half, shift, fixed, fill_mode, interpolation, fill_value, data_format):
    """The range is tensors (``RandomRotation._angle_parameters``): one kernel per shape serves all."""
    x = _nhwc(x, data_format)
    angles = rotation_angles(state, ops.shape(x)[0], half, shift, fixed)
    y = _mi.random_rotation(x, angles, fill_mode, interpolation, fill_value)
    return _from_nhwc(ops.cast(y, x.dtype), data_format)


_flip_train_xla = compiled(_flip_train)
_crop_xla = compiled(_crop)
_rotation_train_xla = compiled(_rotation_train)


class _ImageLayer(SeededLayer):
    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.data_format = _data_format(data_format)

    def _rank(self, shape):
        if len(shape) not in (3, 4):
            raise ValueError(f"{type(self).__name__} expects images of rank 3 (one image) or 4 (a batch), "
                             f"{self.data_format}. Received: input of shape {tuple(shape)} (rank {len(shape)})")
        return len(shape)

    def _hw_axes(self, rank):
        """The height and width axes of a rank-``rank`` input."""
        first = 1 if self.data_format == "channels_last" else 2
        return (first - 1, first) if rank == 3 else (first, first + 1)

    def call(self, inputs, training=True):
        rank = self._rank(inputs.shape)
        x = ops.cast(inputs, self.compute_dtype)
        if rank == 3:
            x = ops.expand_dims(x, 0)
        y = self._transform(x, training)
        return ops.squeeze(y, 0) if rank == 3 else y

    def compute_output_shape(self, input_shape):
        self._rank(input_shape)
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


@_register
class RandomFlip(_ImageLayer):
    r"""Random flips with probability 1/2 per image (lecture: "random left-right flips").
    Drop-in for ``keras.layers.RandomFlip``.

    .. math:: y_{b,i,j} = x_{b,i,W-1-j}\ \text{if}\ f_b\ \text{else}\ x_{b,i,j},\qquad f_b \sim \text{Bernoulli}(1/2)

    ``mode="horizontal"`` (default) is the lecture's left-right flip; ``"vertical"`` flips top-bottom
    (:math:`x_{b,H-1-i,j}`); ``"horizontal_and_vertical"`` draws the two flips independently (the
    four outcomes with probability 1/4 each, as tf.keras 2's RandomFlip did). Identity at inference.

    Deviations from ``keras.layers.RandomFlip``: the default mode is ``"horizontal"`` (the lecture;
    Keras' is ``"horizontal_and_vertical"``); in ``"horizontal_and_vertical"`` Keras 3.15 uses one draw
    for both flips (a 180-degree turn or nothing), here they are independent; ``seed`` in [0, 2**31);
    the random state is saved with the layer.

    Args:
        mode: ``"horizontal"``, ``"vertical"`` or ``"horizontal_and_vertical"``.
        seed: None or an int in [0, 2**31); None draws one from Python's ``random``.
        data_format: ``"channels_last"``, ``"channels_first"`` or None (``keras.config.image_data_format()``).
        **kwargs: base layer arguments (``name``, ``dtype``).
    """

    def __init__(self, mode=HORIZONTAL, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.mode = _validation.one_of("mode", mode, (HORIZONTAL, VERTICAL, BOTH))

    def _transform(self, x, training):
        if not training:
            return x
        return _flip_train_xla(x, self.next_state(), self.mode, self.data_format)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@_register
class RandomCrop(_ImageLayer):
    r"""Random crops (lecture: "random crops"): a uniformly placed ``height`` x ``width`` window per image.
    Drop-in for ``keras.layers.RandomCrop``.

    .. math:: y_b = x_b[o^h_b : o^h_b+\text{height},\ o^w_b : o^w_b+\text{width}],\quad
              o^h_b \sim \mathcal U\{0..H-\text{height}\},\ o^w_b \sim \mathcal U\{0..W-\text{width}\}

    At inference the *centre* window, offsets :math:`\lfloor (H-\text{height})/2 \rfloor`, so train
    and test shapes agree. An image smaller than the window is an error: a ``ValueError`` when the
    size is known when the layer is called or traced, TensorFlow's ``InvalidArgumentError`` naming
    the sizes when it is only known at run time; under XLA, which drops run-time assertions, the
    window's pixels outside the image are NaN (never repeated edge pixels).

    Deviations from ``keras.layers.RandomCrop``: one window per image (Keras: one per batch); the
    centre window at inference (Keras resizes); a smaller image is an error (Keras resizes it);
    ``seed`` in [0, 2**31); the random state is saved with the layer.

    Args:
        height: int > 0, the window's height.
        width: int > 0, the window's width.
        seed: None or an int in [0, 2**31); None draws one from Python's ``random``.
        data_format: ``"channels_last"``, ``"channels_first"`` or None (``keras.config.image_data_format()``).
        **kwargs: base layer arguments (``name``, ``dtype``).
    """

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.height = _validation.positive_int("height", height)
        self.width = _validation.positive_int("width", width)

    def _too_small(self, h, w):
        return ValueError(f"RandomCrop({self.height}, {self.width}) needs images at least that large. "
                          f"Received: images of height {h} and width {w}")

    def _transform(self, x, training):
        h_axis, w_axis = self._hw_axes(4)
        h, w = x.shape[h_axis], x.shape[w_axis]
        if (h is not None and h < self.height) or (w is not None and w < self.width):
            raise self._too_small(h, w)
        guard = h is None or w is None
        if guard and tensorflow_backend():  # a run-time check where the size is unknown now (dropped by XLA)
            import tensorflow as tf

            size = tf.shape(x)
            tf.debugging.assert_greater_equal(
                tf.stack([size[h_axis], size[w_axis]]), tf.constant([self.height, self.width]),
                message=str(self._too_small("(see the shape)", "(see the shape)")))
        state = self.next_state() if training else None
        return _crop_xla(x, state, self.height, self.width, self.data_format, guard)

    def compute_output_shape(self, input_shape):
        shape = list(super().compute_output_shape(input_shape))
        h_axis, w_axis = self._hw_axes(len(shape))
        shape[h_axis], shape[w_axis] = self.height, self.width
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


def _factor(factor):
    """Keras' ``factor``: a float f (the range (-|f|, |f|)) or a (lower, upper) pair, as fractions of a
    full turn in [-1, 1]; a pair is sorted, as Keras does."""
    pair = tuple(factor) if isinstance(factor, (tuple, list)) else None
    if pair is None:
        f = _validation.real("factor", factor)
        if not (-1.0 <= f <= 1.0):
            _validation._fail("factor", factor, "in [-1, 1] (a fraction of a full turn) or a (lower, upper) pair")
        return (-abs(f), abs(f))
    if len(pair) != 2:
        _validation._fail("factor", factor, "a float or a (lower, upper) pair", TypeError)
    values = [_validation.real("factor", v) for v in pair]
    if not all(-1.0 <= v <= 1.0 for v in values):
        _validation._fail("factor", factor, "a pair of fractions of a full turn in [-1, 1]")
    return tuple(sorted(values))


@_register
class RandomRotation(_ImageLayer):
    r"""Small random rotations (lecture: "small random rotations"). Drop-in for ``keras.layers.RandomRotation``.

    Angle :math:`\theta_b \sim \mathcal U[\theta_{lo}, \theta_{hi}]` per image; output pixel (y, x)
    samples the input, extended beyond its edges by ``fill_mode``, at
    :math:`(x_s, y_s) = c + R(\theta_b)\,((x, y) - c)` (counter-clockwise as displayed, centre
    ((H-1)/2, (W-1)/2)) by ``interpolation``. The range is Keras' ``factor`` (fractions of a full
    turn: f gives (-f, f) turns, a pair (lower, upper) that range) or, keyword-only, the symmetric
    ``max_angle_degrees`` / ``max_angle_radians``: give exactly one of the three. Gather-based:
    compiles under XLA (Keras' RandomRotation does not). Identity at inference. Same conventions as
    ``keras_optreg_spec.unnumbered.random_rotation``; the angle draw is
    :math:`\frac{\theta_{hi}-\theta_{lo}}{2}(s + d)` for the exact draw s in (-1, 1) of
    ``keras_optreg._random.symmetric`` and :math:`d = \frac{\theta_{hi}+\theta_{lo}}{\theta_{hi}-\theta_{lo}}`
    (0 for a symmetric range: one rounding, the same on every backend).

    Deviations from ``keras.layers.RandomRotation``: on TensorFlow, ``"wrap"`` reads the pixel a whole
    period away (TensorFlow's kernel, which Keras calls there, clamps the sample coordinate near the seam
    instead; Keras' JAX and PyTorch backends wrap as here);
    ``max_angle_degrees`` / ``max_angle_radians`` are extra; ``seed`` in [0, 2**31); the random state
    is saved with the layer.

    Args:
        factor: a float in [-1, 1] or a (lower, upper) pair of them, fractions of a full turn.
        fill_mode: ``"reflect"`` (default, as Keras), ``"wrap"``, ``"nearest"`` or ``"constant"``.
        interpolation: ``"bilinear"`` (default) or ``"nearest"``.
        seed: None or an int in [0, 2**31); None draws one from Python's ``random``.
        fill_value: the value read outside the image with ``fill_mode="constant"`` (finite in the
            layer's compute dtype).
        data_format: ``"channels_last"``, ``"channels_first"`` or None (``keras.config.image_data_format()``).
        max_angle_degrees: keyword-only; the range (-max, max) in degrees, max finite >= 0.
        max_angle_radians: keyword-only; the range (-max, max) in radians, max finite >= 0.
        **kwargs: base layer arguments (``name``, ``dtype``).
    """

    def __init__(self, factor=None, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, *, max_angle_degrees=None, max_angle_radians=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        given = {k: v for k, v in (("factor", factor), ("max_angle_degrees", max_angle_degrees),
                                   ("max_angle_radians", max_angle_radians)) if v is not None}
        if len(given) != 1:
            _validation._fail("factor", factor, "given, or else exactly one of max_angle_degrees / max_angle_radians "
                              f"(received {given or 'none of them'})")
        self.factor = _factor(factor) if factor is not None else None
        self.max_angle_degrees = self.max_angle_radians = None
        if factor is not None:
            lower, upper = (2.0 * math.pi * f for f in self.factor)
        elif max_angle_degrees is not None:
            self.max_angle_degrees = _validation.finite_nonnegative("max_angle_degrees", max_angle_degrees)
            upper = math.radians(self.max_angle_degrees)
            lower = -upper
        else:
            self.max_angle_radians = _validation.finite_nonnegative("max_angle_radians", max_angle_radians)
            lower, upper = -self.max_angle_radians, self.max_angle_radians
        self._range = (lower, upper)
        self.fill_mode = _validation.one_of("fill_mode", fill_mode, _mi.FILL_MODES)
        self.interpolation = _validation.one_of("interpolation", interpolation, _mi.INTERPOLATIONS)
        self.fill_value = finite_in("fill_value", _validation.real("fill_value", fill_value), self.compute_dtype)

    def _angle_parameters(self):
        """(half, shift, fixed) of :func:`rotation_angles` for this layer's range, as float32 tensors."""
        lower, upper = self._range
        if lower == upper:
            half, shift, fixed = 0.0, 0.0, lower
        else:
            half, shift, fixed = (upper - lower) / 2.0, (upper + lower) / (upper - lower), 0.0
        return [ops.convert_to_tensor(np.float32(v)) for v in (half, shift, fixed)]

    def _transform(self, x, training):
        lower, upper = self._range
        if not training or lower == upper == 0.0:
            return x
        f32 = self._angle_parameters()
        work = "float64" if keras.backend.standardize_dtype(x.dtype) == "float64" else "float32"
        fill = ops.convert_to_tensor(self.fill_value, work)
        return _rotation_train_xla(x, self.next_state(), *f32, self.fill_mode, self.interpolation, fill,
                                   self.data_format)

    def get_config(self):
        factor = None if self.factor is None else list(self.factor)
        return {**super().get_config(), "factor": factor, "max_angle_degrees": self.max_angle_degrees,
                "max_angle_radians": self.max_angle_radians, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "interpolation": self.interpolation}
