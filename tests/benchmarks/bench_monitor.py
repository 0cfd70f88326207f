"""OptimizerMonitor's overhead on the demo's train step, against the same fit without it.

Run: ``python -m tests.benchmarks.bench_monitor`` (prints a Markdown table). The demo's baseline CNN
(8x8x1 inputs, batch 32, Adam with LinearDecay) fits one epoch of ``STEPS`` steps per repetition;
configurations are interleaved within each repetition. The step time is the mean interval between
consecutive ``on_train_batch_end`` calls after ``WARMUP`` steps (so the per-fit trace of the train
step, which the monitor redoes once per ``fit``, is excluded and reported apart), the figure is the
median over repetitions. No timed assertions: on a shared machine the numbers are noisy.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_optreg  # noqa: E402
from keras_optreg.callbacks import OptimizerMonitor  # noqa: E402
from keras_optreg.demo.models import build_cnn  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "7"))
STEPS, WARMUP, BATCH = 150, 10, 32


class _StepTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = []
        self.begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    def step_s(self):
        return float(np.mean(np.diff(self.ends[WARMUP:])))

    def first_step_s(self):
        return self.ends[0] - self.begin


def run(reps=REPS):
    rng = np.random.default_rng(0)
    x = rng.random((STEPS * BATCH, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, STEPS * BATCH).astype("int32")
    keras.utils.set_random_seed(0)
    model = build_cnn((8, 8, 1), 10)
    model.compile(optimizer=keras_optreg.Adam(keras_optreg.LinearDecay(1e-3, 1e-4, 10 * STEPS)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    configs = {"no monitor": None, "update_freq=50": 50, "update_freq=10": 10, 'update_freq="batch"': "batch"}
    times = {k: [] for k in configs}
    first = {k: [] for k in configs}
    with tempfile.TemporaryDirectory() as tmp:
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # trace once
        for rep in range(reps):
            for name, freq in configs.items():
                timer = _StepTimer()
                callbacks = [timer] if freq is None else [OptimizerMonitor(os.path.join(tmp, f"{rep}{freq}"),
                                                                           update_freq=freq), timer]
                model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
                times[name].append(timer.step_s())
                first[name].append(timer.first_step_s())
    base = statistics.median(times["no monitor"])
    print(f"keras {keras.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {reps} interleaved reps, "
          f"{STEPS} steps of batch {BATCH}, medians")
    print("| configuration | step ms | ratio to no monitor | first step (incl. trace) ms |")
    print("|---|---|---|---|")
    for name in configs:
        med = statistics.median(times[name])
        print(f"| {name} | {1e3 * med:.2f} | {med / base:.3f} | {1e3 * statistics.median(first[name]):.0f} |")
    return {name: statistics.median(t) / base for name, t in times.items()}


def test_bench_monitor_overhead():
    run(reps=3)


if __name__ == "__main__":
    run()
