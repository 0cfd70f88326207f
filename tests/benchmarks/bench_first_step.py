"""The first-step tax and the steady step of real models: keras_optreg.Adam against keras.optimizers.Adam.

Every measurement runs in a fresh process (fresh Python, TensorFlow and XLA caches): build the model,
``compile(optimizer, jit_compile=...)``, time the first ``fit`` of one batch (tracing, XLA compilation and one
step: what a user waits for), then time ``--steps`` further ``train_on_batch`` calls for the steady step. The
two optimizers alternate, process by process (interleaved), and the table reports medians over ``--repeats``.
The child runs with ``TF_CPP_VMODULE=device_compiler=2``: the sum of the compilation times XLA logs during the
first fit is the table's "XLA compile" (the part of the first fit that is compile, much less noisy than the fit).

Models (nothing downloads):

* ``resnet50``: ``keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=10)``, batch 8;
* ``transformer``: token and position embeddings (vocabulary 1000, 64 tokens, width 128), two blocks of
  ``MultiHeadAttention(4 heads, key_dim 32)`` + ``LayerNormalization`` + a 256-wide feed-forward, mean
  pooling and a 10-way classifier, batch 8.

Run ``python -m tests.benchmarks.bench_first_step [--models resnet50 transformer] [--modes graph xla]
[--repeats 3] [--steps 10]`` from the repository root; it prints a Markdown table. Targets (issue 17):
first fit at most 0.3 s slower than Keras' Adam, steady step at most 0.9x Keras in graph mode and 1.0x
under XLA. No timed assertions anywhere: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

MODELS = ("resnet50", "transformer")
MODES = ("graph", "xla")
OPTIMIZERS = ("keras_optreg", "keras")
BATCH = 8
#: TensorFlow's log line for each XLA compilation (``TF_CPP_VMODULE=device_compiler=2``), with its microseconds
XLA_COMPILE_LINE = re.compile(r"Compilation of XLA executable time: [^(]*\((\d+) us\)")
#: the child's line on stderr after its first ``fit`` (``train_on_batch`` then compiles a train function of its own)
FIRST_FIT_DONE = "bench_first_step: first fit done"


def _model(name):
    import keras

    if name == "resnet50":
        model = keras.applications.ResNet50(weights=None, input_shape=(64, 64, 3), classes=10)
        return model, (BATCH, 64, 64, 3), "float32"
    vocab, tokens, width = 1000, 64, 128
    inp = keras.Input((tokens,), dtype="int32")
    h = keras.layers.Embedding(vocab, width)(inp)
    positions = keras.ops.arange(tokens)
    h = h + keras.layers.Embedding(tokens, width)(positions)
    for _ in range(2):
        a = keras.layers.MultiHeadAttention(num_heads=4, key_dim=32)(h, h)
        h = keras.layers.LayerNormalization()(h + a)
        f = keras.layers.Dense(2 * width, activation="relu")(h)
        h = keras.layers.LayerNormalization()(h + keras.layers.Dense(width)(f))
    out = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling1D()(h))
    return keras.Model(inp, out), (BATCH, tokens), "int32"


def child(model_name, optimizer, mode, steps, untracked=False):
    """One measurement in this (fresh) process; returns a dict of seconds."""
    import keras
    import numpy as np

    import keras_optreg

    keras.utils.set_random_seed(0)
    model, shape, dtype = _model(model_name)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1000, size=shape).astype(dtype) if dtype == "int32" else rng.normal(size=shape).astype(dtype)
    y = rng.integers(0, 10, size=(BATCH,))
    opt = (keras_optreg.Adam(1e-3, track_gradient_norm=not untracked) if optimizer == "keras_optreg"
           else keras.optimizers.Adam(1e-3))
    model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=mode == "xla")
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    first = time.perf_counter() - t0
    print(FIRST_FIT_DONE, file=sys.stderr, flush=True)  # the XLA compilations logged before it are the first fit's
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t0)
    return {"first_fit_s": first, "steady_step_s": statistics.median(times),
            "variables": len(model.trainable_variables),
            "distinct_shapes": len({tuple(v.shape) for v in model.trainable_variables})}


def _run_child(model_name, optimizer, mode, steps, untracked=False):
    # XLA's own log of each compilation's time: the part of the first fit that is compile, not tracing or running
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0", TF_CPP_VMODULE="device_compiler=2")
    cmd = [sys.executable, "-m", "tests.benchmarks.bench_first_step", "--child", model_name, optimizer, mode,
           "--steps", str(steps)] + (["--untracked"] if untracked else [])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    first_fit_log = done.stderr.split(FIRST_FIT_DONE)[0]
    result["xla_compile_s"] = sum(int(us) for us in XLA_COMPILE_LINE.findall(first_fit_log)) * 1e-6
    return result


def bench(models=MODELS, modes=MODES, repeats=3, steps=10, untracked=False):
    """{(model, mode, optimizer): [child results]}, the optimizers alternating process by process."""
    results = {}
    for model_name in models:
        for mode in modes:
            for _ in range(repeats):
                for optimizer in OPTIMIZERS:
                    results.setdefault((model_name, mode, optimizer), []).append(
                        _run_child(model_name, optimizer, mode, steps, untracked))
    return results


def table(results, repeats):
    lines = [f"fresh process per measurement, optimizers interleaved, medians of {repeats}; XLA compile: the sum of "
             "XLA's compilation times during the first fit, from its log",
             "| model | mode | first fit keras_optreg s | first fit keras s | difference s "
             "| XLA compile keras_optreg s | XLA compile keras s | steady keras_optreg ms | steady keras ms "
             "| steady ratio |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(m, mode) for m, mode, _ in results}, key=lambda k: (MODELS.index(k[0]), MODES.index(k[1])))
    for m, mode in keys:
        med = {o: {k: statistics.median(r[k] for r in results[(m, mode, o)])
                   for k in ("first_fit_s", "steady_step_s", "xla_compile_s")} for o in OPTIMIZERS}
        ours, theirs = med["keras_optreg"], med["keras"]
        lines.append(f"| {m} | {mode} | {ours['first_fit_s']:.2f} | {theirs['first_fit_s']:.2f} "
                     f"| {ours['first_fit_s'] - theirs['first_fit_s']:+.2f} | {ours['xla_compile_s']:.2f} "
                     f"| {theirs['xla_compile_s']:.2f} | {ours['steady_step_s'] * 1e3:.1f} "
                     f"| {theirs['steady_step_s'] * 1e3:.1f} | {ours['steady_step_s'] / theirs['steady_step_s']:.2f} |")
    return "\n".join(lines)


def test_bench_first_step():
    models = os.environ.get("BENCH_MODELS", "transformer").split(",")
    results = bench(models=models, repeats=1, steps=3)
    print("\n" + table(results, 1))
    assert results
    for (_, mode, _), (result,) in results.items():  # the log is read: an XLA fit compiles, a graph-mode Adam fit not
        assert (result["xla_compile_s"] > 0) == (mode == "xla"), (mode, result)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "OPTIMIZER", "MODE"))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--untracked", action="store_true",
                        help="keras_optreg.Adam(track_gradient_norm=False): the first-step cost of the norm")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, steps=args.steps, untracked=args.untracked)))
    else:
        print(table(bench(args.models, args.modes, args.repeats, args.steps, args.untracked), args.repeats))
