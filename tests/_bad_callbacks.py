"""Bad-input rows: OptimizerMonitor and GradientNormOptimizer (construction; the monitor's optimizer at fit)."""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile

import keras
import numpy as np

import keras_optreg
from keras_optreg.callbacks import GradientNormOptimizer, OptimizerMonitor
from tests.badinput import Case

NAN = float("nan")


def _in_tmp(make):
    """``make(folder)`` with a fresh folder holding a file ``f``."""
    with tempfile.TemporaryDirectory() as tmp:
        pathlib.Path(tmp, "f").write_text("a file")
        return make(tmp)


def _fit_with(optimizer):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    with tempfile.TemporaryDirectory() as tmp:
        model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0, callbacks=[OptimizerMonitor(tmp)])


def _without_writers():
    """OptimizerMonitor where neither the tensorboard package nor TensorFlow can be imported (None in sys.modules)."""
    names = ("tensorboard", "tensorboard.compat.proto.summary_pb2", "tensorflow")
    saved = {m: sys.modules[m] for m in names if m in sys.modules}
    sys.modules.update(dict.fromkeys(names))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return OptimizerMonitor(tmp)
    finally:
        for m in names:
            del sys.modules[m]
        sys.modules.update(saved)


def _accepted(monitor):
    assert isinstance(monitor, OptimizerMonitor) and monitor.log_dir == os.fspath(monitor.log_dir)


CASES = [
    Case("callbacks/monitor-log_dir-empty", lambda: OptimizerMonitor(""), ValueError, ("log_dir", "''")),
    Case("callbacks/monitor-log_dir-none", lambda: OptimizerMonitor(None), TypeError, ("log_dir", "None")),
    Case("callbacks/monitor-log_dir-int", lambda: OptimizerMonitor(3), TypeError, ("log_dir", "3")),
    Case("callbacks/monitor-log_dir-existing-file", lambda: _in_tmp(lambda t: OptimizerMonitor(os.path.join(t, "f"))),
         ValueError, ("log_dir", "is an existing file"), keras="(issue 13: accepted until fit)"),
    Case("callbacks/monitor-log_dir-below-a-file",
         lambda: _in_tmp(lambda t: OptimizerMonitor(os.path.join(t, "f", "runs"))), ValueError,
         ("log_dir", "/f/runs", "is an existing file")),
    Case("callbacks/monitor-log_dir-pathlike-to-create",
         lambda: _in_tmp(lambda t: OptimizerMonitor(pathlib.Path(t, "new", "runs"))), None, check=_accepted),
    Case("callbacks/monitor-update_freq-zero", lambda: OptimizerMonitor("x", update_freq=0), ValueError,
         ("update_freq", "update_freq=0")),
    Case("callbacks/monitor-update_freq-negative", lambda: OptimizerMonitor("x", update_freq=-3), ValueError,
         ("update_freq", "update_freq=-3")),
    Case("callbacks/monitor-update_freq-unknown-word", lambda: OptimizerMonitor("x", update_freq="step"),
         ValueError, ("update_freq", "'step'")),
    Case("callbacks/monitor-update_freq-bool", lambda: OptimizerMonitor("x", update_freq=True), ValueError,
         ("update_freq", "True")),
    Case("callbacks/monitor-update_freq-float", lambda: OptimizerMonitor("x", update_freq=2.5), ValueError,
         ("update_freq", "2.5")),
    Case("callbacks/monitor-update_freq-nan", lambda: OptimizerMonitor("x", update_freq=NAN), ValueError,
         ("update_freq", "nan")),
    Case("callbacks/monitor-histogram_freq-negative", lambda: OptimizerMonitor("x", histogram_freq=-1), ValueError,
         ("histogram_freq", "-1")),
    Case("callbacks/monitor-histogram_freq-bool", lambda: OptimizerMonitor("x", histogram_freq=True), ValueError,
         ("histogram_freq", "True")),
    Case("callbacks/monitor-histogram_freq-float", lambda: OptimizerMonitor("x", histogram_freq=1.5), ValueError,
         ("histogram_freq", "1.5")),
    Case("callbacks/monitor-without-tensorboard-or-tensorflow", _without_writers, ImportError,
         ("pip install tensorboard", "TensorFlow", "KERAS_BACKEND=")),
    Case("callbacks/monitor-keras-optimizer-without-gradient_norm", lambda: _fit_with(keras.optimizers.Adam()),
         ValueError, ("GradientNormOptimizer", "optimizer=")),
    Case("callbacks/wrapper-inner-a-string", lambda: GradientNormOptimizer("adam"), TypeError,
         ("inner_optimizer", "'adam'")),
    Case("callbacks/wrapper-inner-none", lambda: GradientNormOptimizer(None), TypeError, ("inner_optimizer", "None")),
    Case("callbacks/wrapper-inner-loss-scale-optimizer",
         lambda: GradientNormOptimizer(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD())), ValueError,
         ("inner_optimizer", "LossScaleOptimizer(GradientNormOptimizer(opt))")),
    Case("callbacks/wrapper-inner-records-its-own-norm", lambda: GradientNormOptimizer(keras_optreg.Adam()),
         ValueError, ("inner_optimizer", "records `gradient_norm` itself")),
    Case("callbacks/wrapper-twice", lambda: GradientNormOptimizer(GradientNormOptimizer(keras.optimizers.SGD())),
         ValueError, ("inner_optimizer", "records `gradient_norm` itself")),
    Case("callbacks/wrapper-inner-accumulates-gradients",
         lambda: GradientNormOptimizer(keras.optimizers.SGD(gradient_accumulation_steps=2)), ValueError,
         ("inner_optimizer", "gradient_accumulation_steps=2")),
    Case("callbacks/wrapper-unknown-keyword", lambda: GradientNormOptimizer(keras.optimizers.SGD(), clipnorm=1.0),
         TypeError, ("clipnorm",)),
]
