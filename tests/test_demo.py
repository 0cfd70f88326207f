"""``python -m keras_optreg.demo --quick``, end to end: the results table, the PNG and the event files.

One subprocess run (module-scoped fixture) serves every check of its output; its wall time is printed,
never asserted (speed is for benchmarks). It runs on the suite's backend, chosen the way a user
chooses it in ``~/.keras/keras.json`` (``KERAS_HOME``, no ``KERAS_BACKEND``: issue 16, the demo forced
TensorFlow): every experiment with ``--quick`` on TensorFlow; on JAX and PyTorch the smallest run
that logs a per-step point (``--quick --experiments baseline``: 2 epochs of 7 steps, the monitor
every 10th step, the histograms and the report; the other experiments' layers are the layers' tests'
subject). The demo needs matplotlib and
scikit-learn (in the "test" extra). The command line's bad inputs are rows of ``tests/_bad_demo.py``.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_optreg.demo import cli, data
from keras_optreg.demo.experiments import EXPERIMENTS, MONITOR_FREQ
from keras_optreg.demo.report import COLUMNS
from tests.backend import BACKEND, TENSORFLOW
from tests.events import read_with_tensorboard

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), MPLBACKEND="Agg")
RUN = list(EXPERIMENTS) if TENSORFLOW else ["baseline"]
ARGS = ["--quick"] if TENSORFLOW else ["--quick", "--experiments", *RUN]
BASE_VARIABLES = {f"{layer}/{w}" for layer in ("conv1", "conv2", "dense", "logits") for w in ("kernel", "bias")}
BATCHNORM_VARIABLES = {"conv1/kernel", "conv2/kernel", "bn1/gamma", "bn1/beta", "bn2/gamma", "bn2/beta",
                       "dense/kernel", "dense/bias", "logits/kernel", "logits/bias"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    home = tmp_path_factory.mktemp("keras_home")
    (home / "keras.json").write_text(json.dumps({"backend": BACKEND}))
    env = {k: v for k, v in ENV.items() if k != "KERAS_BACKEND"} | {"KERAS_HOME": str(home)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "keras_optreg.demo", *ARGS, "--out", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    print(f"\npython -m keras_optreg.demo --quick: {time.perf_counter() - start:.1f} s wall")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout, proc.stderr


def _table(stdout):
    lines = [ln for ln in stdout.splitlines() if ln.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[1:]]
    return header, rows


def test_demo_runs_on_the_backend_keras_json_names(quick_run):
    """Issue 16: the demo set KERAS_BACKEND=tensorflow itself; now Keras' own choice holds (here keras.json's)."""
    _, stdout, _ = quick_run
    assert stdout.splitlines()[0] == f"Keras backend: {BACKEND}"


def test_demo_quick_prints_one_row_per_experiment(quick_run):
    _, stdout, _ = quick_run
    header, rows = _table(stdout)
    assert tuple(header) == COLUMNS
    assert [r[0] for r in rows] == RUN
    for r in rows:
        acc, i_star, gap, epochs, wall = float(r[1]), int(r[2]), float(r[3]), int(r[4]), float(r[5])
        assert 0.0 <= acc <= 1.0 and 1 <= i_star <= epochs and wall > 0.0 and gap == gap, r
    # the baseline learns something: better than chance on 10 classes
    assert float(rows[0][1]) > 0.2


def test_demo_quick_writes_the_loss_figure(quick_run):
    out, stdout, _ = quick_run
    png = out / "loss_curves.png"
    data_ = png.read_bytes()
    assert data_[:8] == b"\x89PNG\r\n\x1a\n" and len(data_) > 1000
    assert str(png) in stdout
    assert (out / "results.md").read_text().splitlines()[2].startswith("| baseline |")


def test_demo_prints_no_tf_function_retracing_warning(quick_run):
    """Issue 14: four "triggered tf.function retracing" warnings came from OptimizerMonitor."""
    _, stdout, stderr = quick_run
    assert "retracing" not in stdout + stderr


def test_demo_event_files_read_by_tensorboard(quick_run):
    """TensorBoard's own reader: runs <experiment>/train and <experiment>/validation; stable tags (one chart per
    variable across experiments); per-step points every MONITOR_FREQ optimizer steps; Keras' epoch tags in both
    runs; the gap; weight and update histograms; no skipped_steps (no experiment skips)."""
    out, stdout, _ = quick_run
    _, rows = _table(stdout)
    epochs = {r[0]: int(r[4]) for r in rows}
    runs = read_with_tensorboard(out / "runs")
    assert set(runs) == {f"{name}/{run}" for name in RUN for run in ("train", "validation")}
    steps_per_epoch = -(-200 // 32)  # 200 training images, batch 32
    ratio_tags = set()
    for name in RUN:
        train, val = runs[f"{name}/train"], runs[f"{name}/validation"]
        variables = BATCHNORM_VARIABLES if name == "batchnorm" else BASE_VARIABLES
        logged = [x for x in range(1, epochs[name] * steps_per_epoch + 1) if x % MONITOR_FREQ == 0]
        per_step = {"optimizer/learning_rate", "optimizer/gradient_norm", "optimizer/update_norm"}
        per_step |= {f"optimizer/update_ratio/{v}" for v in variables}
        for tag in per_step:
            plugin, series = train[tag]
            assert plugin == "scalars" and sorted(series) == logged, (name, tag, sorted(series))
        ratio_tags |= {t for t in train if t.startswith("optimizer/update_ratio/")}
        assert not any(t.startswith("optimizer/skipped_steps") or t.startswith("optimizer/loss_scale") for t in train)
        for tag in ("epoch_loss", "epoch_accuracy"):
            assert sorted(train[tag][1]) == sorted(val[tag][1]) == list(range(epochs[name])), (name, tag)
        assert sorted(val["epoch_gap"][1]) == list(range(epochs[name]))
        for v in variables:
            for kind in ("weights", "updates"):
                plugin, series = train[f"{kind}/{v}"]
                assert plugin == "histograms" and sorted(series) == [0], (name, kind, v)  # histogram_freq 5
        _, weights = train["weights/dense/kernel"]
        assert weights[0][:, 2].sum() == 4 * 4 * 64 * 128  # every weight of dense/kernel in the buckets
        # LinearDecay: the logged rate never increases
        lr = [train["optimizer/learning_rate"][1][k] for k in logged]
        assert np.all(np.diff(lr) <= 0), name
    want = BASE_VARIABLES | (BATCHNORM_VARIABLES if "batchnorm" in RUN else set())
    assert ratio_tags == {f"optimizer/update_ratio/{v}" for v in want}


def _hide(*modules):
    hide = "; ".join(f"sys.modules[{m!r}] = None" for m in modules)
    return f"import runpy, sys; {hide}; runpy.run_module('keras_optreg.demo', run_name='__main__', alter_sys=True)"


def test_demo_without_the_examples_extra_says_so_in_one_line(tmp_path):
    """Issue 14: a raw ModuleNotFoundError traceback; now one line naming the extra and exit code 2 (the modules
    hidden in a subprocess as an environment without them would lack them)."""
    proc = subprocess.run([sys.executable, "-c", _hide("sklearn", "matplotlib"), "--out", str(tmp_path / "o")],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("python -m keras_optreg.demo")]
    assert lines == proc.stderr.strip().splitlines()[-1:] and len(lines) == 1, proc.stderr
    assert "[examples]" in lines[0] and "matplotlib" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_demo_without_scikit_learn_names_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    assert cli.main(["--quick", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[examples]" in err[0] and "sklearn" in err[0]


def test_demo_seed_too_large_for_the_layers_is_refused_by_the_command_line(tmp_path):
    """Issue 13: ``--seed 2147483647`` was reported from inside a layer as seed=2147483648 (a traceback)."""
    proc = subprocess.run([sys.executable, "-m", "keras_optreg.demo", "--seed", "2147483647", "--out",
                           str(tmp_path)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m keras_optreg.demo: error: argument --seed") and "--seed=2147483647" in last


def test_demo_label_noise_changes_exactly_the_chosen_labels_to_other_classes():
    y = np.tile(np.arange(10, dtype=np.int32), 20)
    noisy, changed = data.add_label_noise(y, 0.2, seed=3)
    assert len(changed) == 40 and np.all(noisy[changed] != y[changed])  # round(0.2 * 200), never the true class
    keep = np.setdiff1d(np.arange(len(y)), changed)
    np.testing.assert_array_equal(noisy[keep], y[keep])
    assert noisy.min() >= 0 and noisy.max() < 10
    again, _ = data.add_label_noise(y, 0.2, seed=3)
    np.testing.assert_array_equal(noisy, again)  # deterministic per seed
    np.testing.assert_array_equal(data.add_label_noise(y, 0.0, seed=3)[0], y)


def test_demo_loads_a_local_mnist_npz_in_keras_format(tmp_path):
    """The mnist path reads Keras' mnist.npz keys from a local file (here a synthetic one), scaled to [0, 1]."""
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
