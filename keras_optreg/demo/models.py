"""The demo's small CNN and its variants, every regularizer from keras_optreg."""

from __future__ import annotations

import keras

from keras_optreg import layers as L
from keras_optreg import regularizers as R


def augmentation(image_size, seed):
    """Input noise, random crop (after a 1-pixel pad), horizontal flip and rotation (GBC16 7.4)."""
    h, w = image_size
    pad = max(1, h // 8)
    return [L.InputNoise(0.05, seed=seed), keras.layers.ZeroPadding2D(pad), L.RandomCrop(h, w, seed=seed + 1),
            L.RandomFlip(seed=seed + 2), L.RandomRotation(max_angle_degrees=10.0, seed=seed + 3)]


def build_cnn(input_shape, classes=10, *, augment=False, dropout=0.0, batchnorm=False, regularizer=None, seed=0):
    """Conv(32)-Conv(64)-MaxPool-Dense(128)-Dense(classes) logits, with the chosen regularizers."""
    inp = keras.Input(input_shape)
    h = inp
    if augment:
        for layer in augmentation(input_shape[:2], seed):
            h = layer(h)
    for filters in (32, 64):
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=not batchnorm, kernel_regularizer=regularizer)(h)
        if batchnorm:
            h = L.BatchNormalization(momentum=0.9)(h)  # 7 steps per epoch: 0.99 leaves stale moving stats
        h = keras.layers.ReLU()(h)
    h = keras.layers.MaxPooling2D(2)(h)
    h = keras.layers.Flatten()(h)
    if dropout:
        h = L.Dropout(dropout, seed=seed + 4)(h)
    h = keras.layers.Dense(128, activation="relu", kernel_regularizer=regularizer)(h)
    if dropout:
        h = L.Dropout(dropout, seed=seed + 5)(h)
    out = keras.layers.Dense(classes, kernel_regularizer=regularizer)(h)
    return keras.Model(inp, out)


def regularizer(name, strength):
    return {"weightnorm": R.WeightNorm, "tikhonov": R.Tikhonov}[name](strength)
