"""The named experiments of the demo and how one of them is trained.

Every experiment trains the same CNN on the same split (the same wrong training labels, see
``data.add_label_noise``) with the same seed; each changes one thing against ``baseline`` (Adam with
``LinearDecay``, eq. 6 and eqs. 13-18, no regularization):

* ``early_stopping``: Keras' ``EarlyStopping(monitor="val_loss", restore_best_weights=True)``,
  GBC16 Alg. 7.1; the table reports its best epoch i* (1-based) and the epoch it stopped at.
* ``augmentation``: input noise, random crop, flip and rotation (GBC16 7.4).
* ``dropout``: ``layers.Dropout(0.5)`` before and after the dense layer (Srivastava et al. 2014).
* ``batchnorm``: ``layers.BatchNormalization(momentum=0.9)`` after each convolution (eq. 20).
* ``weightnorm`` / ``tikhonov``: ``regularizers.WeightNorm`` (eq. 19 as printed) / ``Tikhonov``
  (corrected) on every kernel.
* ``sgd`` / ``momentum`` / ``rmsprop``: the optimizer comparison (eqs. 4-5, 7-9, 10-12), each with
  ``LinearDecay`` from its initial rate to a tenth of it over the run; ``baseline`` is the Adam row.
"""

from __future__ import annotations

import dataclasses
import os
import time

import keras

import keras_optreg
from keras_optreg.callbacks import OptimizerMonitor
from keras_optreg.demo import data, models
from keras_optreg.demo.report import best_epoch

BATCH_SIZE = 32
MONITOR_FREQ = 10  # OptimizerMonitor's update_freq: every 10th optimizer step
HISTOGRAM_FREQ = 5  # weight and update histograms every 5th epoch

# name -> (model keyword arguments, optimizer name)
EXPERIMENTS = {
    "baseline": ({}, "adam"),
    "early_stopping": ({}, "adam"),
    "augmentation": ({"augment": True}, "adam"),
    "dropout": ({"dropout": 0.5}, "adam"),
    "batchnorm": ({"batchnorm": True}, "adam"),
    "weightnorm": ({"regularizer": ("weightnorm", 1e-3)}, "adam"),
    "tikhonov": ({"regularizer": ("tikhonov", 1e-3)}, "adam"),
    "sgd": ({}, "sgd"),
    "momentum": ({}, "momentum"),
    "rmsprop": ({}, "rmsprop"),
}
EARLY_STOPPING_PATIENCE = 5


def optimizer(name, total_steps):
    """The optimizer of an experiment, its rate decaying linearly (eq. 6) to a tenth over the run."""
    def decay(lr):
        return keras_optreg.LinearDecay(lr, lr / 10, decay_steps=max(1, total_steps))
    if name == "adam":
        return keras_optreg.Adam(decay(3e-3))
    if name == "sgd":
        return keras_optreg.SGD(decay(0.1))
    if name == "momentum":
        return keras_optreg.SGD(decay(0.01), momentum=0.9)
    if name == "rmsprop":
        return keras_optreg.RMSprop(decay(1e-3))
    raise ValueError(f"Argument `optimizer` must be one of ('adam', 'sgd', 'momentum', 'rmsprop'). "
                     f"Received: optimizer={name!r}")


@dataclasses.dataclass
class Result:
    name: str
    history: dict
    best_val_accuracy: float
    best_epoch: int  # i*: 1-based epoch of the lowest validation loss
    final_gap: float  # val_loss - loss at the last epoch run
    epochs_run: int
    wall_s: float
    note: str = ""


def run(name, train, val, epochs, out_dir, seed=0):
    """Train experiment ``name``; event files go to ``out_dir/runs/name/{train,validation}``."""
    kwargs, opt_name = EXPERIMENTS[name]
    kwargs = dict(kwargs)
    if "regularizer" in kwargs:
        kwargs["regularizer"] = models.regularizer(*kwargs["regularizer"])
    (x, y), (xv, yv) = train, val
    keras.utils.set_random_seed(seed)
    model = models.build_cnn(x.shape[1:], data.CLASSES, seed=seed, **kwargs)
    steps = epochs * -(-len(x) // BATCH_SIZE)
    model.compile(optimizer=optimizer(opt_name, steps), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    callbacks = [OptimizerMonitor(os.path.join(out_dir, "runs", name), update_freq=MONITOR_FREQ,
                                  histogram_freq=HISTOGRAM_FREQ)]
    stopper = None
    if name == "early_stopping":
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", mode="min", patience=EARLY_STOPPING_PATIENCE,
                                                restore_best_weights=True)
        callbacks.append(stopper)
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, validation_data=(xv, yv), verbose=0,
                        callbacks=callbacks).history
    wall = time.perf_counter() - start
    i_star = best_epoch(history["val_loss"])
    note = f"{opt_name}"
    if stopper is not None:
        if stopper.best_epoch + 1 != i_star:  # Keras' best epoch (0-based) is the report's i* (1-based)
            raise RuntimeError(f"Keras' EarlyStopping restored epoch {stopper.best_epoch + 1}, GBC16 Alg. 7.1 "
                               f"gives i*={i_star}: the report would be wrong")
        restored = model.evaluate(xv, yv, verbose=0, return_dict=True)
        stopped = f"stopped after epoch {stopper.stopped_epoch + 1}" if stopper.stopped_epoch else "did not stop"
        note += f"; {stopped}, restored i*={i_star}: val acc {restored['accuracy']:.3f}"
    return Result(name=name, history=history, best_val_accuracy=float(max(history["val_accuracy"])),
                  best_epoch=i_star, final_gap=float(history["val_loss"][-1] - history["loss"][-1]),
                  epochs_run=len(history["loss"]), wall_s=wall, note=note)
