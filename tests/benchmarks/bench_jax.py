"""JAX backend: keras_optreg against Keras (and optax) under ``jax.jit``, same process, interleaved, medians.

Run: ``python -m tests.benchmarks.bench_jax`` (prints two Markdown tables; ``--sizes 1e6 1e7``,
``--reps 15``, ``--only optimizers|layers``), or through ``tox -e bench``, where ``test_bench_jax``
starts it in a subprocess (the bench process runs the TensorFlow backend; this one needs
``KERAS_BACKEND=jax``, so nothing here imports Keras or JAX at module level). No timed assertions.

Optimizer step, one float32 parameter of n elements and a fixed gradient, each compiled once by
``jax.jit`` with the parameters and state donated (updated in place, as a training step is):
``keras_optreg.Adam`` and ``keras.optimizers.Adam`` through ``optimizer.stateless_apply``,
``optax.adam`` through ``update`` + ``optax.apply_updates``. Random layers: ``layer.stateless_call``
under ``jax.jit`` on a 128x32x32x3 batch, ``training=True``, keras_optreg's layer against Keras'
(``InputNoise`` against ``GaussianNoise``); a layer that cannot run reports why.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time


def _setup():
    os.environ["KERAS_BACKEND"] = "jax"
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError("run as `python -m tests.benchmarks.bench_jax` "
                           f"(Keras already on {keras.backend.backend()})")


def _median_ms(times):
    return statistics.median(times) * 1e3


def _interleave(fns, reps):
    """``fns``: {name: zero-argument callable that runs one step and blocks}; medians in ms."""
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: _median_ms(v) for k, v in times.items()}


def _optimizer_steps(n):
    import jax
    import keras
    import numpy as np
    import optax

    import keras_optreg as ko

    rng = np.random.default_rng(0)
    theta = rng.normal(size=(n,)).astype(np.float32)
    grad = jax.numpy.asarray(rng.normal(size=(n,)).astype(np.float32) * 1e-2)
    steps = {}

    def keras_style(opt):
        var = keras.Variable(theta)
        opt.build([var])
        state = {"params": [var.value], "opt": [v.value for v in opt.variables]}
        step = jax.jit(lambda s, g: dict(zip(("params", "opt"), opt.stateless_apply(s["opt"], g, s["params"]),
                                            strict=True)), donate_argnums=0)
        return step, state

    makers = {"keras_optreg.Adam": lambda: ko.Adam(1e-3),
              "keras_optreg.Adam(track_gradient_norm=False)": lambda: ko.Adam(1e-3, track_gradient_norm=False),
              "keras.optimizers.Adam": lambda: keras.optimizers.Adam(1e-3)}
    for name, make in makers.items():
        try:
            steps[name] = keras_style(make())
        except Exception as e:  # noqa: BLE001  reported in the table, not hidden
            steps[name] = f"fails: {type(e).__name__}: {str(e)[:80]}"
    tx = optax.adam(1e-3)
    params = jax.numpy.asarray(theta)

    def optax_step(s, g):
        updates, opt_state = tx.update(g, s["opt"], s["params"])
        return {"params": optax.apply_updates(s["params"], updates), "opt": opt_state}

    steps["optax.adam"] = (jax.jit(optax_step, donate_argnums=0), {"params": [params], "opt": tx.init([params])})
    return steps, [grad]


def run_optimizers(sizes, reps):
    import jax

    rows = []
    for n in sizes:
        steps, grads = _optimizer_steps(int(n))
        states, fns, cells = {}, {}, {}
        for name, entry in steps.items():
            if isinstance(entry, str):
                cells[name] = entry
                continue
            step, state = entry
            try:
                for _ in range(2):  # compile, then one warm step
                    state = jax.block_until_ready(step(state, grads))
            except Exception as e:  # noqa: BLE001
                cells[name] = f"fails: {type(e).__name__}: {str(e)[:80]}"
                continue
            states[name] = state

            def one(name=name, step=step):
                states[name] = jax.block_until_ready(step(states[name], grads))

            fns[name] = one
        med = _interleave(fns, reps)
        base = med.get("keras.optimizers.Adam")
        for name in steps:
            if name in med:
                ratio = f"{med[name] / base:.2f}" if base else "-"
                gbs = 4 * 7 * int(n) / (med[name] * 1e-3) / 1e9  # read theta, g, s, r; write theta, s, r
                cells[name] = f"{med[name]:.2f} | {ratio} | {gbs:.1f}"
            rows.append(f"| {name} | {float(n):.0e} | {cells[name] if name in cells else '-'} |")
    table = "\n".join(["| step | params | ms | ratio to keras | GB/s at 28 B/param |", "|---|---|---|---|---|", *rows])
    return table


def _layer_cases():
    import keras

    from keras_optreg import layers as L

    return [
        ("Dropout(0.5)", lambda: L.Dropout(0.5, seed=0), lambda: keras.layers.Dropout(0.5, seed=0)),
        ("InputNoise / GaussianNoise(0.1)", lambda: L.InputNoise(0.1, seed=0),
         lambda: keras.layers.GaussianNoise(0.1, seed=0)),
        ("RandomFlip", lambda: L.RandomFlip(seed=0), lambda: keras.layers.RandomFlip("horizontal", seed=0)),
        ("RandomCrop(28, 28)", lambda: L.RandomCrop(28, 28, seed=0), lambda: keras.layers.RandomCrop(28, 28, seed=0)),
        ("RandomRotation(18 deg)", lambda: L.RandomRotation(max_angle_degrees=18, seed=0),
         lambda: keras.layers.RandomRotation(0.05, seed=0)),
        ("BatchNormalization", L.BatchNormalization, keras.layers.BatchNormalization),
    ]


def _layer_fn(make, x):
    """A warm ``jax.jit`` of ``stateless_call`` with its state threaded through, or why it failed."""
    import jax

    try:
        layer = make()
        layer.build(x.shape)
        state = [v.value for v in layer.non_trainable_variables]
        trainable = [v.value for v in layer.trainable_variables]
        step = jax.jit(lambda s, t: layer.stateless_call(trainable, s, t, training=True))
        box = {"state": state}

        def one():
            y, box["state"] = step(box["state"], x)
            jax.block_until_ready(y)

        one(), one()
        return one
    except Exception as e:  # noqa: BLE001  e.g. a layer not available on this backend
        return f"fails: {type(e).__name__}: {str(e)[:60]}"


def run_layers(reps):
    import jax.numpy as jnp
    import numpy as np

    x = jnp.asarray(np.random.default_rng(0).normal(size=(128, 32, 32, 3)).astype(np.float32))
    rows = []
    for name, ours, theirs in _layer_cases():
        fns = {"ours": _layer_fn(ours, x), "keras": _layer_fn(theirs, x)}
        med = _interleave({k: f for k, f in fns.items() if callable(f)}, reps)
        cell = {k: (f"{med[k]:.2f}" if k in med else fns[k]) for k in fns}
        ratio = f"{med['ours'] / med['keras']:.2f}" if len(med) == 2 else "-"
        rows.append(f"| {name} | {cell['ours']} | {cell['keras']} | {ratio} |")
    return "\n".join(["| layer (jax.jit, stateless_call) | keras_optreg ms | keras ms | ratio |", "|---|---|---|---|",
                      *rows])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    parser.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "15")))
    parser.add_argument("--only", choices=("optimizers", "layers"))
    args = parser.parse_args(argv)
    _setup()
    import jax
    import keras

    load = os.getloadavg()
    print(f"jax {jax.__version__}, keras {keras.__version__}, {jax.devices()[0].platform}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f}; {args.reps} interleaved reps, medians")
    if args.only != "layers":
        print(run_optimizers(args.sizes, args.reps))
    if args.only != "optimizers":
        print(run_layers(args.reps))


def test_bench_jax():
    """``tox -e bench``: this benchmark in its own JAX process (skipped where JAX or optax is missing)."""
    import importlib.util

    import pytest

    if not all(importlib.util.find_spec(m) for m in ("jax", "optax")):
        pytest.skip("needs jax and optax (pip install 'jax[cpu]' optax)")
    root = pathlib.Path(__file__).resolve().parents[2]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-m", "tests.benchmarks.bench_jax"], cwd=root, env=env, check=True,
                         capture_output=True, text=True, timeout=1800)
    print(out.stdout)


if __name__ == "__main__":
    main()
