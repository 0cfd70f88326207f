"""Bad-input rows: the demo's command line (``python -m keras_optreg.demo``) and its data loaders.

A command-line row runs ``cli.main(argv)`` in this process and expects what the real command does
(``tests/test_demo.py`` checks two rows through ``python -m`` too): exit code 2 and one line on stderr,
``python -m keras_optreg.demo: error: ...``, naming the argument and the value, before anything trains.
Files a row needs are written into a fresh temporary folder when the row runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile

import numpy as np

from keras_optreg.demo import cli, data, models
from tests.badinput import Case

PREFIX = "python -m keras_optreg.demo: error: "


def _cli(argv, files=None):
    """``cli.main(argv)`` with ``{dir}`` in argv replaced by a fresh folder holding ``files`` (name -> writer)."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, write in (files or {}).items():
            write(os.path.join(tmp, name))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main([a.replace("{dir}", tmp) for a in argv])
        return code, err.getvalue(), out.getvalue(), tmp


def exits_2(*words):
    def check(result):
        code, err, out, tmp = result
        words_ = [w.replace("{dir}", tmp) for w in words]
        lines = err.strip().splitlines()
        assert code == 2, (code, err, out[-300:])
        assert len(lines) == 1 and lines[0].startswith(PREFIX), err
        missing = [w for w in words_ if w not in lines[0]]
        assert not missing, f"the message lacks {missing}: {lines[0]!r}"
        assert out == "", out  # nothing ran
    return check


def _mnist(n_train=30, n_test=20, **override):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    return lambda path: np.savez(path, **arrays)


def _corrupt(path):
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04 this is no zip archive" * 10)


def _truncated(path):
    _mnist()(path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _text(path):
    with open(path, "w") as f:
        f.write("not an array\n")


MNIST = ["--dataset", "mnist", "--quick", "--data-path", "{dir}/mnist.npz", "--out", "{dir}/out"]
OK_MNIST = {"n_train": 700, "n_test": 300}  # 1000 images: --quick takes 500 + 500

CASES = [
    Case("demo/out-is-an-existing-file", lambda: _cli(["--quick", "--out", "{dir}/f"], {"f": _text}), None,
         check=exits_2("argument --out", "{dir}/f", "is an existing file"),
         keras="(issue 13: a FileExistsError traceback)"),
    Case("demo/out-below-an-existing-file", lambda: _cli(["--quick", "--out", "{dir}/f/sub"], {"f": _text}), None,
         check=exits_2("argument --out", "{dir}/f/sub")),
    Case("demo/seed-too-large-for-the-layers", lambda: _cli(["--quick", "--seed", "2147483647"]), None,
         check=exits_2("argument --seed", "--seed=2147483647", str(models.MAX_SEED)),
         keras="(issue 13: reported from inside a layer as seed=2147483648)"),
    Case("demo/seed-largest-the-layers-take-plus-one", lambda: _cli(["--quick", "--seed", str(models.MAX_SEED + 1)]),
         None, check=exits_2("argument --seed", f"--seed={models.MAX_SEED + 1}")),
    Case("demo/seed-negative", lambda: _cli(["--quick", "--seed", "-1"]), None,
         check=exits_2("argument --seed", "--seed=-1")),
    Case("demo/seed-not-an-int", lambda: _cli(["--quick", "--seed", "1.5"]), None,
         check=exits_2("argument --seed", "'1.5'")),
    Case("demo/epochs-zero", lambda: _cli(["--epochs", "0"]), None, check=exits_2("argument --epochs", "--epochs=0")),
    Case("demo/epochs-not-an-int", lambda: _cli(["--epochs", "ten"]), None,
         check=exits_2("argument --epochs", "'ten'")),
    Case("demo/label-noise-one", lambda: _cli(["--quick", "--label-noise", "1"]), None,
         check=exits_2("argument --label-noise", "--label-noise=1.0")),
    Case("demo/label-noise-nan", lambda: _cli(["--quick", "--label-noise", "nan"]), None,
         check=exits_2("argument --label-noise", "--label-noise=nan")),
    Case("demo/unknown-experiment", lambda: _cli(["--quick", "--experiments", "bogus"]), None,
         check=exits_2("argument --experiments", "'bogus'")),
    Case("demo/data-path-without-mnist", lambda: _cli(["--quick", "--data-path", "x.npz"]), None,
         check=exits_2("argument --data-path", "'x.npz'")),
    Case("demo/mnist-without-data-path", lambda: _cli(["--dataset", "mnist", "--quick"]), None,
         check=exits_2("argument --data-path", "data_path=None")),
    Case("demo/mnist-file-missing", lambda: _cli(MNIST), None,
         check=exits_2("argument --data-path", "{dir}/mnist.npz", "existing")),
    Case("demo/mnist-corrupt-npz", lambda: _cli(MNIST, {"mnist.npz": _corrupt}), None,
         check=exits_2("argument --data-path", "{dir}/mnist.npz", "reading it failed"),
         keras="(issue 13: a BadZipFile traceback)"),
    Case("demo/mnist-truncated-npz", lambda: _cli(MNIST, {"mnist.npz": _truncated}), None,
         check=exits_2("argument --data-path", "{dir}/mnist.npz")),
    Case("demo/mnist-text-file", lambda: _cli(MNIST, {"mnist.npz": _text}), None,
         check=exits_2("argument --data-path", "{dir}/mnist.npz", "reading it failed")),
    Case("demo/mnist-one-array-not-an-archive",
         lambda: _cli(MNIST[:-3] + ["{dir}/m.npy", "--out", "{dir}/out"], {"m.npy": lambda p: np.save(p, np.ones(3))}),
         None, check=exits_2("argument --data-path", "{dir}/m.npy", "one array")),
    Case("demo/mnist-keys-missing", lambda: _cli(MNIST, {"mnist.npz": _mnist(**OK_MNIST, x_test=None, y_test=None)}),
         None, check=exits_2("argument --data-path", "lacks the keys", "x_test", "y_test"),
         keras="(issue 13: a KeyError traceback)"),
    Case("demo/mnist-labels-out-of-range",
         lambda: _cli(MNIST, {"mnist.npz": _mnist(**OK_MNIST, y_train=np.full(700, 200, np.uint8))}), None,
         check=exits_2("argument --data-path", "labels in [0, 10)", "200"),
         keras="(issue 13: trained a 201-class model and exited 0)"),
    Case("demo/mnist-labels-negative",
         lambda: _cli(MNIST, {"mnist.npz": _mnist(**OK_MNIST, y_test=-np.ones(300, np.int64))}), None,
         check=exits_2("argument --data-path", "labels in [0, 10)", "-1")),
    Case("demo/mnist-labels-fractional",
         lambda: _cli(MNIST, {"mnist.npz": _mnist(**OK_MNIST, y_test=np.full(300, 3.5))}), None,
         check=exits_2("argument --data-path", "integer labels", "3.5")),
    Case("demo/mnist-pixels-out-of-range",
         lambda: _cli(MNIST, {"mnist.npz": _mnist(**OK_MNIST, x_test=np.full((300, 28, 28), 300.0))}), None,
         check=exits_2("argument --data-path", "[0, 255]")),
    Case("demo/mnist-pixels-nan",
         lambda: _cli(MNIST, {"mnist.npz": _mnist(**OK_MNIST, x_test=np.full((300, 28, 28), np.nan))}), None,
         check=exits_2("argument --data-path", "non-finite")),
    Case("demo/mnist-labels-fewer-than-images",
         lambda: _cli(MNIST, {"mnist.npz": _mnist(**OK_MNIST, y_train=np.zeros(5, np.uint8))}), None,
         check=exits_2("argument --data-path", "shape (n,)")),
    Case("demo/mnist-images-of-two-sizes",
         lambda: _cli(MNIST, {"mnist.npz": _mnist(**OK_MNIST, x_test=np.zeros((300, 14, 14), np.uint8))}), None,
         check=exits_2("argument --data-path", "one size")),
    Case("demo/mnist-too-few-images", lambda: _cli(MNIST, {"mnist.npz": _mnist()}), None,
         check=exits_2("argument --data-path", "holds 50 images", "500 training + 500 validation")),
    Case("demo/build-cnn-seed-too-large", lambda: models.build_cnn((8, 8, 1), seed=2 ** 31 - 1), ValueError,
         ("seed", "2147483647", str(models.MAX_SEED))),
    Case("demo/label-noise-nan-in-the-api", lambda: data.add_label_noise(np.zeros(3, np.int32), float("nan"), 0),
         ValueError, ("label_noise", "nan")),
]
