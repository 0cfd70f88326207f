r"""BatchNormalization, lecture eq. (20) corrected with epsilon (Ioffe & Szegedy 2015, Alg. 1-2)."""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_optreg import _validation
from keras_optreg._math import layers as _m

_register = keras.saving.register_keras_serializable(package="keras_optreg")


def _axes(axis):
    axes = (axis,) if isinstance(axis, int) and not isinstance(axis, bool) else axis
    if not isinstance(axes, (tuple, list)) or not axes or not all(
            isinstance(a, int) and not isinstance(a, bool) for a in axes):
        _validation._fail("axis", axis, "an int or a non-empty tuple of ints", TypeError)
    if len(set(axes)) != len(axes):
        _validation._fail("axis", axis, "distinct axes")
    return tuple(axes)


@_register
class BatchNormalization(keras.layers.Layer):
    r"""Batch normalisation, lecture eq. (20) corrected with epsilon (Ioffe & Szegedy 2015, Alg. 1-2).
    Drop-in for ``keras.layers.BatchNormalization`` (same weights, in the same order).

    .. math:: \mu_B = \frac1m\sum_i x_i,\ \ \sigma_B^2 = \frac1m\sum_i (x_i-\mu_B)^2,\ \
              \hat x_i = \frac{x_i-\mu_B}{\sqrt{\sigma_B^2+\epsilon}},\ \ y_i = \gamma\hat x_i + \beta

    ``axis`` names the *kept* (feature) axes: the default ``-1`` is per channel, statistics over
    batch and positions (Ioffe & Szegedy sec. 3.2, m = N*H*W for an NHWC map); ``axis=(1, 2, 3)``
    is the lecture's literal per-position reading (gamma, beta and statistics for every i, j).

    Training uses the batch statistics and updates the moving averages in Keras' direction,
    ``moving = momentum * moving + (1 - momentum) * batch``; the variance fed to the moving
    average is the *unbiased* :math:`\frac{m}{m-1}\sigma_B^2` (Alg. 2 step 10; Keras feeds the
    biased one). Inference (and ``trainable=False``, as in Keras) uses the moving averages (Alg. 2
    step 11). A training batch with a static m = 1 value per statistic (e.g. batch size 1 on a dense
    input) raises ``ValueError``: its variance is undefined (Keras silently drives the moving
    variance to 0).

    Policy for batches without information or with non-finite values: each moving statistic keeps
    its value where its batch value is not finite (a NaN or infinite input, an overflowing
    variance; Keras lets one NaN batch poison the moving statistics for good), the moving mean where
    m = 0 and the moving variance where m < 2 (possible with a mask or a dynamic batch of one). The
    batch's own output is computed as usual (a NaN input gives a NaN output).

    Masks (``layer(x, mask=m)``, or the mask a previous layer propagates; rank of x minus one, as
    in Keras): the statistics use only the unmasked positions (m counts them), as Keras computes
    them; every position is normalised; the mask passes through.

    Dtypes: the statistics are computed in float32, in float64 for float64 inputs (Keras'
    ``result_type(input, "float32")`` on TensorFlow; on JAX and PyTorch too, where Keras' gives float32); moving statistics are assigned in the variables' dtype and
    the output is in the layer's compute dtype (an uint8 image comes out normalised in float32, not
    truncated). Under mixed precision the variables are float32.

    Under a ``tf.distribute`` strategy with several replicas, ``synchronized=False`` (default, as
    Keras) normalises each replica's share of the batch with that share's statistics: with a global
    batch of B on R replicas, each replica computes exactly what one device computes on its B/R
    slice, and the moving averages (``aggregation="mean"``) receive the mean over replicas of the
    per-replica updates (without it, TensorFlow would keep replica 0's update).
    ``synchronized=True`` (TensorFlow backend) all-reduces the sums behind the statistics
    (``_math.layers.batchnorm_moments_global``): m, the mean and the variance are those of the
    global batch, so training matches one device with the same global batch (tested in
    ``tests/test_distributed.py``). Outside a strategy both settings compute the same.
    ``synchronized=True`` is accepted on every backend: on JAX under ``keras.distribution.DataParallel``
    the batch is one global (sharded) array, so its statistics are the global batch's already and XLA
    inserts the cross-device reductions; on PyTorch (one process) there is one batch to normalise.

    Deviations from ``keras.layers.BatchNormalization``: the unbiased moving variance (above);
    ``axis`` may be a tuple; ``renorm`` (batch renormalization, not in the lecture) is not
    implemented: only its default ``renorm=False`` (with ``renorm_clipping=None``) is accepted;
    ``synchronized=True`` is accepted on JAX and PyTorch (Keras 3.15 raises ``ValueError`` there).

    Args:
        axis: int or tuple of ints, the kept feature axes (default -1, the channels).
        momentum: float in [0, 1), the moving average's weight on the old value.
        epsilon: float > 0 added to the variance.
        center: bool, add the learned offset beta.
        scale: bool, multiply by the learned scale gamma.
        beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer:
            initializers (names, dicts or objects) of the four weights.
        beta_regularizer, gamma_regularizer: optional regularizers of beta and gamma.
        beta_constraint, gamma_constraint: optional constraints of beta and gamma.
        renorm, renorm_clipping, renorm_momentum: Keras' batch-renormalization arguments, accepted at
            their defaults only (False, None, any momentum in [0, 1)).
        synchronized: bool, global-batch statistics under a ``tf.distribute`` strategy; accepted on every
            backend (on JAX and PyTorch the statistics are the whole batch's either way, see above).
        **kwargs: base layer arguments (``name``, ``dtype``).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 renorm=False, renorm_clipping=None, renorm_momentum=0.99, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axes(axis)
        self.synchronized = _validation.boolean("synchronized", synchronized)
        self.momentum = _validation.unit_interval("momentum", momentum)
        self.epsilon = _validation.finite_positive("epsilon", epsilon)
        self.center = _validation.boolean("center", center)
        self.scale = _validation.boolean("scale", scale)
        if _validation.boolean("renorm", renorm):
            _validation._fail("renorm", renorm, "False (batch renormalization is not implemented)")
        if renorm_clipping is not None:
            _validation._fail("renorm_clipping", renorm_clipping, "None (batch renormalization is not implemented)")
        self.renorm, self.renorm_clipping = False, None
        self.renorm_momentum = _validation.unit_interval("renorm_momentum", renorm_momentum)
        self.beta_initializer = keras.initializers.get(beta_initializer)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.moving_mean_initializer = keras.initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = keras.initializers.get(moving_variance_initializer)
        self.beta_regularizer = keras.regularizers.get(beta_regularizer)
        self.gamma_regularizer = keras.regularizers.get(gamma_regularizer)
        self.beta_constraint = keras.constraints.get(beta_constraint)
        self.gamma_constraint = keras.constraints.get(gamma_constraint)
        self.supports_masking = True

    def _kept_axes(self, ndim):
        kept = []
        for a in self.axis:
            if not -ndim <= a < ndim:
                _validation._fail("axis", self.axis, f"axes of the rank-{ndim} input")
            kept.append(a % ndim)
        if len(set(kept)) != len(kept):
            _validation._fail("axis", self.axis, f"distinct axes of the rank-{ndim} input (they name {kept})")
        if 0 in kept:
            _validation._fail("axis", self.axis, "feature axes (not the batch axis 0)")
        return tuple(sorted(kept))

    def build(self, input_shape):
        ndim = len(input_shape)
        kept = self._kept_axes(ndim)
        if any(input_shape[a] is None for a in kept):
            raise ValueError(f"BatchNormalization needs static sizes on axis={self.axis}; got {tuple(input_shape)}")
        self._kept = kept
        self._reduction = tuple(a for a in range(ndim) if a not in kept)
        self._broadcast = tuple(input_shape[a] if a in kept else 1 for a in range(ndim))
        shape = tuple(input_shape[a] for a in kept)
        self.gamma = self.add_weight(name="gamma", shape=shape, initializer=self.gamma_initializer,
                                     regularizer=self.gamma_regularizer, constraint=self.gamma_constraint,
                                     trainable=True, autocast=False) if self.scale else None
        self.beta = self.add_weight(name="beta", shape=shape, initializer=self.beta_initializer,
                                    regularizer=self.beta_regularizer, constraint=self.beta_constraint,
                                    trainable=True, autocast=False) if self.center else None
        self.moving_mean = self.add_weight(name="moving_mean", shape=shape, trainable=False,
                                           initializer=self.moving_mean_initializer, autocast=False,
                                           aggregation="mean")
        self.moving_variance = self.add_weight(name="moving_variance", shape=shape, trainable=False,
                                               initializer=self.moving_variance_initializer, autocast=False,
                                               aggregation="mean")
        self.input_spec = keras.layers.InputSpec(ndim=ndim, axes={a: input_shape[a] for a in kept})

    def _b(self, v, dtype):
        return None if v is None else ops.reshape(ops.cast(v, dtype), self._broadcast)

    def _moments(self, x, mask):
        if mask is not None:
            if len(mask.shape) != len(x.shape) - 1:
                raise ValueError(f"Argument `mask` must have the input's rank minus one ({len(x.shape) - 1}), as in "
                                 f"Keras. Received: mask of shape {tuple(mask.shape)} for an input of shape "
                                 f"{tuple(x.shape)}")
            return _m.batchnorm_moments_masked(x, self._reduction, ops.expand_dims(mask, -1))
        replica = None
        if self.synchronized and keras.backend.backend() == "tensorflow":
            import tensorflow as tf  # tf.distribute: replicas that each see a slice of the batch

            replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            import tensorflow as tf

            return _m.batchnorm_moments_global(
                x, self._reduction, lambda t: replica.all_reduce(tf.distribute.ReduceOp.SUM, t))
        mean, var = _m.batchnorm_moments(x, self._reduction)
        m = ops.cast(ops.prod(ops.take(ops.shape(x), list(self._reduction))), x.dtype)
        return mean, var, m

    def _update(self, variable, batch, valid, dtype):
        old = ops.cast(variable, dtype)
        shape = ops.shape(variable)
        valid = ops.reshape(valid, shape) if len(valid.shape) else ops.broadcast_to(valid, shape)
        new = _m.moving_average_guarded(old, ops.reshape(batch, shape), self.momentum, valid)
        variable.assign(ops.cast(new, variable.dtype))

    def call(self, inputs, training=None, mask=None):
        # float64 for float64 inputs, else float32 (written out: Keras' result_type(float64, float32) is float32
        # on JAX and PyTorch)
        dtype = "float64" if keras.backend.standardize_dtype(inputs.dtype) == "float64" else "float32"
        x = ops.cast(inputs, dtype)
        if training and self.trainable:
            static = [inputs.shape[a] for a in self._reduction]
            if mask is None and all(d is not None for d in static) and math.prod(static) == 1:
                raise ValueError("BatchNormalization in training needs m >= 2 values per statistic "
                                 f"(the batch variance of one value is undefined); input shape {tuple(inputs.shape)}, "
                                 f"axis={self.axis}. Use a larger batch or call with training=False.")
            mean, var, m = self._moments(x, mask)  # max(m, 2) by a where: keras.ops.maximum's result_type makes
            # float64 float32 on JAX and PyTorch (Keras 3.15 maps every 64-bit result to 32 bits there)
            moving_var = self._b(self.moving_variance, dtype)
            unbiased = ops.where(m > 1.0, _m.unbiased_variance(var, ops.where(m > 1.0, m, ops.cast(2.0, m.dtype))), moving_var)
            self._update(self.moving_mean, mean, m > 0.0, dtype)
            self._update(self.moving_variance, unbiased, m > 1.0, dtype)
        else:
            mean, var = self._b(self.moving_mean, dtype), self._b(self.moving_variance, dtype)
        y = _m.batchnorm_affine(_m.batchnorm_normalize(x, mean, var, self.epsilon),
                                self._b(self.gamma, dtype), self._b(self.beta, dtype))
        return ops.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        self._kept_axes(len(input_shape))
        return input_shape

    def get_config(self):
        s = keras.initializers.serialize
        return {**super().get_config(), "axis": self.axis[0] if len(self.axis) == 1 else list(self.axis),
                "momentum": self.momentum, "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": s(self.beta_initializer), "gamma_initializer": s(self.gamma_initializer),
                "moving_mean_initializer": s(self.moving_mean_initializer),
                "moving_variance_initializer": s(self.moving_variance_initializer),
                "beta_regularizer": keras.regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": keras.regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": keras.constraints.serialize(self.beta_constraint),
                "gamma_constraint": keras.constraints.serialize(self.gamma_constraint),
                "synchronized": self.synchronized, "renorm": self.renorm, "renorm_clipping": self.renorm_clipping,
                "renorm_momentum": self.renorm_momentum}
