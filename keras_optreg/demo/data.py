"""Data sets that need no download: scikit-learn's 8x8 digits, or a local ``mnist.npz`` (Keras' format)."""

from __future__ import annotations

import os

import numpy as np


def _split(x, y, n_train, n_val, seed):
    order = np.random.default_rng(seed).permutation(len(x))
    train, val = order[:n_train], order[n_train:n_train + n_val]
    return (x[train], y[train]), (x[val], y[val])


def load_digits(n_train=200, n_val=500, seed=0):
    """scikit-learn's bundled digits (1797 images, 8x8, values 0..16) scaled to [0, 1], shape (n, 8, 8, 1).

    A small training set (``n_train`` of 1797) so that the baseline CNN overfits within a minute.
    """
    from sklearn.datasets import load_digits as _load  # bundled with scikit-learn: no download

    bunch = _load()
    x = (bunch.images.astype("float32") / 16.0)[..., None]
    return _split(x, bunch.target.astype("int32"), n_train, n_val, seed)


def load_mnist(path, n_train=2000, n_val=2000, seed=0):
    """A local ``mnist.npz`` as written by ``keras.datasets.mnist`` (x_train, y_train, ...), scaled to [0, 1]."""
    if not os.path.isfile(path):
        raise ValueError(f"Argument `data_path` must be an existing mnist.npz file. Received: data_path={path!r}")
    with np.load(path) as f:
        x = np.concatenate([f["x_train"], f["x_test"]]).astype("float32") / 255.0
        y = np.concatenate([f["y_train"], f["y_test"]]).astype("int32")
    return _split(x[..., None], y, n_train, n_val, seed)


def load(dataset, data_path=None, quick=False, seed=0):
    if dataset == "digits":
        return load_digits(n_train=200, n_val=500 if not quick else 100, seed=seed)
    if dataset == "mnist":
        if data_path is None:
            raise ValueError("Argument `data_path` is required with --dataset mnist (nothing is downloaded). "
                             "Received: data_path=None")
        return load_mnist(data_path, n_train=2000 if not quick else 500, n_val=2000 if not quick else 500,
                          seed=seed)
    raise ValueError(f"Argument `dataset` must be one of ('digits', 'mnist'). Received: dataset={dataset!r}")
