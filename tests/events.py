"""Read TensorBoard event files back (``tf.compat.v1.train.summary_iterator``): {tag: {step: value}}."""

from __future__ import annotations

import pathlib

import numpy as np
import tensorflow as tf


def read_scalars(log_dir):
    """Every scalar under ``log_dir`` (recursively) as ``{tag: {step: float}}``."""
    out = {}
    for path in sorted(pathlib.Path(log_dir).rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.HasField("tensor"):
                    arr = tf.make_ndarray(value.tensor)
                    if arr.ndim == 0:
                        out.setdefault(value.tag, {})[event.step] = float(arr)
                elif value.HasField("simple_value"):
                    out.setdefault(value.tag, {})[event.step] = float(value.simple_value)
    return out


def read_tags(log_dir):
    """Every tag (scalars, histograms, ...) under ``log_dir``."""
    tags = set()
    for path in pathlib.Path(log_dir).rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(v.tag for v in event.summary.value)
    return tags


def as_array(series):
    steps = sorted(series)
    return np.array(steps), np.array([series[s] for s in steps])
