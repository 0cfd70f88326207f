"""``python -m keras_optreg.demo --quick``, end to end: the results table, the PNG and the event files.

One subprocess run (module-scoped fixture) serves every check; its wall time is printed, never
asserted (speed is for benchmarks). The demo needs matplotlib and scikit-learn (the "test" extra).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_optreg.demo.experiments import EXPERIMENTS
from keras_optreg.demo.report import COLUMNS
from tests.events import read_scalars, read_tags

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "keras_optreg.demo", "--quick", "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    print(f"\npython -m keras_optreg.demo --quick: {time.perf_counter() - start:.1f} s wall")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


def _table(stdout):
    lines = [ln for ln in stdout.splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[1:]]
    return header, rows


def test_demo_quick_prints_one_row_per_experiment(quick_run):
    _, stdout = quick_run
    header, rows = _table(stdout)
    assert tuple(header) == COLUMNS
    assert [r[0] for r in rows] == list(EXPERIMENTS)
    for r in rows:
        acc, i_star, gap, epochs, wall = float(r[1]), int(r[2]), float(r[3]), int(r[4]), float(r[5])
        assert 0.0 <= acc <= 1.0 and 1 <= i_star <= epochs and wall > 0.0 and gap == gap, r
    # the baseline learns something: better than chance on 10 classes
    assert float(rows[0][1]) > 0.2


def test_demo_quick_writes_the_loss_figure(quick_run):
    out, stdout = quick_run
    png = out / "loss_curves.png"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert str(png) in stdout
    assert (out / "results.md").read_text().splitlines()[2].startswith("| baseline |")


def test_demo_quick_writes_event_files_per_experiment(quick_run):
    out, stdout = quick_run
    _, rows = _table(stdout)
    epochs = {r[0]: int(r[4]) for r in rows}
    for name in EXPERIMENTS:
        scalars = read_scalars(out / "runs" / name)
        for tag in ("optimizer/learning_rate", "optimizer/grad_norm", "optimizer/update_norm",
                    "epoch/loss", "epoch/val_loss", "epoch/val_accuracy", "epoch/gap"):
            assert tag in scalars, (name, tag)
        # the demo's optimizers cannot skip (nonfinite="propagate"): they have no skipped_steps to write
        assert "optimizer/skipped_steps" not in scalars, name
        assert sorted(scalars["epoch/loss"]) == list(range(epochs[name])), name
        assert any(t.startswith("optimizer/update_ratio/") for t in read_tags(out / "runs" / name)), name
        # LinearDecay: the logged per-batch rate never increases
        lr = [scalars["optimizer/learning_rate"][k] for k in sorted(scalars["optimizer/learning_rate"])]
        assert np.all(np.diff(lr) <= 0) and lr[-1] < lr[0], name


def test_demo_rejects_bad_arguments_without_training():
    from keras_optreg.demo import data

    with pytest.raises(ValueError, match="data_path=None"):
        data.load("mnist", None)
    with pytest.raises(ValueError, match="data_path='/nonexistent.npz'"):
        data.load("mnist", "/nonexistent.npz")


def test_demo_loads_a_local_mnist_npz_in_keras_format(tmp_path):
    """The mnist path reads Keras' mnist.npz keys from a local file (here a synthetic one), scaled to [0, 1]."""
    from keras_optreg.demo import data

    rng = np.random.default_rng(0)
    arrays = {f"x_{s}": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for s, n in (("train", 30), ("test", 20))}
    arrays |= {f"y_{s}": rng.integers(0, 10, n, dtype=np.uint8) for s, n in (("train", 30), ("test", 20))}
    np.savez(tmp_path / "mnist.npz", **arrays)
    (x, y), (xv, yv) = data.load_mnist(str(tmp_path / "mnist.npz"), n_train=25, n_val=15)
    assert x.shape == (25, 28, 28, 1) and xv.shape == (15, 28, 28, 1) and y.shape == (25,) and yv.shape == (15,)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    everything = np.concatenate([arrays["x_train"], arrays["x_test"]]).astype(np.float32) / 255.0
    # every image is one of the file's, with its own label
    labels = np.concatenate([arrays["y_train"], arrays["y_test"]])
    for img, label in zip(x[:5, ..., 0], y[:5], strict=True):
        idx = int(np.flatnonzero((everything == img).all(axis=(1, 2)))[0])
        assert labels[idx] == label
