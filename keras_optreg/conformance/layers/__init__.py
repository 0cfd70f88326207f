"""Layer rows: batch normalization (eq. 20) by value; the random layers structurally.

Random layers cannot be fed the spec's randomness, so their checks are *structural* and
labelled so: the reference reads the layer's draws from its output (the dropout mask is where the
output is 0, a flip is where the image equals its mirror, a crop offset is where the window
matches) and recomputes the spec's output for those draws; a count of the draws is compared with
its law within 6 standard errors (binomial for masks and flips; mean and variance for noise).
"""

from __future__ import annotations

import importlib.util

from keras_optreg.conformance import engine as E
from keras_optreg.conformance.layers import batchnorm, images, noise
from keras_optreg.conformance.layers.images import crop_runner, flip_runner, rotation_runner
from keras_optreg.conformance.layers.noise import STRUCTURAL, dropout_runner, noise_runner

ROWS = {
    "batchnorm": "eq20 batch normalization, training output (Ioffe & Szegedy Alg. 1)",
    "batchnorm_moving": "eq20 moving statistics, unbiased variance (Ioffe & Szegedy Alg. 2, Keras momentum direction)",
    "dropout": "dropout, inverted (Srivastava et al. 2014)",
    "input_noise": "input noise x + sigma z (GBC16 sec. 7.5)",
    "random_flip": "random left-right flip",
    "random_crop": "random crop (training)",
    "random_rotation": "random rotation (bilinear, constant fill)",
}
SPEC_IDS = {"batchnorm": ("eq20",), "batchnorm_moving": ("eq20",), "dropout": ("dropout",),
            "input_noise": ("input_noise",), "random_flip": ("random_flip",), "random_crop": ("random_crop",),
            "random_rotation": ("random_rotation",)}
KINDS = tuple(ROWS)
MODULES = {"batchnorm": batchnorm, "batchnorm_moving": batchnorm, "dropout": noise, "input_noise": noise,
           "random_flip": images, "random_crop": images, "random_rotation": images}


def _na_libs(kind):
    for lib in ("torch", "optax"):
        if importlib.util.find_spec(lib) is None:
            yield E.na(ROWS[kind], lib, lib, "", status=E.NOT_INSTALLED)
        elif lib == "optax":
            yield E.na(ROWS[kind], lib, lib, "optax has no layers")
        elif kind not in ("batchnorm", "batchnorm_moving"):
            yield E.na(ROWS[kind], lib, lib, "torch is installed but its runner for this row is not written yet")


# ---- eq. (20): batch normalization -----------------------------------------------------------------


def make_check(kind, column, component, run, ours=False):
    """The check of any layer ``run(example)`` against row ``kind``'s spec form (its module's ``spec(kind)``)."""
    return E.Check(row=ROWS[kind], column=column, component=component, run=run, ours=ours, **MODULES[kind].spec(kind))


class _Columns:
    """``check(column, component, run, ours=False)`` for one row; ``.row`` its label."""

    def __init__(self, kind):
        self.kind, self.row = kind, ROWS[kind]

    def __call__(self, column, component, run, ours=False):
        return make_check(self.kind, column, component, run, ours=ours)


def checks(kind):
    """The cells of row ``kind``: (check or ready verdict) per column."""
    yield from MODULES[kind].columns(kind, _Columns(kind))
    yield from _na_libs(kind)


def user_check(kind, factory, component):
    """Row ``kind``'s check of a user's layer ``factory`` (called as the row's module's ``user_runner`` says)."""
    return make_check(kind, "user", component, MODULES[kind].user_runner(kind, factory))


__all__ = ["KINDS", "ROWS", "SPEC_IDS", "STRUCTURAL", "checks", "crop_runner", "dropout_runner", "flip_runner",
           "make_check", "noise_runner", "rotation_runner", "user_check"]
