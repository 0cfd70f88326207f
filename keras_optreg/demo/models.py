"""The demo's small CNN and its variants, every regularizer from keras_optreg.

Every layer has a fixed name (``conv1``, ``bn1``, ``dense``, ``logits``, ...), the same in every
experiment, so the variables' paths (``conv1/kernel``) and the monitor's tags built from them
(``optimizer/update_ratio/conv1/kernel``) are too: TensorBoard draws one chart per variable with one
line per experiment. The random layers take the seeds ``seed + 0`` ... ``seed + SEED_OFFSETS - 1``.
"""

from __future__ import annotations

import keras

from keras_optreg import _validation as V
from keras_optreg import layers as L
from keras_optreg import regularizers as R

SEED_OFFSETS = 6  # the random layers' seeds: seed + 0 .. seed + 5
MAX_SEED = 2 ** 31 - SEED_OFFSETS  # keras_optreg's layers take seeds in [0, 2**31)


def check_seed(seed):
    """``seed`` as an int in [0, MAX_SEED], so that every derived layer seed is in [0, 2**31)."""
    seed = V.seed("seed", seed)
    if seed is None or not 0 <= seed <= MAX_SEED:
        V._fail("seed", seed, f"an int in [0, {MAX_SEED}] (the layers' seeds are seed + 0..{SEED_OFFSETS - 1}, "
                "each below 2**31)")
    return seed


def augmentation(image_size, seed):
    """Input noise, random crop (after a 1-pixel pad), horizontal flip and rotation (GBC16 7.4)."""
    h, w = image_size
    pad = max(1, h // 8)
    return [L.InputNoise(0.05, seed=seed, name="noise"), keras.layers.ZeroPadding2D(pad, name="pad"),
            L.RandomCrop(h, w, seed=seed + 1, name="crop"), L.RandomFlip(seed=seed + 2, name="flip"),
            L.RandomRotation(max_angle_degrees=10.0, seed=seed + 3, name="rotation")]


def build_cnn(input_shape, classes=10, *, augment=False, dropout=0.0, batchnorm=False, regularizer=None, seed=0):
    """Conv(32)-Conv(64)-MaxPool-Dense(128)-Dense(classes) logits, with the chosen regularizers."""
    seed = check_seed(seed)
    inp = keras.Input(input_shape, name="image")
    h = inp
    if augment:
        for layer in augmentation(input_shape[:2], seed):
            h = layer(h)
    for i, filters in enumerate((32, 64), start=1):
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not batchnorm, kernel_regularizer=regularizer,
                                name=f"conv{i}")(h)
        if batchnorm:
            h = L.BatchNormalization(momentum=0.9, name=f"bn{i}")(h)  # 7 steps per epoch: 0.99 leaves stale stats
        h = keras.layers.ReLU(name=f"relu{i}")(h)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    if dropout:
        h = L.Dropout(dropout, seed=seed + 4, name="dropout1")(h)
    h = keras.layers.Dense(128, activation="relu", kernel_regularizer=regularizer, name="dense")(h)
    if dropout:
        h = L.Dropout(dropout, seed=seed + 5, name="dropout2")(h)
    out = keras.layers.Dense(classes, kernel_regularizer=regularizer, name="logits")(h)
    return keras.Model(inp, out, name="cnn")


def regularizer(name, strength):
    return {"weightnorm": R.WeightNorm, "tikhonov": R.Tikhonov}[name](strength)
