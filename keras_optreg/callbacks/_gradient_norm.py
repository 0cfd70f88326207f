r""":class:`GradientNormOptimizer`: any Keras optimizer, recording the global gradient norm of each step."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras.src.utils import tracking


def _dtype(g):
    return tf.float64 if g.dtype == tf.float64 else tf.float32


def global_norm(grads):
    r""":math:`\sqrt{\sum_v \|g_v\|_2^2}` as a float32 scalar; ``None`` entries are left out (NaN if all are).

    The squares are summed in float32 (float64 for float64 gradients), so float16 and bfloat16
    gradients do not overflow in them. A sparse ``tf.IndexedSlices`` gradient counts as its dense
    form: rows with repeated indices are summed first (``tf.math.unsorted_segment_sum``, which XLA
    compiles; it takes the dense shape's memory for the step).
    """
    squares = []
    for g in grads:
        if g is None:
            continue
        if isinstance(g, tf.IndexedSlices):
            g = tf.math.unsorted_segment_sum(g.values, g.indices, g.dense_shape[0])
        g = tf.convert_to_tensor(g)
        squares.append(tf.reduce_sum(tf.square(tf.cast(g, _dtype(g)))))
    if not squares:
        return tf.constant(np.nan, tf.float32)
    dtype = tf.float64 if any(s.dtype == tf.float64 for s in squares) else tf.float32
    return tf.cast(tf.sqrt(tf.add_n([tf.cast(s, dtype) for s in squares])), tf.float32)


class _Untracked:
    """Holds the ``gradient_norm`` Variable where neither Keras' tracker (``variables``, ``.keras`` files) nor
    TensorFlow's (``tf.train.Checkpoint``) finds it: both track attributes that are Variables, not a plain object."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable


def _divide(g, factor):
    if g is None:
        return None
    if isinstance(g, tf.IndexedSlices):
        return tf.IndexedSlices(g.values / factor, g.indices, g.dense_shape)
    return g / factor


@keras.saving.register_keras_serializable(package="keras_optreg")
class GradientNormOptimizer(keras.optimizers.Optimizer):
    r"""Wraps any Keras optimizer and records the global L2 norm of the gradient of each step it applies.

    .. math:: \|g_k\|_2 = \sqrt{\sum_v \|g_{k,v}\|_2^2}

    where :math:`g_{k,v}` is the gradient of variable :math:`v` at step :math:`k`: the quantity
    every update rule of the lecture, eqs. (4)-(18), is driven by (eq. (4): :math:`\theta \leftarrow
    \theta - \epsilon g`). ``gradient_norm`` (a float32 scalar ``keras.Variable``, NaN before the
    first step) holds it after each step, as keras_optreg's own optimizers record it, so that
    :class:`~keras_optreg.callbacks.OptimizerMonitor` can log it for a Keras optimizer. Built in the
    style of ``keras.optimizers.LossScaleOptimizer``: a ``keras.optimizers.Optimizer`` whose
    ``apply`` computes the norm, then calls the inner optimizer's ``apply`` with the same gradients.

    * The norm is taken before the inner optimizer's ``clipnorm`` / ``global_clipnorm`` /
      ``clipvalue`` and weight decay; it is the unscaled gradient's: under
      ``keras.mixed_precision`` put this wrapper inside the ``LossScaleOptimizer`` (``compile``
      does so itself under a ``mixed_float16`` policy), and a ``loss_scale_factor`` of the inner
      optimizer moves to the wrapper (the wrapper scales the loss and divides the gradients by it,
      as Keras' base class does; the inner optimizer's is set to None).
    * Sparse gradients (``tf.IndexedSlices``, from ``Embedding``) count as their dense form.
    * ``variables`` are the inner optimizer's (the wrapper adds none: ``gradient_norm`` is not
      saved), so the weights layout is the inner optimizer's; ``iterations`` and
      ``learning_rate`` are the inner optimizer's too.

    Args:
        inner_optimizer: the ``keras.optimizers.Optimizer`` to wrap. Not a ``LossScaleOptimizer``
            (it would see loss-scaled gradients; wrap its inner optimizer instead), not one that
            records ``gradient_norm`` itself (keras_optreg's optimizers), and without
            ``gradient_accumulation_steps`` (the wrapper would see each micro-batch's gradient,
            not the accumulated one of the step; keras_optreg's optimizers record that one).
        name: the wrapper's name (default: derived from the class name, as Keras names optimizers).

    TensorFlow backend only; one replica (under a ``tf.distribute`` strategy with several replicas
    each replica would record the norm of its own share of the gradient: refused when built).
    """

    def __init__(self, inner_optimizer, name=None):
        if keras.backend.backend() != "tensorflow":
            raise ValueError("keras_optreg.callbacks.GradientNormOptimizer needs the TensorFlow backend. "
                             f"Received: KERAS_BACKEND={keras.backend.backend()}")
        if not isinstance(inner_optimizer, keras.optimizers.Optimizer):
            raise TypeError("Argument `inner_optimizer` must be a keras.optimizers.Optimizer. "
                            f"Received: inner_optimizer={inner_optimizer!r}")
        if isinstance(inner_optimizer, keras.optimizers.LossScaleOptimizer):
            raise ValueError("Argument `inner_optimizer` must not be a LossScaleOptimizer (the norm would be the "
                             "loss-scaled gradient's): wrap its inner optimizer, LossScaleOptimizer(GradientNorm"
                             f"Optimizer(opt)). Received: inner_optimizer={inner_optimizer!r}")
        if hasattr(type(inner_optimizer), "gradient_norm"):
            raise ValueError("Argument `inner_optimizer` records `gradient_norm` itself (a keras_optreg optimizer): "
                             f"use it unwrapped. Received: inner_optimizer={inner_optimizer!r}")
        if inner_optimizer.gradient_accumulation_steps:
            raise ValueError("Argument `inner_optimizer` must not accumulate gradients (the wrapper would record "
                             "each micro-batch's norm, not the step's): keras_optreg's optimizers record the "
                             "accumulated gradient's norm. Received: inner_optimizer with "
                             f"gradient_accumulation_steps={inner_optimizer.gradient_accumulation_steps!r}")
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.loss_scale_factor = inner_optimizer.loss_scale_factor
        inner_optimizer.loss_scale_factor = None
        self._gradient_norm = None

    @tracking.no_automatic_dependency_tracking
    def build(self, var_list):
        if tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1:
            raise ValueError("GradientNormOptimizer records one replica's gradient: it does not support "
                             "tf.distribute strategies with several replicas. Received: num_replicas_in_sync="
                             f"{tf.distribute.get_strategy().num_replicas_in_sync}")
        self.inner_optimizer.build(var_list)
        if self._gradient_norm is None:  # created here, untracked: not in `variables`, not saved
            self._gradient_norm = _Untracked(keras.Variable(np.nan, dtype="float32", trainable=False,
                                                            name="gradient_norm"))
        super().build(var_list)

    @property
    def gradient_norm(self):
        """The global L2 norm of the gradient the last step applied (float32 scalar Variable; NaN before it)."""
        if self._gradient_norm is None:
            raise ValueError(f"{self.name}.gradient_norm exists once the optimizer is built "
                             "(`build(variables)`, or its first `apply`).")
        return self._gradient_norm.variable

    @property
    def variables(self):
        return self.inner_optimizer.variables

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if not grads:
            return self.inner_optimizer.apply(grads, trainable_variables)
        if not self.built:
            if trainable_variables is None:
                raise ValueError("When passing `grads` without `variables`, the optimizer must already be built on "
                                 "a list of variables. Call `optimizer.build(trainable_variables)` first.")
            with keras.name_scope(self.name, caller=self):
                self.build(list(trainable_variables))
            self.built = True
        if self.loss_scale_factor is not None:
            grads = [_divide(g, self.loss_scale_factor) for g in grads]
        self._gradient_norm.variable.assign(global_norm(grads))
        self.inner_optimizer.apply(grads, trainable_variables)

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        self.inner_optimizer.learning_rate = learning_rate

    def finalize_variable_values(self, var_list):
        self.inner_optimizer.finalize_variable_values(var_list)

    def get_config(self):
        return {"name": self.name, "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
                "loss_scale_factor": self.loss_scale_factor}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("inner_optimizer"), custom_objects=custom_objects)
        factor = config.pop("loss_scale_factor", None)
        optimizer = cls(inner, **config)
        optimizer.loss_scale_factor = factor
        return optimizer
