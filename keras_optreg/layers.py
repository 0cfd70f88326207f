r"""Regularisation layers of the lecture: Dropout, BatchNormalization (eq. 20) and augmentation.

Every random layer keeps its random state in a non-trainable int32 Variable ``rng_state`` =
``(seed, counter)``, advanced by one each training call and fed to stateless draws: the layer is
deterministic given its seed, compiles under XLA, works in ``tf.data`` and custom loops, and its
state round-trips through ``.keras`` save/load (Keras' Dropout loses it: keras-team/keras#19796).
Every layer is the identity (or the documented inference transform) when ``training`` is falsy.
Under a ``tf.distribute`` strategy with several replicas, each replica advances its copy of
``rng_state`` (all copies stay equal) and xors its replica id (times an odd constant) into the seed
of its draw: replicas draw independent masks, and replica 0 draws what one device would draw on
its slice. The global-batch masks therefore differ from one device's on the whole batch.
"""

from __future__ import annotations

import math
import random

import keras
import tensorflow as tf
from keras import ops

from keras_optreg import _random, _validation
from keras_optreg._math import layers as _m

_register = keras.saving.register_keras_serializable(package="keras_optreg")


def _seed(seed):
    seed = _validation.seed("seed", seed)
    if seed is not None and not 0 <= seed < 2 ** 31:
        _validation._fail("seed", seed, "in [0, 2**31)")
    return seed


_REPLICA_MIX = -1640531535  # 0x9E3779B1 (golden-ratio odd constant) as a signed int32


class _SeededLayer(keras.layers.Layer):
    """Holds ``rng_state`` = (seed, counter) as a non-trainable int32 Variable."""

    def __init__(self, seed=None, **kwargs):
        if keras.backend.backend() != "tensorflow":
            raise ValueError(f"keras_optreg.layers.{type(self).__name__} needs the TensorFlow backend (its stateless "
                             "RNG and image ops are TensorFlow ops); BatchNormalization runs on any backend. "
                             f"Received: KERAS_BACKEND={keras.backend.backend()}")
        super().__init__(**kwargs)
        self.seed = _seed(seed)
        initial = self.seed if self.seed is not None else random.SystemRandom().randrange(2 ** 31)
        self.rng_state = self.add_weight(
            name="rng_state", shape=(2,), dtype="int32", trainable=False,
            initializer=lambda shape, dtype=None: tf.constant([initial, 0], tf.int32))

    def _next_state(self):
        state = tf.identity(self.rng_state.value)
        with tf.control_dependencies([state]):
            self.rng_state.assign_add(tf.constant([0, 1], tf.int32))
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            # Under a tf.distribute strategy every replica holds the same (seed, counter): mix the replica
            # id into the seed so replicas draw independent masks (replica 0 draws what one device draws).
            rid = tf.cast(replica.replica_id_in_sync_group, tf.int32)
            state = tf.stack([tf.bitwise.bitwise_xor(state[0], rid * tf.constant(_REPLICA_MIX, tf.int32)), state[1]])
        return state

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@_register
class Dropout(_SeededLayer):
    r"""Inverted dropout (Srivastava et al. 2014, JMLR 15(56), sec. 4; lecture: "Randomly remove
    connections during training").

    .. math:: y = \frac{r \odot x}{1-\text{rate}},\quad r \sim \text{Bernoulli}(1-\text{rate})
              \ \text{(training)},\qquad y = x\ \text{(inference)}

    ``rate`` is the *drop* probability; Srivastava et al.'s retain probability is p = 1 - rate, and
    their test-time scaling by p is moved into training (division by p), so inference is the
    identity. ``noise_shape`` broadcasts the mask (None entries take the input's size). The mask
    comes from a counter-based integer hash (``keras_optreg._random``) that XLA fuses into one
    elementwise kernel.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _validation.unit_interval("rate", rate)
        if noise_shape is not None:
            if not isinstance(noise_shape, (tuple, list)) or not all(
                    d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in noise_shape):
                _validation._fail("noise_shape", noise_shape, "None or a tuple of positive ints / None",
                                  TypeError)
            noise_shape = tuple(noise_shape)
        self.noise_shape = noise_shape
        self.supports_masking = True

    def _mask_shape(self, inputs):
        shape = tf.shape(inputs)
        if self.noise_shape is None:
            return shape
        if len(self.noise_shape) != inputs.shape.rank:
            raise ValueError(f"noise_shape {self.noise_shape} has rank {len(self.noise_shape)}, "
                             f"the input has rank {inputs.shape.rank}")
        return tf.stack([shape[i] if d is None else d for i, d in enumerate(self.noise_shape)])

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = ~_random.bernoulli(self._next_state(), self._mask_shape(inputs), self.rate)
        return _m.dropout_inverted(inputs, keep, self.rate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        noise = None if self.noise_shape is None else list(self.noise_shape)
        return {**super().get_config(), "rate": self.rate, "noise_shape": noise}


@_register
class RandomFlip(_SeededLayer):
    r"""Random left-right flips with probability 1/2 (lecture: "random left-right flips").

    .. math:: y_{b,i,j,c} = x_{b,i,W-1-j,c}\ \text{if}\ f_b\ \text{else}\ x_{b,i,j,c},\qquad f_b \sim \text{Bernoulli}(1/2)

    NHWC images; identity at inference. ``mode`` must be ``"horizontal"`` (the lecture's flip):
    any other value is an error.
    """

    def __init__(self, seed=None, mode="horizontal", **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.mode = _validation.one_of("mode", mode, ("horizontal",))

    def call(self, inputs, training=None):
        if not training:
            return inputs
        flip = _random.bernoulli(self._next_state(), tf.shape(inputs)[:1], 0.5)
        return _m.random_flip_left_right(inputs, flip)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@_register
class InputNoise(_SeededLayer):
    r"""Additive Gaussian input noise in training (lecture, "Overfitting": "Input-noise";
    Goodfellow et al. 2016 sec. 7.4-7.5).

    .. math:: \tilde x = x + \sigma z,\qquad z \sim \mathcal N(0, 1)

    z comes from Box-Muller over the counter hash (``keras_optreg._random.normal``), identical eager
    and under XLA. Identity at inference. Any finite ``stddev >= 0`` is accepted (no upper bound).
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stddev = _validation.finite_nonnegative("stddev", stddev)

    def call(self, inputs, training=None):
        if not training or self.stddev == 0.0:
            return inputs
        z = _random.normal(self._next_state(), tf.shape(inputs))
        return _m.input_noise(inputs, z, self.stddev)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


def _axes(axis):
    axes = (axis,) if isinstance(axis, int) and not isinstance(axis, bool) else axis
    if not isinstance(axes, (tuple, list)) or not axes or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in axes):
        _validation._fail("axis", axis, "an int or a non-empty tuple of ints", TypeError)
    return tuple(axes)


@_register
class BatchNormalization(keras.layers.Layer):
    r"""Batch normalisation, lecture eq. (20) corrected with epsilon (Ioffe & Szegedy 2015, Alg. 1-2).

    .. math:: \mu_B = \frac1m\sum_i x_i,\ \ \sigma_B^2 = \frac1m\sum_i (x_i-\mu_B)^2,\ \
              \hat x_i = \frac{x_i-\mu_B}{\sqrt{\sigma_B^2+\epsilon}},\ \ y_i = \gamma\hat x_i + \beta

    ``axis`` names the *kept* (feature) axes: the default ``-1`` is per channel, statistics over
    batch and positions (Ioffe & Szegedy sec. 3.2, m = N*H*W for an NHWC map); ``axis=(1, 2, 3)``
    is the lecture's literal per-position reading (gamma, beta and statistics for every i, j).

    Training uses the batch statistics and updates the moving averages in Keras' direction,
    ``moving = momentum * moving + (1 - momentum) * batch``; the variance fed to the moving
    average is the *unbiased* :math:`\frac{m}{m-1}\sigma_B^2` (Alg. 2 step 10). Inference (and
    ``trainable=False``, as in Keras) uses the moving averages (Alg. 2 step 11). A training batch
    with m = 1 value per statistic (e.g. batch size 1 on a dense input) raises ``ValueError``
    when the shape is static: its variance is undefined (Keras silently drives the moving variance to 0).
    With a dynamic m = 1 the moving variance is left unchanged. Statistics are float32 under
    mixed precision (float16 inputs).

    Under a ``tf.distribute`` strategy with several replicas, ``synchronized=False`` (default, as
    Keras) normalises each replica's share of the batch with that share's statistics: with a global
    batch of B on R replicas, each replica computes exactly what one device computes on its B/R
    slice, and the moving averages (``aggregation="mean"``) receive the mean over replicas of the
    per-replica updates (without it, TensorFlow would keep replica 0's update).
    ``synchronized=True`` (TensorFlow backend) all-reduces the sums behind the statistics
    (``_math.layers.batchnorm_moments_global``): m, the mean and the variance are those of the
    global batch, so training matches one device with the same global batch (tested in
    ``tests/test_distributed.py``). Outside a strategy both settings compute the same.
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones", synchronized=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.axis = _axes(axis)
        self.synchronized = _validation.boolean("synchronized", synchronized)
        if self.synchronized and keras.backend.backend() != "tensorflow":
            raise ValueError("Argument `synchronized=True` needs the TensorFlow backend (tf.distribute). "
                             f"Received: synchronized=True with KERAS_BACKEND={keras.backend.backend()}")
        self.momentum = _validation.unit_interval("momentum", momentum)
        self.epsilon = _validation.finite_positive("epsilon", epsilon)
        self.center = _validation.boolean("center", center)
        self.scale = _validation.boolean("scale", scale)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.moving_mean_initializer = keras.initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(moving_variance_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        ndim = len(input_shape)
        kept = sorted({a % ndim if -ndim <= a < ndim else _validation._fail(
            "axis", self.axis, f"axes of a rank-{ndim} input") for a in self.axis})
        if 0 in kept:
            _validation._fail("axis", self.axis, "feature axes (not the batch axis 0)")
        if any(input_shape[a] is None for a in kept):
            raise ValueError(f"BatchNormalization needs static sizes on axis={self.axis}; got {input_shape}")
        self._kept = tuple(kept)
        self._reduction = tuple(a for a in range(ndim) if a not in kept)
        self._broadcast = tuple(input_shape[a] if a in kept else 1 for a in range(ndim))
        shape = tuple(input_shape[a] for a in kept)
        self.gamma = self.add_weight(name="gamma", shape=shape, initializer=self.gamma_initializer,
                                     trainable=True, autocast=False) if self.scale else None
        self.beta = self.add_weight(name="beta", shape=shape, initializer=self.beta_initializer,
                                    trainable=True, autocast=False) if self.center else None
        self.moving_mean = self.add_weight(name="moving_mean", shape=shape, trainable=False,
                                           initializer=self.moving_mean_initializer, autocast=False,
                                           aggregation="mean")
        self.moving_variance = self.add_weight(name="moving_variance", shape=shape, trainable=False,
                                               initializer=self.moving_variance_initializer, autocast=False,
                                               aggregation="mean")

    def _b(self, v):
        return None if v is None else ops.reshape(ops.cast(v, "float32"), self._broadcast)

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        if training and self.trainable:
            static = [inputs.shape[a] for a in self._reduction]
            if all(d is not None for d in static) and math.prod(static) == 1:
                raise ValueError("BatchNormalization in training needs m >= 2 values per statistic "
                                 f"(the batch variance of one value is undefined); input shape {inputs.shape}, "
                                 f"axis={self.axis}. Use a larger batch or call with training=False.")
            replica = tf.distribute.get_replica_context() if self.synchronized else None
            if replica is not None and replica.num_replicas_in_sync > 1:
                mean, var, m = _m.batchnorm_moments_global(
                    x, self._reduction, lambda t: replica.all_reduce(tf.distribute.ReduceOp.SUM, t))
            else:
                mean, var = _m.batchnorm_moments(x, self._reduction)
                m = ops.cast(ops.prod(ops.take(ops.shape(x), list(self._reduction))), "float32")
            unbiased = ops.where(m > 1.0, _m.unbiased_variance(var, ops.maximum(m, 2.0)),
                                 self._b(self.moving_variance))
            shape = ops.shape(self.moving_mean)
            self.moving_mean.assign(_m.moving_average(self.moving_mean, ops.reshape(mean, shape), self.momentum))
            self.moving_variance.assign(
                _m.moving_average(self.moving_variance, ops.reshape(unbiased, shape), self.momentum))
        else:
            mean, var = self._b(self.moving_mean), self._b(self.moving_variance)
        y = _m.batchnorm_affine(_m.batchnorm_normalize(x, mean, var, self.epsilon),
                                self._b(self.gamma), self._b(self.beta))
        return ops.cast(y, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        s = keras.initializers.serialize
        return {**super().get_config(), "axis": list(self.axis), "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": s(self.beta_initializer), "gamma_initializer": s(self.gamma_initializer),
                "moving_mean_initializer": s(self.moving_mean_initializer),
                "moving_variance_initializer": s(self.moving_variance_initializer),
                "synchronized": self.synchronized}


def _crop_offsets(state, shape, height, width):
    span_h, span_w = shape[1] - height, shape[2] - width
    u = _random.uniform(state, tf.stack([2, shape[0]]))
    oh = tf.minimum(tf.cast(u[0] * tf.cast(span_h + 1, tf.float32), tf.int32), span_h)
    ow = tf.minimum(tf.cast(u[1] * tf.cast(span_w + 1, tf.float32), tf.int32), span_w)
    return oh, ow


def _random_crop_train(images, state, height, width):
    oh, ow = _crop_offsets(state, tf.shape(images), height, width)
    return _m.random_crop(images, height, width, oh, ow)


def _random_rotation_train(images, state, max_angle, fill_value):
    angles = (2.0 * _random.uniform(state, tf.shape(images)[:1]) - 1.0) * max_angle
    return _m.random_rotation_bilinear(images, angles, fill_value)


# The training-time draws and crop/rotation math as XLA clusters (traced once per dtype and
# static shape). Under a plain tf.function (Keras' jit_compile=False, tf.data's map) the
# gather-based math and the hash RNG would run as dozens of small TF ops, ~2x (crop) and ~5x
# (rotation) the time of their compiled form; inside an outer jit_compile function these nested
# jit_compile functions are simply inlined. Only the rng_state read/advance stays outside.
_random_crop_train_xla = tf.function(_random_crop_train, jit_compile=True, reduce_retracing=True)
_random_rotation_train_xla = tf.function(_random_rotation_train, jit_compile=True, reduce_retracing=True)


def _image_rank(layer, inputs):
    if inputs.shape.rank != 4:
        raise ValueError(f"{type(layer).__name__} expects NHWC images (rank 4); got shape {inputs.shape}")


@_register
class RandomCrop(_SeededLayer):
    r"""Random crops (lecture: "random crops"): a uniformly placed ``height`` x ``width`` window per image.

    .. math:: y_b = x_b[o^h_b : o^h_b+\text{height},\ o^w_b : o^w_b+\text{width}],\quad
              o^h_b \sim \mathcal U\{0..H-\text{height}\},\ o^w_b \sim \mathcal U\{0..W-\text{width}\}

    At inference the *centre* crop, offsets :math:`\lfloor (H-\text{height})/2 \rfloor` (Keras
    resizes instead), so train and test shapes agree. An input smaller than the crop is a ValueError.
    """

    def __init__(self, height, width, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.height = _validation.positive_int("height", height)
        self.width = _validation.positive_int("width", width)

    def _check(self, inputs):
        _image_rank(self, inputs)
        h, w = inputs.shape[1], inputs.shape[2]
        if (h is not None and h < self.height) or (w is not None and w < self.width):
            raise ValueError(f"RandomCrop({self.height}, {self.width}) needs images at least that large; "
                             f"got shape {inputs.shape}")

    def call(self, inputs, training=None):
        self._check(inputs)
        if training:
            return _random_crop_train_xla(inputs, self._next_state(), self.height, self.width)
        shape = tf.shape(inputs)  # centre crop: one static-size slice
        begin = tf.stack([0, (shape[1] - self.height) // 2, (shape[2] - self.width) // 2, 0])
        return tf.slice(inputs, begin, [-1, self.height, self.width, -1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


@_register
class RandomRotation(_SeededLayer):
    r"""Small random rotations (lecture: "small random rotations"), bilinear, constant fill.

    Angle :math:`\theta_b \sim \mathcal U[-\theta_{max}, \theta_{max}]` per image; output pixel (y, x)
    samples the input at
    :math:`(x_s, y_s) = c + R(\theta_b)\,((x, y) - c)` (counter-clockwise as displayed, centre
    ((H-1)/2, (W-1)/2)) by bilinear interpolation, out-of-image neighbours reading ``fill_value``.
    Give exactly one of ``max_angle_degrees`` / ``max_angle_radians``. Gather-based: compiles under
    XLA (Keras' RandomRotation does not). Identity at inference. Same conventions as
    ``keras_optreg_spec.unnumbered.random_rotation_bilinear``.
    """

    def __init__(self, max_angle_degrees=None, max_angle_radians=None, fill_mode="constant", fill_value=0.0,
                 interpolation="bilinear", seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if (max_angle_degrees is None) == (max_angle_radians is None):
            _validation._fail("max_angle_degrees", max_angle_degrees,
                              f"given exactly when max_angle_radians is not (max_angle_radians={max_angle_radians!r})")
        if max_angle_degrees is not None:
            self.max_angle_degrees = _validation.finite_nonnegative("max_angle_degrees", max_angle_degrees)
            self.max_angle_radians = None
            self._max = math.radians(self.max_angle_degrees)
        else:
            self.max_angle_radians = _validation.finite_nonnegative("max_angle_radians", max_angle_radians)
            self.max_angle_degrees = None
            self._max = self.max_angle_radians
        self.fill_mode = _validation.one_of("fill_mode", fill_mode, ("constant",))
        self.interpolation = _validation.one_of("interpolation", interpolation, ("bilinear",))
        self.fill_value = _validation.real("fill_value", fill_value)

    def call(self, inputs, training=None):
        _image_rank(self, inputs)
        if not training or self._max == 0.0:
            return inputs
        return _random_rotation_train_xla(inputs, self._next_state(), self._max, self.fill_value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_angle_degrees": self.max_angle_degrees,
                "max_angle_radians": self.max_angle_radians, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "interpolation": self.interpolation}
