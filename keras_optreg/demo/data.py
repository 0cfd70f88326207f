"""Data sets that need no download: scikit-learn's 8x8 digits, or a local ``mnist.npz`` (Keras' format).

Every loader returns ``(x_train, y_train), (x_val, y_val)``: float32 images in [0, 1] of shape
(n, height, width, 1) and int32 labels in [0, 10). ``load`` also replaces a fraction of the
*training* labels by wrong ones (:func:`add_label_noise`; the validation labels stay clean).
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

CLASSES = 10
MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _split(x, y, n_train, n_val, seed):
    order = np.random.default_rng(seed).permutation(len(x))
    train, val = order[:n_train], order[n_train:n_train + n_val]
    return (x[train], y[train]), (x[val], y[val])


def _need(name, available, n_train, n_val, path=None):
    if n_train + n_val > available:
        where = f" in {path!r}" if path else ""
        raise ValueError(f"{name} holds {available} images{where}, fewer than the {n_train} training + {n_val} "
                         f"validation images the demo takes. Received: data_path={path!r}")


def add_label_noise(y, rate, seed, classes=CLASSES):
    """``round(rate * len(y))`` labels, chosen at random, each replaced by a different class chosen at random.

    Networks fit the clean examples first and memorize the wrong labels later (Arpit et al. 2017,
    "A closer look at memorization in deep networks", sec. 3; Zhang et al. 2017), so the validation
    loss passes a minimum at i* and rises: the overfitting the lecture's figure shows, made plain on
    a data set this small. Returns the new labels and the indices changed.
    """
    if not (0.0 <= rate < 1.0):
        raise ValueError(f"Argument `label_noise` must be in [0, 1). Received: label_noise={rate!r}")
    rng = np.random.default_rng(seed)
    changed = np.sort(rng.choice(len(y), size=int(round(rate * len(y))), replace=False))
    y = np.array(y, copy=True)
    y[changed] = (y[changed] + rng.integers(1, classes, size=len(changed))) % classes  # never the true class
    return y, changed


def load_digits(n_train=200, n_val=500, seed=0):
    """scikit-learn's bundled digits (1797 images, 8x8, values 0..16) scaled to [0, 1], shape (n, 8, 8, 1).

    A small training set (``n_train`` of 1797) so that the baseline CNN overfits within a minute.
    """
    from sklearn.datasets import load_digits as _load  # bundled with scikit-learn: no download

    bunch = _load()
    _need("scikit-learn's digits", len(bunch.images), n_train, n_val)
    x = (bunch.images.astype("float32") / 16.0)[..., None]
    return _split(x, bunch.target.astype("int32"), n_train, n_val, seed)


def _read_npz(path):
    """The four arrays of a Keras-format mnist.npz, every failure a ValueError naming ``data_path``."""
    if not os.path.isfile(path):
        raise ValueError(f"Argument `data_path` must be an existing mnist.npz file. Received: data_path={path!r}")

    def bad(why):
        return ValueError(f"Argument `data_path` must be an .npz archive in Keras' mnist format; {why}. "
                          f"Received: data_path={path!r}")

    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise bad(f"reading it failed ({type(e).__name__}: {e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise bad("it holds one array, not an archive of arrays")
    with archive:
        missing = [k for k in MNIST_KEYS if k not in archive.files]
        if missing:
            raise bad(f"it lacks the keys {missing} (it has {sorted(archive.files)})")
        try:
            return {k: archive[k] for k in MNIST_KEYS}
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
            raise bad(f"reading it failed ({type(e).__name__}: {e})") from None


def _check_mnist(arrays, path):
    def bad(what):
        raise ValueError(f"Argument `data_path` must hold Keras' mnist format: {what}. Received: data_path={path!r}")

    shapes = {k: np.shape(v) for k, v in arrays.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            bad(f"x_{split} of shape (n, height, width) and y_{split} of shape (n,); found {shapes}")
        if not (np.issubdtype(x.dtype, np.number) and np.issubdtype(y.dtype, np.number)) \
                or np.issubdtype(x.dtype, np.complexfloating) or np.issubdtype(y.dtype, np.complexfloating):
            bad(f"numeric arrays; found x_{split} {x.dtype}, y_{split} {y.dtype}")
        if not np.all(np.isfinite(x)):
            bad(f"pixel values in [0, 255]; x_{split} holds non-finite values")
        if x.size and not (x.min() >= 0 and x.max() <= 255):
            bad(f"pixel values in [0, 255]; x_{split} holds values in [{x.min()}, {x.max()}]")
        labels = y.astype(np.float64)
        wrong = labels[~((labels >= 0) & (labels < CLASSES) & (labels == np.round(labels)))]
        if wrong.size:
            bad(f"integer labels in [0, {CLASSES}); y_{split} holds {wrong.size} others, e.g. {wrong[0]:g}")
    if shapes["x_train"][1:] != shapes["x_test"][1:]:
        bad(f"training and test images of one size; found {shapes['x_train'][1:]} and {shapes['x_test'][1:]}")


def load_mnist(path, n_train=2000, n_val=2000, seed=0):
    """A local ``mnist.npz`` as written by ``keras.datasets.mnist`` (x_train, y_train, ...), scaled to [0, 1].

    Checked before anything trains: the four keys, shapes (n, height, width) and (n,), pixel values
    in [0, 255], integer labels in [0, 10), and enough images; a ValueError naming ``data_path`` otherwise.
    """
    arrays = _read_npz(path)
    _check_mnist(arrays, path)
    _need("the file", len(arrays["x_train"]) + len(arrays["x_test"]), n_train, n_val, path)
    x = np.concatenate([arrays["x_train"], arrays["x_test"]]).astype("float32") / 255.0
    y = np.concatenate([arrays["y_train"], arrays["y_test"]]).astype("int32")
    return _split(x[..., None], y, n_train, n_val, seed)


def load(dataset, data_path=None, quick=False, seed=0, label_noise=0.0):
    """The demo's split of ``dataset`` ("digits" or "mnist"), ``label_noise`` of its training labels made wrong."""
    if dataset == "digits":
        train, val = load_digits(n_train=200, n_val=500 if not quick else 100, seed=seed)
    elif dataset == "mnist":
        if data_path is None:
            raise ValueError("Argument `data_path` is required with --dataset mnist (nothing is downloaded). "
                             "Received: data_path=None")
        train, val = load_mnist(data_path, n_train=2000 if not quick else 500, n_val=2000 if not quick else 500,
                                seed=seed)
    else:
        raise ValueError(f"Argument `dataset` must be one of ('digits', 'mnist'). Received: dataset={dataset!r}")
    y, _ = add_label_noise(train[1], label_noise, seed=seed + 1)
    return (train[0], y), val
