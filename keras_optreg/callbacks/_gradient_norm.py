r""":class:`GradientNormOptimizer`: any Keras optimizer, recording the global gradient norm of each step."""

from __future__ import annotations

import keras
import numpy as np
from keras.src.utils import tracking

from keras_optreg._math import optim as M


def _tensorflow():
    return keras.backend.backend() == "tensorflow"


def _tf():
    """The optimizers' TensorFlow-only parts (IndexedSlices, tf.distribute); imported on TensorFlow only."""
    from keras_optreg.optimizers import _tf as T

    return T


def global_norm(grads):
    r""":math:`\sqrt{\sum_v \|g_v\|_2^2}` as a float32 scalar; ``None`` entries are left out (NaN if all are).

    ``keras_optreg._math.optim.global_norm``: the squares are summed in float32 (float64 for float64
    gradients), so float16 and bfloat16 gradients do not overflow in them. On TensorFlow a sparse
    ``tf.IndexedSlices`` gradient counts as its dense form (rows with repeated indices summed first,
    as the optimizers count it).
    """
    present = [g for g in grads if g is not None]
    if not present:
        return keras.ops.convert_to_tensor(np.float32(np.nan))
    if _tensorflow():
        present = [_tf().dense(g) for g in present]
    return M.global_norm(present)


class _Untracked:
    """Holds the ``gradient_norm`` Variable where neither Keras' tracker (``variables``, ``.keras`` files) nor
    TensorFlow's (``tf.train.Checkpoint``) finds it: both track attributes that are Variables, not a plain object."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable


def _divide(g, factor):
    if g is None:
        return None
    if _tensorflow() and _tf().is_sparse(g):
        import tensorflow as tf

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
    * Sparse gradients (``tf.IndexedSlices``, from ``Embedding`` on TensorFlow) count as their dense form.
    * ``variables`` are the inner optimizer's, and on JAX ``gradient_norm`` after them (Keras' JAX
      ``fit`` runs ``stateless_apply`` on ``variables`` only: outside them the norm written in the
      step would be lost; keras_optreg's optimizers do the same). ``gradient_norm`` is never saved:
      ``save_own_variables`` / ``load_own_variables`` and files hold the inner optimizer's layout on
      every backend. ``iterations`` and ``learning_rate`` are the inner optimizer's too.

    Args:
        inner_optimizer: the ``keras.optimizers.Optimizer`` to wrap. Not a ``LossScaleOptimizer``
            (it would see loss-scaled gradients; wrap its inner optimizer instead), not one that
            records ``gradient_norm`` itself (keras_optreg's optimizers), and without
            ``gradient_accumulation_steps`` (the wrapper would see each micro-batch's gradient,
            not the accumulated one of the step; keras_optreg's optimizers record that one).
        name: the wrapper's name (default: derived from the class name, as Keras names optimizers).

    Every Keras backend (eager, ``tf.function`` / XLA, ``jax.jit`` through ``stateless_apply``,
    PyTorch). One replica on TensorFlow (under a ``tf.distribute`` strategy with several replicas
    each replica would record the norm of its own share of the gradient: refused when built).
    """

    def __init__(self, inner_optimizer, name=None):
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
        if _tensorflow():
            import tensorflow as tf

            if tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1:
                raise ValueError("GradientNormOptimizer records one replica's gradient: it does not support "
                                 "tf.distribute strategies with several replicas. Received: num_replicas_in_sync="
                                 f"{tf.distribute.get_strategy().num_replicas_in_sync}")
        self.inner_optimizer.build(var_list)
        if self._gradient_norm is None:  # created here, untracked: not saved (in `variables` on JAX only)
            self._gradient_norm = _Untracked(keras.Variable(np.float32(np.nan), dtype="float32", trainable=False,
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
        """The inner optimizer's variables; on JAX ``gradient_norm`` after them (see the class docstring)."""
        if self._gradient_norm is not None and keras.backend.backend() == "jax":
            return self.inner_optimizer.variables + [self._gradient_norm.variable]
        return self.inner_optimizer.variables

    def save_own_variables(self, store):
        """Keras' method on the inner optimizer's variables: ``gradient_norm`` is not saved."""
        for i, variable in enumerate(self.inner_optimizer.variables):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        """Keras' method on the inner optimizer's variables (the layout ``save_own_variables`` writes)."""
        self.inner_optimizer.load_own_variables(store)

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
