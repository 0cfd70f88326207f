r"""Training diagnostics Keras' ``TensorBoard`` callback does not write: :class:`OptimizerMonitor`."""

from __future__ import annotations

import numbers
import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from keras_optreg import _validation as V


def _metadata(plugin):
    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))


_SCALAR, _HISTOGRAM = _metadata("scalars"), _metadata("histograms")


def _scalar(tag, value):
    """``tf.summary.scalar`` without the tensorboard package: the same tensor and plugin metadata."""
    tf.summary.write(tag, tf.cast(value, tf.float32), metadata=_SCALAR)


def _histogram(tag, values, buckets=30):
    """TensorBoard's histogram format: a (buckets, 3) tensor of (left edge, right edge, count)."""
    counts, edges = np.histogram(np.asarray(values, np.float64).ravel(), bins=buckets)
    data = np.stack([edges[:-1], edges[1:], counts], axis=1)
    tf.summary.write(tag, tf.constant(data, tf.float64), metadata=_HISTOGRAM)


def _check_update_freq(update_freq):
    if update_freq in ("batch", "epoch"):
        return update_freq
    if isinstance(update_freq, bool) or not isinstance(update_freq, numbers.Integral) or update_freq <= 0:
        V._fail("update_freq", update_freq, '"batch", "epoch" or an integer > 0')
    return int(update_freq)


def _check_log_dir(log_dir):
    if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
        V._fail("log_dir", log_dir, "a non-empty path (str or os.PathLike)",
                TypeError if not isinstance(log_dir, (str, os.PathLike)) else ValueError)
    return os.fspath(log_dir)


@keras.saving.register_keras_serializable(package="keras_optreg")
class OptimizerMonitor(keras.callbacks.Callback):
    r"""TensorBoard scalars about the optimizer, per batch: what ``keras.callbacks.TensorBoard`` leaves out.

    Written under ``log_dir`` (one event file, ``tf.summary``), step = the optimizer's iteration
    :math:`k` (0-based) of the update being logged:

    * ``optimizer/learning_rate``: :math:`\epsilon_k`, the rate the optimizer applies at step
      :math:`k` (a schedule such as ``LinearDecay``, lecture eq. (6), evaluated at :math:`k`).
      Keras' TensorBoard callback writes it once per epoch only.
    * ``optimizer/grad_norm``: :math:`\|g_k\|_2 = \sqrt{\sum_v \|g_{k,v}\|_2^2}`, the global norm of
      the gradients ``model.fit`` hands to ``optimizer.apply`` (before any ``clipnorm``; NaN when a
      gradient is non-finite). Measured by wrapping ``optimizer.apply`` for the duration of ``fit``
      (an instance attribute set in ``on_train_begin`` and removed in ``on_train_end``; the train
      step is traced again for this fit): one global-norm reduction per step into a scalar variable.
    * ``optimizer/update_ratio/<variable path>``: :math:`\|\Delta\theta_v\|_2 / \|\theta_v\|_2`, the
      norm of the change a step made to variable :math:`v` over the norm of :math:`v` before the step
      (the weights are copied, on the device, at the start of a logged batch only; a variable
      that is exactly zero before the step, such as a fresh bias, gives inf, or NaN if unchanged), and
      ``optimizer/update_norm``: :math:`\|\Delta\theta\|_2` over all trainable variables.
      For plain SGD (eq. 4), :math:`\Delta\theta = -\epsilon_k g_k`, so update_norm =
      :math:`\epsilon_k` grad_norm.
    * ``optimizer/skipped_steps``: the optimizer's cumulative ``skipped_steps`` (keras_optreg
      optimizers with ``nonfinite="skip"``; not written for optimizers without the counter).
    * ``epoch/gap``: ``val_loss - loss`` at the end of each epoch (when validation runs), the
      generalization gap of the lecture's overfitting figure; step = epoch (0-based).
    * ``epoch/<name>`` for every entry of the epoch's logs (``loss``, ``val_loss``, metrics), so the
      curves need neither Keras' TensorBoard callback nor the tensorboard package.
    * ``weights/<variable path>`` histograms every ``histogram_freq`` epochs (0: none).

    Args:
        log_dir: directory for the event file.
        update_freq: ``"batch"`` (every step), an integer :math:`N` (steps with :math:`k \bmod N = 0`)
            or ``"epoch"`` (the first step of each epoch). Only logged steps pay for the weight copy.
        histogram_freq: write weight histograms every this many epochs; 0 disables them.

    Needs one optimizer step per batch: ``steps_per_execution > 1`` is rejected when ``fit`` starts
    (ValueError); with gradient accumulation the gradient norm is that of the last micro-batch.
    """

    def __init__(self, log_dir, update_freq="batch", histogram_freq=0):
        super().__init__()
        self.log_dir = _check_log_dir(log_dir)
        self.update_freq = _check_update_freq(update_freq)
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, numbers.Integral) \
                or histogram_freq < 0:
            V._fail("histogram_freq", histogram_freq, "an integer >= 0")
        self.histogram_freq = int(histogram_freq)
        self._writer = None
        self._grad_norm = None
        self._before = None
        self._k = 0
        self._first_batch = False

    # -- wiring ---------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        if getattr(self.model, "steps_per_execution", 1) != 1:
            raise ValueError("OptimizerMonitor logs per batch and needs `steps_per_execution=1` in compile. "
                             f"Received: steps_per_execution={self.model.steps_per_execution!r}")
        self._writer = tf.summary.create_file_writer(self.log_dir)
        optimizer = self.model.optimizer
        if self._grad_norm is None:
            self._grad_norm = tf.Variable(np.nan, dtype=tf.float32, trainable=False, name="monitor_grad_norm")
        norm_var, original = self._grad_norm, optimizer.apply

        def apply(grads, trainable_variables=None):
            present = [g for g in grads if g is not None]
            if present:
                norm_var.assign(tf.cast(tf.linalg.global_norm(present), tf.float32))
            return original(grads, trainable_variables)

        optimizer.apply = apply
        # A step traced by an earlier fit would not call the wrapper: trace it again (once per fit).
        self.model.make_train_function(force=True)
        self._k = int(keras.ops.convert_to_numpy(optimizer.iterations))
        self._snapshot_fn, self._log_fn = self._make_snapshot(), None

    def _make_snapshot(self):
        """A graph function: the rate of step k and a copy of the weights, before a logged step."""
        optimizer, variables = self.model.optimizer, list(self.model.trainable_variables)

        @tf.function
        def snapshot():
            lr = tf.cast(keras.ops.convert_to_tensor(optimizer.learning_rate), tf.float32)
            return lr, [tf.identity(v.value) for v in variables]

        return snapshot

    def _make_log(self):
        """A graph function writing every per-step scalar (built after the optimizer's first step)."""
        optimizer, writer, norm_var = self.model.optimizer, self._writer, self._grad_norm
        variables = list(self.model.trainable_variables)
        tags = [f"optimizer/update_ratio/{v.path}" for v in variables]
        skipped = getattr(optimizer, "skipped_steps", None)

        @tf.function
        def log(step, lr, before):
            with writer.as_default(step=step):
                _scalar("optimizer/learning_rate", lr)
                _scalar("optimizer/grad_norm", norm_var.read_value())
                squares = []
                for tag, v, old in zip(tags, variables, before, strict=True):
                    delta = tf.cast(tf.norm(v.value - old), tf.float32)
                    squares.append(tf.square(delta))
                    _scalar(tag, delta / tf.cast(tf.norm(old), tf.float32))
                _scalar("optimizer/update_norm", tf.sqrt(tf.add_n(squares)))
                if skipped is not None:
                    _scalar("optimizer/skipped_steps", tf.cast(skipped.value, tf.float32))

        return log

    def on_train_end(self, logs=None):
        optimizer = self.model.optimizer
        if "apply" in vars(optimizer):
            del optimizer.apply
        if self._writer is not None:
            self._writer.flush()

    def _logs_step(self, step):
        if self.update_freq == "batch":
            return True
        if self.update_freq == "epoch":
            return self._first_batch
        return step % self.update_freq == 0

    # -- per batch --------------------------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self._first_batch = True

    def on_train_batch_begin(self, batch, logs=None):
        # k is counted here (one optimizer step per batch) instead of reading `iterations` each batch
        if self._logs_step(self._k):
            self._before = self._snapshot_fn()
        self._first_batch = False

    def on_train_batch_end(self, batch, logs=None):
        step, self._k = self._k, self._k + 1
        if self._before is None:
            return
        (lr, before), self._before = self._before, None
        if self._log_fn is None:
            self._log_fn = self._make_log()
        self._log_fn(tf.constant(step, tf.int64), lr, before)

    # -- per epoch --------------------------------------------------------------------------------
    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        with self._writer.as_default(step=epoch):
            for name, value in logs.items():
                _scalar(f"epoch/{name}", float(value))
            if "loss" in logs and "val_loss" in logs:
                _scalar("epoch/gap", float(logs["val_loss"]) - float(logs["loss"]))
            if self.histogram_freq and epoch % self.histogram_freq == 0:
                for v in self.model.trainable_variables:
                    _histogram(f"weights/{v.path}", keras.ops.convert_to_numpy(v))
        self._writer.flush()

    def get_config(self):
        return {"log_dir": self.log_dir, "update_freq": self.update_freq, "histogram_freq": self.histogram_freq}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
