"""Read TensorBoard event files back with TensorBoard's own readers: its event-file loader (each event as
written) and its multiplexer (what its server loads). Neither needs TensorFlow (where it is installed,
TensorBoard's loader uses its record reader, imported when a file is read, not by this module)."""

from __future__ import annotations

import pathlib

import numpy as np
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.util import tensor_util


def _events(log_dir):
    for path in sorted(pathlib.Path(log_dir).rglob("events.out.tfevents.*")):
        yield from event_file_loader.LegacyEventFileLoader(str(path)).Load()


def histograms(log_dir):
    """Every histogram under ``log_dir``: ``[(tag, step, [(left, right, count), ...]), ...]``, in the order written."""
    return [(v.tag, event.step, [tuple(row) for row in tensor_util.make_ndarray(v.tensor)])
            for event in _events(log_dir) for v in event.summary.value
            if v.metadata.plugin_data.plugin_name == "histograms"]


def read_points(log_dir):
    """Every scalar under ``log_dir`` (recursively) as ``{tag: [(step, value), ...]}``, in the order written."""
    out = {}
    for event in _events(log_dir):
        for value in event.summary.value:
            if value.HasField("tensor"):
                arr = tensor_util.make_ndarray(value.tensor)
                if arr.ndim == 0 and arr.dtype.kind in "fiub":  # not the model config Keras writes as a string
                    out.setdefault(value.tag, []).append((event.step, float(arr)))
            elif value.HasField("simple_value"):
                out.setdefault(value.tag, []).append((event.step, float(value.simple_value)))
    return out


def read_scalars(log_dir):
    """``{tag: {step: float}}``; a step written twice for one tag fails the read (AssertionError)."""
    out = {}
    for tag, points in read_points(log_dir).items():
        steps = [s for s, _ in points]
        assert len(steps) == len(set(steps)), f"{tag}: steps written twice: {sorted(steps)}"
        out[tag] = dict(points)
    return out


def read_tags(log_dir):
    """Every tag (scalars, histograms, ...) under ``log_dir``."""
    return {v.tag for event in _events(log_dir) for v in event.summary.value}


def read_with_tensorboard(log_dir):
    """The runs under ``log_dir`` as TensorBoard's server loads them (``plugin_event_multiplexer``, the reader behind
    its HTTP API): ``{run: {tag: (plugin name, {step: value})}}``, a scalar's value a float, a histogram's its
    (buckets, 3) array of (left edge, right edge, count)."""
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem

    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(log_dir))
    mux.Reload()
    out = {}
    for run, content in mux.Runs().items():
        tags = {}
        for tag in content["tensors"]:
            plugin = mux.SummaryMetadata(run, tag).plugin_data.plugin_name
            tags[tag] = (plugin, {e.step: (float(tensor_util.make_ndarray(e.tensor_proto)) if plugin == "scalars"
                                           else tensor_util.make_ndarray(e.tensor_proto))
                                  for e in mux.Tensors(run, tag)})
        out[run] = tags
    return out


def as_array(series):
    steps = sorted(series)
    return np.array(steps), np.array([series[s] for s in steps])
