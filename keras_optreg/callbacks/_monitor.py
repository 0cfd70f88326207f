r""":class:`OptimizerMonitor`: per-step optimizer diagnostics Keras' ``TensorBoard`` callback does not write."""

from __future__ import annotations

import numbers
import os

import keras
import numpy as np
from keras import ops

from keras_optreg import _validation as V
from keras_optreg._math import optim as M
from keras_optreg.callbacks import _events as E


def _check_update_freq(update_freq):
    if isinstance(update_freq, str) and update_freq in ("batch", "epoch"):
        return update_freq
    if isinstance(update_freq, bool) or not isinstance(update_freq, numbers.Integral) or update_freq <= 0:
        V._fail("update_freq", update_freq, '"batch", "epoch" or an integer > 0')
    return int(update_freq)


def _check_log_dir(log_dir):
    if not isinstance(log_dir, (str, os.PathLike)):
        V._fail("log_dir", log_dir, "a non-empty path (str or os.PathLike)", TypeError)
    path = os.fspath(log_dir)
    if not path:
        V._fail("log_dir", log_dir, "a non-empty path (str or os.PathLike)")
    # the directory must exist or be creatable: no part of it may be an existing file
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        V._fail("log_dir", log_dir, f"a directory or a path to create one; {probe!r} is an existing file")
    return path


def _float(x):
    return float(ops.convert_to_numpy(x))


def _compiled(fn):
    """``fn`` compiled as the backend compiles a step: a ``tf.function`` (``reduce_retracing``: after a
    second signature the shapes are relaxed) on TensorFlow, ``jax.jit`` on JAX, eager on PyTorch."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        return jax.jit(fn)
    return fn


def _copy_values(values):
    return [ops.copy(ops.stop_gradient(v)) for v in values]


def _compute_dtype(dtype):
    return "float64" if keras.backend.standardize_dtype(dtype) == "float64" else "float32"


def _update_stats_values(new, old):
    """Per variable new - old, ||new - old||^2 and ||old||^2, in the variable's dtype raised to float32 at least
    (``_math.optim.sum_of_squares``, the optimizers' sum)."""
    deltas, squares, old_squares = [], [], []
    for n, o in zip(new, old, strict=True):
        dtype = _compute_dtype(n.dtype)
        o = ops.cast(o, dtype)
        d = ops.cast(n, dtype) - o
        deltas.append(d)
        squares.append(M.sum_of_squares(d))
        old_squares.append(M.sum_of_squares(o))
    return deltas, squares, old_squares


# Module-level compiled functions, shared by every monitor and traced once per signature (the list of shapes and
# dtypes): a fit with a new model of the demo's shapes traces nothing, and on TensorFlow no pattern of fits
# triggers its frequent-retracing warning (which counts traces per Python function across all its tf.function
# objects). On JAX the copy is a real one: Keras' JAX trainer donates the state it steps, so a reference to the
# weights before a step would be deleted by it.
_copy = _compiled(_copy_values)
_update_stats = _compiled(_update_stats_values)


class _Snapshot:
    """What a logged step needs from before it: the step count, the weights, the rate and the loss scale."""

    def __init__(self, start, weights, learning_rate, loss_scale):
        self.start, self.weights, self.learning_rate, self.loss_scale = start, weights, learning_rate, loss_scale


@keras.saving.register_keras_serializable(package="keras_optreg")
class OptimizerMonitor(keras.callbacks.Callback):
    r"""TensorBoard event files about the optimizer, per optimizer step, laid out as Keras' ``TensorBoard`` lays out
    its own (runs ``log_dir/train`` and ``log_dir/validation``, so TensorBoard overlays train and validation).

    Per optimizer step, in the ``train`` run, at step :math:`x` = ``optimizer.iterations`` after the step
    (so the first step is written at 1):

    * ``optimizer/learning_rate``: :math:`\epsilon_k`, the rate the step applied (a schedule such as
      ``LinearDecay``, lecture eq. (6), is evaluated as the optimizer evaluates it; read before the step).
    * ``optimizer/gradient_norm``: :math:`\|g_k\|_2 = \sqrt{\sum_v \|g_{k,v}\|_2^2}`, the optimizer's
      ``gradient_norm``: the global norm of the gradient the step applied (the accumulated gradient
      under ``gradient_accumulation_steps``, the unscaled one under a ``LossScaleOptimizer``, before
      clipping; NaN for a non-finite gradient). keras_optreg's optimizers record it; wrap any other
      optimizer in :class:`~keras_optreg.callbacks.GradientNormOptimizer` (otherwise ``fit`` stops
      at its start with a ValueError saying so).
    * ``optimizer/update_ratio/<variable path>``: :math:`\|\Delta\theta_v\|_2 / \|\theta_v\|_2`, the norm
      of the change of trainable variable :math:`v` over its norm before the step (a variable that is
      exactly zero before the step, such as a fresh bias, gives inf, or NaN if unchanged), and
      ``optimizer/update_norm``: :math:`\|\Delta\theta\|_2` over all trainable variables. For plain
      SGD (eq. 4), :math:`\Delta\theta = -\epsilon_k g_k`, so update_norm = :math:`\epsilon_k` gradient_norm.
    * ``optimizer/loss_scale``: the dynamic loss scale the step's loss was multiplied by, under a
      ``LossScaleOptimizer`` (mixed precision) only.
    * ``optimizer/skipped_steps``: the cumulative count of skipped non-finite steps, for keras_optreg
      optimizers with ``nonfinite="skip"`` only.

    Per epoch (step = the epoch index Keras passes, as its TensorBoard callback uses): ``epoch_<name>``
    for every entry of the epoch's logs, training entries in ``train`` and ``val_<name>`` entries as
    ``epoch_<name>`` in ``validation`` (Keras' tags: one chart per metric, both curves in it), and
    ``epoch_gap`` = ``val_loss - loss`` in ``validation``, the generalization gap of the lecture's
    overfitting figure. Every ``histogram_freq`` epochs, in ``train``: ``weights/<variable path>``
    histograms of the trainable variables at the epoch's end, and ``updates/<variable path>``
    histograms of :math:`\Delta\theta_v` of the epoch's first optimizer step.

    The step axis is ``optimizer.iterations``, the axis of Keras' ``evaluation_<name>_vs_iterations``
    scalars. It equals the step of Keras' batch-level scalars (``batch_<name>``, a count of
    ``on_train_batch_begin`` calls restarted at each ``fit``) in a model's first ``fit`` with
    ``steps_per_execution=1`` and no gradient accumulation, and differs where Keras' count does
    not count optimizer steps: a later ``fit`` (Keras restarts at 1 and writes the same steps again;
    here the steps go on), ``gradient_accumulation_steps=A`` (Keras counts micro-batches, A per step;
    here one point per optimizer step), ``steps_per_execution=S`` (Keras counts executions; here one
    point per execution, at the step count after it, with the rate read before its first step, the
    gradient norm of its last step and the update ratio over its S steps) and a step a
    ``LossScaleOptimizer`` skips on overflow (no optimizer step: no point).

    Args:
        log_dir: directory for the runs ``train`` and ``validation`` (created if needed; an existing
            file there is refused at construction).
        update_freq: ``"batch"`` (every optimizer step), an integer :math:`N` (the steps :math:`x` with
            :math:`x \bmod N = 0`, as Keras' ``TensorBoard(update_freq=N)`` picks its batches) or
            ``"epoch"`` (the first optimizer step of each epoch). Only the logged steps (and a histogram
            epoch's first step) pay for the copy of the weights; every batch reads ``iterations`` (one scalar).
        histogram_freq: write the histograms every this many epochs; 0 (default) writes none.

    Every Keras backend. The weights are copied and the update norms computed on the device by two
    module-level functions that every monitor shares, compiled as the backend compiles (``tf.function``
    on TensorFlow: traced once per list of variable shapes, so new models and fits trace nothing new and
    never trigger TensorFlow's retracing warning; ``jax.jit`` on JAX; eager on PyTorch). On JAX each
    batch's callbacks read the model through ``self.model``, which makes Keras' JAX trainer attach its
    state to the variables (``jax_state_sync``), as Keras' own callbacks do. The event files are written
    by ``tf.summary`` on TensorFlow (whatever ``tf.summary.record_if`` condition another callback has
    set) and by the ``tensorboard`` package elsewhere, without TensorFlow (``_events``); where neither
    is installed, construction raises ``ImportError``.
    """

    def __init__(self, log_dir, update_freq="batch", histogram_freq=0):
        super().__init__()
        self.log_dir = _check_log_dir(log_dir)
        self.update_freq = _check_update_freq(update_freq)
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, numbers.Integral) \
                or histogram_freq < 0:
            V._fail("histogram_freq", histogram_freq, "an integer >= 0")
        self.histogram_freq = int(histogram_freq)
        self._writer_class = E.writer_class(keras.backend.backend())
        self._writers = {}
        self._snapshot = None
        self._step = 0
        self._epoch_pending = self._histogram_epoch = False
        self._updates = None

    # -- wiring ---------------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        outer = self.model.optimizer
        inner = outer.inner_optimizer if isinstance(outer, keras.optimizers.LossScaleOptimizer) else outer
        if not hasattr(type(inner), "gradient_norm"):
            raise ValueError("OptimizerMonitor logs `optimizer.gradient_norm`, which keras_optreg's optimizers "
                             "record: wrap any other optimizer as keras_optreg.callbacks.GradientNormOptimizer("
                             f"optimizer). Received: optimizer={inner!r}")
        if getattr(inner, "track_gradient_norm", True) is False:
            raise ValueError("OptimizerMonitor logs `optimizer.gradient_norm`, which this optimizer does not record: "
                             "construct it with `track_gradient_norm=True` (the default). Received: "
                             f"{type(inner).__name__}(track_gradient_norm=False)")
        self._optimizer, self._inner = outer, inner
        # read when written (both are created when the optimizer is built, which may be its first step)
        self._scales = isinstance(outer, keras.optimizers.LossScaleOptimizer)
        self._skips = getattr(inner, "nonfinite", None) == "skip"
        self._variables = list(self.model.trainable_variables)
        self._steps_per_execution = self.model.steps_per_execution
        self._step = self._iterations()
        self._snapshot = None

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers, self._snapshot = {}, None

    def _writer(self, run):
        """The run's writer, created at its first write (a fit without validation makes no validation run)."""
        if run not in self._writers:
            self._writers[run] = self._writer_class(os.path.join(self.log_dir, run))
        return self._writers[run]

    def _iterations(self):
        # read through `self.model`: on JAX that attaches the trainer's state to the variables (jax_state_sync)
        return int(ops.convert_to_numpy(self.model.optimizer.iterations))

    def _due(self, start, end):
        """Whether a step in (start, end] is logged."""
        if self.update_freq == "epoch":
            return self._epoch_pending and end > start
        n = 1 if self.update_freq == "batch" else self.update_freq
        return end // n > start // n

    # -- per batch --------------------------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_pending = True
        self._updates = None
        self._histogram_epoch = bool(self.histogram_freq) and epoch % self.histogram_freq == 0

    def _wants_updates(self):
        """A histogram epoch whose update histogram is still to be taken (from its first optimizer step)."""
        return self._histogram_epoch and self._updates is None

    def on_train_batch_begin(self, batch, logs=None):
        start = self._step
        if not (self._due(start, start + self._steps_per_execution) or self._wants_updates()):
            return
        optimizer = self.model.optimizer  # through `self.model`: on JAX the state is attached, as in _iterations
        lr = _float(optimizer.learning_rate)
        scale = None
        if self._scales:  # what LossScaleOptimizer.scale_loss multiplies this step's loss by
            scale = _float(optimizer.dynamic_scale) if optimizer.built else optimizer.initial_scale
        if self._snapshot is not None and self._snapshot.start == start:
            # no optimizer step since the snapshot (gradient accumulation, an overflow the loss scale skipped):
            # the weights are those of the snapshot; the rate and scale are read again for the step to come
            self._snapshot.learning_rate, self._snapshot.loss_scale = lr, scale
            return
        self._snapshot = _Snapshot(start, _copy([v.value for v in self._variables]), lr, scale)

    def on_train_batch_end(self, batch, logs=None):
        end = self._iterations()
        start, self._step = self._step, end
        snap = self._snapshot
        if snap is None or end == start:
            return
        self._snapshot = None
        due = self._due(start, end)
        if not (due or self._wants_updates()):
            return
        deltas, squares, old_squares = _update_stats([v.value for v in self._variables], snap.weights) \
            if self._variables else ([], [], [])
        if self._wants_updates():
            self._updates = [ops.convert_to_numpy(d) for d in deltas]
        if due:
            self._write_step(end, snap, np.array([_float(q) for q in squares]),
                             np.array([_float(q) for q in old_squares]))
            self._epoch_pending = False

    def _write_step(self, step, snap, squares, old_squares):
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero variable: inf, or NaN if unchanged
            ratios = np.sqrt(squares) / np.sqrt(old_squares)
        scalars = {"optimizer/learning_rate": snap.learning_rate,
                   "optimizer/gradient_norm": _float(self._inner.gradient_norm)}
        scalars |= {f"optimizer/update_ratio/{v.path}": r for v, r in zip(self._variables, ratios, strict=True)}
        scalars["optimizer/update_norm"] = np.sqrt(squares.sum()) if squares.size else np.nan
        if snap.loss_scale is not None:
            scalars["optimizer/loss_scale"] = snap.loss_scale
        if self._skips:
            scalars["optimizer/skipped_steps"] = _float(self._inner.skipped_steps)
        self._writer("train").write(step, scalars)

    # -- per epoch --------------------------------------------------------------------------------
    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {f"epoch_{k}": float(v) for k, v in logs.items() if not k.startswith("val_")}
        val = {f"epoch_{k[len('val_'):]}": float(v) for k, v in logs.items() if k.startswith("val_")}
        if "loss" in logs and "val_loss" in logs:
            val["epoch_gap"] = float(logs["val_loss"]) - float(logs["loss"])
        histograms = {}
        if self._histogram_epoch:
            histograms = {f"weights/{v.path}": ops.convert_to_numpy(v) for v in self._variables}
            histograms |= {f"updates/{v.path}": d for v, d in zip(self._variables, self._updates or (), strict=False)}
        self._writer("train").write(epoch, train, histograms)
        if val:
            self._writer("validation").write(epoch, val)

    def get_config(self):
        return {"log_dir": self.log_dir, "update_freq": self.update_freq, "histogram_freq": self.histogram_freq}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
