"""On an NVIDIA GPU: Adam's step and Dropout as a fraction of the device's measured memory bandwidth.

``bash tests/benchmarks/gpu.sh`` (or ``python -m tests.benchmarks.bench_gpu``) from the repository root, on a
machine with a CUDA GPU that TensorFlow sees. It measures, in one process, interleaved, medians:

* the copy bandwidth ceiling: ``b <- a * 1.0001`` over ``--params`` float32 elements under XLA (read 4 + write 4
  bytes per element, STREAM's "scale");
* Adam at ``--params`` float32 parameters (10 variables): keras_optreg.Adam and keras.optimizers.Adam in graph
  and XLA mode, and ``torch.optim.Adam(fused=True)`` on the same device when torch with CUDA is installed; each
  step moves 28 bytes per parameter (read g, theta, s, r; write theta, s, r), reported as GB/s and as a
  percentage of the copy bandwidth (target: 85%);
* Dropout(0.5) in training (keras_optreg and Keras) on the same number of elements under XLA against its floor,
  the scale kernel above (Dropout too reads 4 and writes 4 bytes per element).

Device work is asynchronous: every timed region ends with ``tf.test.experimental.sync_devices()`` (TensorFlow) or
``torch.cuda.synchronize()``. Exit code 2 when no GPU is visible (``--allow-cpu`` runs the same script on the CPU
with a small size, a smoke test of the script itself: its numbers are not the GPU's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_optreg  # noqa: E402

N_VARS = 10
ADAM_BYTES = 28
SCALE_BYTES = 8


def _sync():
    tf.test.experimental.sync_devices()


def _timer(fn, sync, steps):
    def timed():
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        sync()
        return (time.perf_counter() - t0) / steps
    return timed


def _medians(timers, repeats):
    times = {k: [] for k in timers}
    for _ in range(repeats):
        for k, t in timers.items():
            times[k].append(t())
    return {k: statistics.median(v) for k, v in times.items()}


def scale_kernel(n):
    a = tf.Variable(tf.random.uniform((n,)))
    b = tf.Variable(tf.zeros((n,)))

    @tf.function(jit_compile=True)
    def scale():
        b.assign(a * 1.0001)

    scale()
    return scale


def adam_stepper(opt, n, mode):
    size = n // N_VARS
    vs = [keras.Variable(tf.random.uniform((size,))) for _ in range(N_VARS)]
    grads = [tf.random.uniform((size,), -1e-3, 1e-3) for _ in range(N_VARS)]
    opt.build(vs)

    def step():
        opt.apply(grads, vs)

    fn = step if mode == "eager" else tf.function(step, jit_compile=mode == "xla")
    fn(), fn()
    return fn


def torch_adam(n):
    """``torch.optim.Adam(fused=True)`` on CUDA, or None when torch with CUDA is not installed."""
    try:
        import torch
    except ImportError:
        return None, None
    if not torch.cuda.is_available():
        return None, None
    size = n // N_VARS
    params = [torch.rand(size, device="cuda", requires_grad=True) for _ in range(N_VARS)]
    for p in params:
        p.grad = torch.rand(size, device="cuda") * 2e-3 - 1e-3
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    opt.step(), opt.step()
    return opt.step, torch.cuda.synchronize


def dropout_fn(layer, n):
    x = tf.random.uniform((n // 1024, 1024))
    fn = tf.function(lambda: layer(x, training=True), jit_compile=True)
    fn()
    return fn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=float, default=1e8)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--allow-cpu", action="store_true")
    args = parser.parse_args(argv)
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.allow_cpu:
        print("bench_gpu: TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') is empty)", file=sys.stderr)
        return 2
    n = int(args.params) if gpus else min(int(args.params), 10 ** 6)
    device = gpus[0].name if gpus else "CPU (--allow-cpu smoke run, not a GPU figure)"
    timers = {"copy (scale) ceiling": _timer(scale_kernel(n), _sync, args.steps)}
    for mode in ("graph", "xla"):
        timers[f"keras_optreg.Adam {mode}"] = _timer(adam_stepper(keras_optreg.Adam(1e-3), n, mode), _sync, args.steps)
        timers[f"keras.optimizers.Adam {mode}"] = _timer(adam_stepper(keras.optimizers.Adam(1e-3), n, mode), _sync,
                                                         args.steps)
    step, sync = torch_adam(n) if gpus else (None, None)
    if step is not None:
        timers["torch.optim.Adam(fused=True)"] = _timer(step, sync, args.steps)
    timers["keras_optreg.layers.Dropout(0.5) xla"] = _timer(dropout_fn(keras_optreg.layers.Dropout(0.5, seed=0), n),
                                                            _sync, args.steps)
    timers["keras.layers.Dropout(0.5) xla"] = _timer(dropout_fn(keras.layers.Dropout(0.5, seed=0), n), _sync,
                                                     args.steps)
    med = _medians(timers, args.repeats)
    copy_gbs = SCALE_BYTES * n / med["copy (scale) ceiling"] / 1e9
    print(f"{device}; {n:.0e} float32 elements; tensorflow {tf.__version__}, keras {keras.__version__}; "
          f"medians of {args.repeats} x {args.steps} steps, interleaved")
    print("| kernel | ms | GB/s | % of copy bandwidth |")
    print("|---|---|---|---|")
    for k, t in med.items():
        bytes_ = ADAM_BYTES * n if "Adam" in k else SCALE_BYTES * n
        gbs = bytes_ / t / 1e9
        print(f"| {k} | {t * 1e3:.3f} | {gbs:.0f} | {100 * gbs / copy_gbs:.0f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
