"""Step time of ``apply`` for keras_optreg vs the Keras built-ins, same process, interleaved, medians.

Run: ``tox -e bench`` (pytest collects ``bench_*.py``) or directly
``python -m tests.benchmarks.bench_optimizers --sizes 1e6 1e7 5e7`` from the repository root. BENCH_SIZES (comma
separated) sets the sizes under pytest. Memory traffic per parameter and step, float32:
Adam reads g, theta, s, r and writes theta, s, r (28 bytes); momentum SGD and RMSprop read g,
theta, one slot and write theta and the slot (20 bytes); recording ``gradient_norm`` reads g once
more (4 bytes), which the ``track_gradient_norm=False`` column leaves out. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import keras
import tensorflow as tf

import keras_optreg

PAIRS = {
    "SGD(momentum=0.9)": (20, lambda **k: keras_optreg.SGD(0.01, momentum=0.9, **k),
                          lambda: keras.optimizers.SGD(0.01, momentum=0.9)),
    "RMSprop": (20, lambda **k: keras_optreg.RMSprop(0.001, **k), lambda: keras.optimizers.RMSprop(0.001)),
    "Adam": (28, lambda **k: keras_optreg.Adam(0.001, **k), lambda: keras.optimizers.Adam(0.001)),
}


def _stepper(opt, n_params, mode, n_vars=10):
    size = n_params // n_vars
    vs = [keras.Variable(tf.zeros((size,))) for _ in range(n_vars)]
    grads = [tf.fill((size,), 1e-3) for _ in range(n_vars)]
    opt.build(vs)

    def step():
        opt.apply(grads, vs)

    fn = step if mode == "eager" else tf.function(step, jit_compile=mode == "xla")
    for _ in range(2):  # trace / compile, warm caches
        fn()
    return fn


def _time(fn, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def _interleaved_medians(fns, n_params, repeats):
    """Median step time of each ``fns`` entry, the entries timed in turn ``repeats`` times."""
    steps = max(1, int(2e7 // n_params))
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(_time(fn, steps))
    return {k: statistics.median(v) for k, v in times.items()}


def bench(sizes, modes=("eager", "graph", "xla"), repeats=7, skip_variant=True):
    rows = []
    for name, (bpp, ours, theirs) in PAIRS.items():
        for n in sizes:
            for mode in modes:
                candidates = {"keras_optreg": ours(), "keras": theirs(),
                              "keras_optreg untracked": ours(track_gradient_norm=False)}
                if skip_variant and name == "Adam":
                    candidates["keras_optreg skip"] = ours(nonfinite="skip")
                fns = {k: _stepper(o, n, mode) for k, o in candidates.items()}
                rows.append((name, n, mode, _interleaved_medians(fns, n, repeats), bpp))
                del fns, candidates
    return rows


def table(rows):
    lines = ["| optimizer | params | mode | keras_optreg ms | keras ms | ratio | keras_optreg GB/s | keras GB/s "
             "| skip ms (ratio to propagate) | track_gradient_norm=False ms (ratio to keras) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, n, mode, med, bpp in rows:
        ours, theirs = med["keras_optreg"], med["keras"]
        skip = med.get("keras_optreg skip")
        skip_s = f"{skip * 1e3:.2f} ({skip / ours:.2f}x)" if skip else "-"
        untracked = med["keras_optreg untracked"]
        lines.append(f"| {name} | {n:.0e} | {mode} | {ours * 1e3:.2f} | {theirs * 1e3:.2f} | {ours / theirs:.2f} "
                     f"| {bpp * n / ours / 1e9:.1f} | {bpp * n / theirs / 1e9:.1f} | {skip_s} "
                     f"| {untracked * 1e3:.2f} ({untracked / theirs:.2f}) |")
    return "\n".join(lines)


def _torch_stepper(n_params, n_vars=10, **adam_kwargs):
    import torch

    size = n_params // n_vars
    params = [torch.zeros(size, requires_grad=True) for _ in range(n_vars)]
    for q in params:
        q.grad = torch.full((size,), 1e-3)
    opt = torch.optim.Adam(params, lr=0.001, **adam_kwargs)
    for _ in range(2):
        opt.step()
    return opt.step


def bench_torch(sizes, repeats=7, names=tuple(PAIRS)):
    """Each optimizer of ``names`` (keras_optreg and Keras, graph and XLA) against PyTorch's fused CPU Adam, the
    throughput reference of issue 17, in GB/s at the optimizer's own bytes per parameter; same process,
    interleaved, medians. ``torch fused`` is timed beside every row, so each row's ratio compares
    measurements taken together.

    Needs ``torch`` importable (not a dependency of this project). PyTorch's fused CPU kernel
    parallelises over its intra-op threads (``torch.get_num_threads()``).
    """
    import torch

    rows = []
    for name in names:
        bpp, ours, theirs = PAIRS[name]
        for n in sizes:
            fns = {"keras_optreg graph": _stepper(ours(), n, "graph"), "keras_optreg xla": _stepper(ours(), n, "xla"),
                   "keras graph": _stepper(theirs(), n, "graph"), "keras xla": _stepper(theirs(), n, "xla"),
                   "torch fused Adam": _torch_stepper(n, fused=True)}
            rows.append((name, bpp, n, _interleaved_medians(fns, n, repeats)))
            del fns
    header = list(rows[0][3])
    lines = [f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; ms (GB/s at the optimizer's "
             f"bytes per parameter; torch fused Adam at 28), medians of {repeats}, interleaved; the last two columns: "
             "keras_optreg's GB/s over torch fused Adam's",
             "| optimizer | params | " + " | ".join(header) + " | graph / torch | xla / torch |",
             "|---|---|" + "---|" * (len(header) + 2)]
    for name, bpp, n, med in rows:
        rate = {k: (28 if k.startswith("torch") else bpp) * n / med[k] / 1e9 for k in header}
        ref = rate["torch fused Adam"]
        lines.append(f"| {name} | {n:.0e} | " + " | ".join(f"{med[k] * 1e3:.2f} ({rate[k]:.1f})" for k in header)
                     + f" | {rate['keras_optreg graph'] / ref:.2f} | {rate['keras_optreg xla'] / ref:.2f} |")
    return "\n".join(lines)


def test_bench_optimizers_step_time():
    sizes = [int(float(s)) for s in os.environ.get("BENCH_SIZES", "1e6,1e7").split(",")]
    rows = bench(sizes)
    print("\n" + table(rows))
    assert rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["1e6", "1e7"])
    parser.add_argument("--modes", nargs="+", default=["eager", "graph", "xla"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--torch", action="store_true",
                        help="graph and XLA against torch.optim.Adam(fused=True), the throughput reference")
    parser.add_argument("--optimizers", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes]
    if args.torch:
        print(bench_torch(sizes, args.repeats, tuple(args.optimizers)))
    else:
        print(table(bench(sizes, tuple(args.modes), args.repeats)))
