"""TensorBoard event files on every Keras backend: one ``Summary`` protocol buffer per step.

The values of one step (scalars as float32 tensors with the "scalars" plugin's metadata, histograms
as TensorBoard's (buckets, 3) tensors with the "histograms" plugin's) are put into one ``Summary``.
TensorBoard reads them as it reads ``tf.summary.scalar`` and ``tf.summary.histogram``. Two writers:

* :class:`RecordFileWriter` (every backend but TensorFlow, where the ``tensorboard`` package is
  installed): the ``tensorboard`` package's protocol buffers (``tensorboard.compat.proto``) and its
  ``RecordWriter`` (the TFRecord framing with masked CRC32C) over a plain Python file, one file per
  run named as ``tensorboard.summary.writer.event_file_writer`` names its own. Not that
  ``EventFileWriter`` itself: it opens its file through ``tensorboard.compat.tf``, which imports
  TensorFlow whenever TensorFlow is installed, and JAX and PyTorch users should not load it.
  Writes are synchronous (no background thread).
* :class:`SummaryWriter` (the TensorFlow backend, and any backend where only TensorFlow is
  installed): ``tf.summary.experimental.write_raw_pb``, one op per step (an eager
  ``tf.summary.write`` per value costs about a millisecond each), every write under
  ``tf.summary.record_if(True)``: another callback's recording condition (Keras'
  ``TensorBoard(update_freq=N)`` sets a global one for the thread, and leaves it behind when its fit
  crashes) neither suppresses these writes nor is evaluated by them.

Both writers flush after every ``write``: a ``fit`` that crashes (no ``on_train_end``) leaves every
step it wrote readable on disk while the writer is still open. A flush costs less than the
write's own noise (measured: 0.24-0.28 ms per step with or without it, tensorboard writer; 0.8-1.0
ms, tf.summary).

:func:`writer_class` picks one at the monitor's construction; where neither the ``tensorboard``
package nor TensorFlow is importable it raises ``ImportError`` saying what to install.
"""

from __future__ import annotations

import importlib
import itertools
import os
import socket
import time

import numpy as np

HISTOGRAM_BUCKETS = 30  # tensorboard.plugins.histogram.summary_v2's default bucket count
INSTALL = "pip install tensorboard"
_UID = itertools.count()


def _importable(module):
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def writer_class(backend):
    """The writer a monitor uses on ``backend`` (a ``keras.backend.backend()`` name), checked importable now."""
    if backend != "tensorflow" and _importable("tensorboard.compat.proto.summary_pb2"):
        return RecordFileWriter
    if _importable("tensorflow"):
        return SummaryWriter
    raise ImportError("keras_optreg.callbacks.OptimizerMonitor writes TensorBoard event files, which needs the "
                      f"tensorboard package ({INSTALL}) or TensorFlow; neither is importable here. Received: "
                      f"KERAS_BACKEND={backend}")


def histogram_buckets(values, buckets=HISTOGRAM_BUCKETS):
    """TensorBoard's histogram format: a (buckets, 3) float64 array of (left edge, right edge, count).

    Non-finite values are left out of the buckets (``np.histogram`` cannot place them); all-equal
    values give one bucket of zero width, as TensorBoard's own summary does.
    """
    values = np.asarray(values, np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.zeros((0, 3))
    if values.min() == values.max():
        return np.array([[values.min(), values.max(), float(values.size)]])
    counts, edges = np.histogram(values, bins=buckets)
    return np.stack([edges[:-1], edges[1:], counts], axis=1)


def _summary(summary_pb2, make_tensor_proto, scalars, histograms):
    def metadata(plugin):
        return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))

    values = [summary_pb2.Summary.Value(tag=tag, metadata=metadata("scalars"),
                                        tensor=make_tensor_proto(np.float32(value)))
              for tag, value in (scalars or {}).items()]
    values += [summary_pb2.Summary.Value(tag=tag, metadata=metadata("histograms"),
                                         tensor=make_tensor_proto(histogram_buckets(data)))
               for tag, data in (histograms or {}).items()]
    return summary_pb2.Summary(value=values) if values else None


class RecordFileWriter:
    """One run's event file, written with the tensorboard package alone (no TensorFlow)."""

    def __init__(self, log_dir):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
        from tensorboard.util import tensor_util

        self._event_pb2, self._summary_pb2, self._tensor_proto = event_pb2, summary_pb2, tensor_util.make_tensor_proto
        os.makedirs(log_dir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_UID)}"
        self._records = RecordWriter(open(os.path.join(log_dir, name), "wb"))  # noqa: SIM115 (closed in close())
        self._records.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
        self.flush()

    def write(self, step, scalars=None, histograms=None):
        """One event at ``step``: ``scalars`` {tag: number}, ``histograms`` {tag: values}."""
        summary = _summary(self._summary_pb2, self._tensor_proto, scalars, histograms)
        if summary is not None:
            event = self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary)
            self._records.write(event.SerializeToString())
            self.flush()

    def flush(self):
        self._records.flush()

    def close(self):
        if not self._records.closed:
            self._records.close()


class SummaryWriter:
    """One run's event file through ``tf.summary`` (TensorFlow)."""

    def __init__(self, log_dir):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._tf, self._summary_pb2 = tf, summary_pb2
        self._writer = tf.summary.create_file_writer(log_dir)

    def write(self, step, scalars=None, histograms=None):
        """One event at ``step``: ``scalars`` {tag: number}, ``histograms`` {tag: values}."""
        tf = self._tf
        summary = _summary(self._summary_pb2, tf.make_tensor_proto, scalars, histograms)
        if summary is None:
            return
        with self._writer.as_default(step=step), tf.summary.record_if(True):
            tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=step)
        self.flush()

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()
