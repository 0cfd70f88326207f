r"""The lecture's Adam snippet (eqs. 13-18) with ``keras_optreg.functional`` in a jit-compiled loop.

The four lines of the lecture, in TensorFlow::

    opt = keras_optreg.functional.adam(learning_rate=0.001)
    opt_state = opt.init(weights)
    updates, opt_state = opt.update(grads, opt_state, weights)
    weights = keras_optreg.functional.apply_updates(weights, updates)

Equations shown (corrected form, GBC16 Alg. 8.7 = Kingma & Ba 2015 Alg. 1):

* (13) :math:`g = \frac1m \nabla_\theta \sum_{i=1}^m C(f(x^i; \theta), y^i)` (the minibatch mean,
  erratum E-sum fixed);
* (14) :math:`s \leftarrow \rho_1 s + (1 - \rho_1) g`, (15) :math:`r \leftarrow \rho_2 r + (1 - \rho_2) g \odot g`;
* (16)-(17) :math:`\hat s = s / (1 - \rho_1^t)`, :math:`\hat r = r / (1 - \rho_2^t)` (erratum E-adam: the power t);
* (18) :math:`\theta \leftarrow \theta - \epsilon \hat s / (\sqrt{\hat r} + \delta)`.

A two-layer tanh MLP (weights a dict of tensors, kernels from ``keras_optreg.initializers.GlorotUniform``,
eq. 1) fits a noisy 1-D regression with minibatches of 64. The whole train step (forward, gradient,
``opt.update``, ``apply_updates``) is one ``tf.function(jit_compile=True)``; weights and optimizer
state are plain tensors passed in and out. The gradients of the first steps are recorded and replayed
through :func:`keras_optreg_spec.algorithms.alg_adam_step` in float64: the script prints how far the float32
weights are from the spec's.

Writes ``optax_style_loop.png`` and ``summary.json`` (section ``optax_style_loop``) into ``--out``.
Run from the repository root: ``python examples/optax_style_loop.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_optreg  # noqa: E402
from keras_optreg_spec import algorithms as A  # noqa: E402

LEARNING_RATE = 0.001
HIDDEN = 32
BATCH = 64
REPLAY_STEPS = 20


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, size=(n, 1)).astype("float32")
    y = (np.sin(x) + 0.1 * rng.standard_normal((n, 1))).astype("float32")
    return x, y


def init_weights(seed):
    glorot = keras_optreg.initializers.GlorotUniform
    return {"w1": tf.convert_to_tensor(glorot(seed=seed)((1, HIDDEN))), "b1": tf.zeros((HIDDEN,)),
            "w2": tf.convert_to_tensor(glorot(seed=seed + 1)((HIDDEN, 1))), "b2": tf.zeros((1,))}


def forward(weights, x):
    return tf.tanh(x @ weights["w1"] + weights["b1"]) @ weights["w2"] + weights["b2"]


def mse(weights, x, y):
    return tf.reduce_mean(tf.square(forward(weights, x) - y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a few seconds)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("examples_out"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = 500 if args.quick else 5000

    x_all, y_all = make_data(2048, seed=0)
    weights = init_weights(seed=0)
    weights0 = {k: v.numpy().astype(np.float64) for k, v in weights.items()}

    # ---- the lecture's snippet --------------------------------------------------------------
    opt = keras_optreg.functional.adam(learning_rate=LEARNING_RATE)
    opt_state = opt.init(weights)

    @tf.function(jit_compile=True)
    def train_step(weights, opt_state, x, y):
        with tf.GradientTape() as tape:
            tape.watch(weights)
            loss = mse(weights, x, y)
        grads = tape.gradient(loss, weights)
        updates, opt_state = opt.update(grads, opt_state, weights)
        weights = keras_optreg.functional.apply_updates(weights, updates)
        return weights, opt_state, loss, grads

    rng = np.random.default_rng(1)
    full_loss, recorded = [float(mse(weights, x_all, y_all))], []
    start = time.perf_counter()
    for step in range(steps):
        idx = rng.integers(0, len(x_all), BATCH)
        weights, opt_state, _, grads = train_step(weights, opt_state, x_all[idx], y_all[idx])
        if step < REPLAY_STEPS:
            recorded.append({k: v.numpy().astype(np.float64) for k, v in grads.items()})
            if step == REPLAY_STEPS - 1:
                weights_at_replay = {k: v.numpy().astype(np.float64) for k, v in weights.items()}
        if (step + 1) % max(1, steps // 50) == 0:
            full_loss.append(float(mse(weights, x_all, y_all)))
    seconds = time.perf_counter() - start

    # ---- the same gradients through the float64 spec (GBC16 Alg. 8.7) -------------------------
    deviation = {}
    for name, theta in weights0.items():
        s, r, t = np.zeros_like(theta), np.zeros_like(theta), 0
        for g in recorded:
            theta, s, r, t = A.alg_adam_step(theta, s, r, t, g[name], eps=LEARNING_RATE)
        deviation[name] = float(np.max(np.abs(theta - weights_at_replay[name])))

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.semilogy(np.linspace(0, steps, len(full_loss)), full_loss)
    ax1.set_xlabel("step")
    ax1.set_ylabel("MSE on all 2048 points")
    ax1.set_title("functional.adam(learning_rate=0.001), jit-compiled step")
    order = np.argsort(x_all[:, 0])
    ax2.plot(x_all[order], y_all[order], ".", ms=2, color="0.6", label="data: sin(x) + noise")
    ax2.plot(x_all[order], forward(weights, x_all[order]).numpy(), color="tab:blue", label=f"MLP after {steps} steps")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(args.out / "optax_style_loop.png", dpi=70 if args.quick else 120)
    plt.close(fig)

    summary = {"steps": steps, "learning_rate": LEARNING_RATE, "initial_loss": full_loss[0],
               "final_loss": full_loss[-1], "ms_per_step": 1e3 * seconds / steps,
               "replay_steps": REPLAY_STEPS, "max_abs_deviation_from_spec": deviation}
    print(f"functional.adam in a jit-compiled loop: MSE {full_loss[0]:.4f} -> {full_loss[-1]:.4f} "
          f"after {steps} steps ({summary['ms_per_step']:.2f} ms/step incl. the first call's compile)")
    print(f"float32 weights vs keras_optreg_spec.algorithms.alg_adam_step (float64) on the same gradients after "
          f"{REPLAY_STEPS} steps, max |diff| per leaf: "
          + ", ".join(f"{k}={v:.2g}" for k, v in deviation.items()))

    path = args.out / "summary.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["optax_style_loop"] = summary
    path.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
