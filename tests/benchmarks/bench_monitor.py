"""OptimizerMonitor's and GradientNormOptimizer's overhead on the demo's train step, against the same fit without.

Run: ``python -m tests.benchmarks.bench_monitor`` (prints two Markdown tables). The demo's baseline CNN
(8x8x1 inputs, batch 32) fits one epoch of ``STEPS`` steps per repetition; the configurations are
interleaved within each repetition. The step time is the mean interval between consecutive
``on_train_batch_end`` calls after ``WARMUP`` steps; the figure is the median over repetitions.

1. The monitor (keras_optreg's Adam with LinearDecay, which records its gradient norm itself): no
   monitor, ``update_freq`` 50, 10 and ``"batch"``, ``histogram_freq=1`` (one histogram epoch per fit).
2. The wrapper: Keras' Adam against ``GradientNormOptimizer(keras.optimizers.Adam())``, no monitor, so
   the ratio is the cost of the norm inside the train step alone.

No timed assertions: on a shared machine the numbers are noisy.
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
from keras_optreg.callbacks import GradientNormOptimizer, OptimizerMonitor  # noqa: E402
from keras_optreg.demo.models import build_cnn  # noqa: E402

REPS = int(os.environ.get("BENCH_REPS", "7"))
STEPS, WARMUP, BATCH = 150, 10, 32


class _StepTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    def step_s(self):
        return float(np.mean(np.diff(self.ends[WARMUP:])))


def _model(optimizer):
    keras.utils.set_random_seed(0)
    model = build_cnn((8, 8, 1), 10)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _interleaved(fits, reps):
    """``fits``: name -> callable(rep) returning a step time; medians over ``reps`` interleaved repetitions."""
    times = {name: [] for name in fits}
    for rep in range(reps):
        for name, fit in fits.items():
            times[name].append(fit(rep))
    return {name: statistics.median(t) for name, t in times.items()}


def run(reps=REPS):
    rng = np.random.default_rng(0)
    x = rng.random((STEPS * BATCH, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, STEPS * BATCH).astype("int32")
    print(f"keras {keras.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {reps} interleaved reps, "
          f"{STEPS} steps of batch {BATCH}, medians")
    model = _model(keras_optreg.Adam(keras_optreg.LinearDecay(1e-3, 1e-4, 10 * STEPS)))
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # trace once
    configs = {"no monitor": None, "update_freq=50": 50, "update_freq=10": 10, 'update_freq="batch"': "batch",
               'update_freq=10, histogram_freq=1': (10, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        def fit_monitor(name):
            def fit(rep):
                timer, freq = _StepTimer(), configs[name]
                callbacks = [timer]
                if freq is not None:
                    update, hist = freq if isinstance(freq, tuple) else (freq, 0)
                    callbacks.insert(0, OptimizerMonitor(os.path.join(tmp, f"{rep}-{len(name)}-{update}"),
                                                         update_freq=update, histogram_freq=hist))
                model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=callbacks)
                return timer.step_s()
            return fit

        monitor = _interleaved({name: fit_monitor(name) for name in configs}, reps)
    base = monitor["no monitor"]
    print("| configuration | step ms | ratio to no monitor |")
    print("|---|---|---|")
    for name, med in monitor.items():
        print(f"| {name} | {1e3 * med:.2f} | {med / base:.3f} |")

    wrapped = GradientNormOptimizer(keras.optimizers.Adam(1e-3))
    models = {"keras.optimizers.Adam": _model(keras.optimizers.Adam(1e-3)),
              "GradientNormOptimizer(keras.optimizers.Adam)": _model(wrapped)}
    for m in models.values():
        m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)  # trace once

    def fit_model(m):
        def fit(rep):
            timer = _StepTimer()
            m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
            return timer.step_s()
        return fit

    wrapper = _interleaved({name: fit_model(m) for name, m in models.items()}, reps)
    base = wrapper["keras.optimizers.Adam"]
    print("\n| optimizer | step ms | ratio to Keras' Adam |")
    print("|---|---|---|")
    for name, med in wrapper.items():
        print(f"| {name} | {1e3 * med:.2f} | {med / base:.3f} |")
    return monitor, wrapper


def test_bench_monitor_overhead():
    run(reps=3)


if __name__ == "__main__":
    run()
