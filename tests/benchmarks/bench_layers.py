"""Per-layer step time, keras_optreg.layers vs keras.layers, same process, interleaved, medians.

Run: ``python -m tests.benchmarks.bench_layers`` (prints a Markdown table) or
``python -m pytest -q -s -o python_files=bench_*.py tests/benchmarks``. No timed assertions: the
numbers depend on the machine (and on a shared one are noisy). The Dropout row also reports the
memory floor, ``x * 1.0001`` under XLA on the same 2M elements, and Dropout's ratio to it.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_optreg import layers as L  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "15"))


def _fn(layer, jit):
    if layer is None:
        return None
    return tf.function(lambda t: layer(t, training=True), jit_compile=jit)


def _time(fn, x):
    t0 = time.perf_counter()
    np.asarray(fn(x))  # forces the result
    return time.perf_counter() - t0


def _prepare(fn, x):
    try:
        _time(fn, x), _time(fn, x)
        return fn
    except Exception as e:  # noqa: BLE001  e.g. Keras' RandomRotation under XLA
        return f"fails: {type(e).__name__}"


def cases():
    img = tf.constant(np.random.default_rng(0).normal(size=(128, 32, 32, 3)).astype(np.float32))
    big = tf.constant(np.random.default_rng(0).normal(size=(2 * 1024 * 1024,)).astype(np.float32))
    return [
        ("Dropout(0.5), 2M", big, lambda: L.Dropout(0.5, seed=0), lambda: keras.layers.Dropout(0.5, seed=0)),
        ("Dropout(0.5)", img, lambda: L.Dropout(0.5, seed=0), lambda: keras.layers.Dropout(0.5, seed=0)),
        ("BatchNormalization", img, L.BatchNormalization, keras.layers.BatchNormalization),
        ("RandomFlip", img, lambda: L.RandomFlip(seed=0), lambda: keras.layers.RandomFlip("horizontal", seed=0)),
        ("InputNoise / GaussianNoise(0.1)", img, lambda: L.InputNoise(0.1, seed=0),
         lambda: keras.layers.GaussianNoise(0.1, seed=0)),
        ("RandomCrop(28, 28)", img, lambda: L.RandomCrop(28, 28, seed=0),
         lambda: keras.layers.RandomCrop(28, 28, seed=0)),
        ("RandomRotation(18 deg)", img, lambda: L.RandomRotation(max_angle_degrees=18, seed=0),
         lambda: keras.layers.RandomRotation(0.05, seed=0)),
    ]


def run(reps=REPS):
    rows = []
    floor_fn = tf.function(lambda t: t * 1.0001, jit_compile=True)
    for name, x, ours, theirs in cases():
        for jit in (False, True):
            fns = {"ours": _prepare(_fn(ours(), jit), x), "keras": _prepare(_fn(theirs(), jit), x)}
            if name.endswith("2M") and jit:
                fns["floor"] = _prepare(floor_fn, x)
            times = {k: [] for k, f in fns.items() if callable(f)}
            for _ in range(reps):  # interleaved
                for k in times:
                    times[k].append(_time(fns[k], x))
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            cell = {k: (f"{med[k]:.2f}" if k in med else fns[k]) for k in fns}
            extra = ""
            if "floor" in med:
                extra = f"floor {med['floor']:.2f} ms; ours/floor = {med['ours'] / med['floor']:.1f}x"
                if "keras" in med:
                    extra += f", keras/floor = {med['keras'] / med['floor']:.0f}x"
            rows.append((name, "XLA" if jit else "tf.function", cell["ours"], cell["keras"], extra))
    lines = ["| layer | mode | keras_optreg ms | keras ms | note |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    table = "\n".join(lines)
    print(f"\n{tf.__version__=} {keras.__version__=}, {reps} interleaved reps, medians\n{table}")
    return table


def test_bench_layers():
    run()


def _cnn(lib, rotation):
    aug = [lib.RandomFlip(seed=0) if lib is L else keras.layers.RandomFlip("horizontal", seed=0)]
    if rotation:
        aug.append(L.RandomRotation(max_angle_degrees=18, seed=0) if lib is L
                   else keras.layers.RandomRotation(0.05, seed=0))
    body = []
    for filters in (16, 32, 64):
        body += [keras.layers.Conv2D(filters, 3, padding="same", use_bias=False), lib.BatchNormalization(),
                 keras.layers.ReLU(), keras.layers.MaxPooling2D()]
    drop = L.Dropout(0.5, seed=0) if lib is L else keras.layers.Dropout(0.5, seed=0)
    model = keras.Sequential([keras.Input((32, 32, 3)), *aug, *body, keras.layers.Flatten(), drop,
                              keras.layers.Dense(10)])
    return model


def run_cnn(reps=REPS):
    """Train-step time of the small CNN (flip, rotation, Conv-BN-ReLU x3, Dropout, Adam)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, size=(128,))
    variants = {}
    for lib_name, lib in (("keras_optreg", L), ("keras", keras.layers)):
        for jit in (False, True):
            model = _cnn(lib, rotation=True)
            model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          jit_compile=jit)
            try:
                model.train_on_batch(x, y), model.train_on_batch(x, y)
                variants[(lib_name, jit)] = model
            except Exception as e:  # noqa: BLE001
                variants[(lib_name, jit)] = f"fails: {type(e).__name__}"
    times = {k: [] for k, v in variants.items() if not isinstance(v, str)}
    for _ in range(reps):
        for k in times:
            t0 = time.perf_counter()
            variants[k].train_on_batch(x, y)
            times[k].append(time.perf_counter() - t0)
    lines = ["| CNN train step | jit_compile | ms (median) |", "|---|---|---|"]
    for (lib_name, jit), v in variants.items():
        cell = v if isinstance(v, str) else f"{statistics.median(times[(lib_name, jit)]) * 1e3:.1f}"
        effective = "" if isinstance(v, str) or v.jit_compile == jit else f" (Keras fell back to {v.jit_compile})"
        lines.append(f"| {lib_name} | {jit}{effective} | {cell} |")
    table = "\n".join(lines)
    print(f"\nbatch 128x32x32x3, {reps} interleaved reps\n{table}")
    return table


def test_bench_cnn_step():
    run_cnn()


if __name__ == "__main__":
    run()
    run_cnn()
