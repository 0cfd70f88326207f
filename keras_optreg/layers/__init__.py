r"""Regularisation layers of the lecture: Dropout, BatchNormalization (eq. 20) and augmentation.

Each is a drop-in for its Keras twin (same signature, weights and dtype behaviour, masks passed
through), except where its docstring names a deviation and the equation or source behind it.
Every random layer keeps its random state in a ``keras.random.SeedGenerator`` that is saved with the
layer (``keras_optreg.layers._seeded``); its draws come from ``keras_optreg._random``.

Modules: ``dropout`` (Dropout, InputNoise), ``batchnorm`` (BatchNormalization), ``images``
(RandomFlip, RandomCrop, RandomRotation), ``_seeded`` (the random state).
"""

from keras_optreg.layers.batchnorm import BatchNormalization
from keras_optreg.layers.dropout import Dropout, InputNoise
from keras_optreg.layers.images import RandomCrop, RandomFlip, RandomRotation

__all__ = ["BatchNormalization", "Dropout", "InputNoise", "RandomCrop", "RandomFlip", "RandomRotation"]
