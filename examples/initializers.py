r"""Why initialization matters (eqs. 1-3): activation variance through a deep MLP.

A batch of standard-normal inputs goes through L dense layers of width n (zero bias), with tanh or
ReLU, the kernels drawn by each initializer. Per layer the script records the variance of the
pre-activations :math:`z_{l+1} = W_l h_l`, with :math:`h_l = \phi(z_l)`.

Equations shown:

* (1) Glorot uniform :math:`w_{ij} \sim \mathcal U(\pm\sqrt{6/(m+n)})`
  (``keras_optreg.initializers.GlorotUniform``), variance :math:`2/(m+n)`;
* (2) the bound :math:`\mathcal U(\pm 1/\sqrt m)` the lecture calls "He-uniform", which is
  PyTorch's ``nn.Linear`` default (``TorchDefault``, erratum E-init2), variance :math:`1/(3m)`;
  Keras' ``HeUniform`` :math:`\mathcal U(\pm\sqrt{6/m})`, variance :math:`2/m`, is drawn for reference;
* (3) the truncated normal (``FlaxDefault``, Flax's ``lecun_normal``, variance :math:`1/m` after
  truncation) and, as printed (``FlaxDefault(mode="fan_out", variance_corrected=False)``,
  erratum E-init3), variance :math:`0.774/n`.

With zero bias, :math:`\mathrm{Var}(z_{l+1}) = m\,\mathrm{Var}(w)\,\mathbb E[\phi(z_l)^2]`
[Glorot & Bengio 2010; He et al. 2015, eq. 10]. For ReLU
:math:`\mathbb E[\phi(z)^2] = \mathrm{Var}(z)/2`, so the variance is multiplied by
:math:`\mathrm{gain} = m\,\mathrm{Var}(w)/2` per layer: 1 for He, 1/2 for Glorot and Flax (square
layers), 0.387 for the printed eq. (3), 1/6 for PyTorch's default. tanh is contracting, so no
initializer here grows the variance, and the small ones make it vanish.

Writes ``initializers_variance.png`` and ``summary.json`` (section ``initializers``) into
``--out``; prints the variance at a few depths. Run from the repository root:
``python examples/initializers.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_optreg import initializers as I  # noqa: E402


def initializer_factories():
    """name -> (factory(seed), variance of one weight as a function of fan_in = fan_out = n)."""
    return {
        "GlorotUniform (eq. 1)": (lambda s: I.GlorotUniform(seed=s), lambda n: 2.0 / (2 * n)),
        "TorchDefault (eq. 2)": (lambda s: I.TorchDefault(seed=s), lambda n: 1.0 / (3 * n)),
        "FlaxDefault (eq. 3 corrected)": (lambda s: I.FlaxDefault(seed=s), lambda n: 1.0 / n),
        "FlaxDefault as printed (eq. 3)": (
            lambda s: I.FlaxDefault(seed=s, mode="fan_out", variance_corrected=False),
            lambda n: 0.87962566103423978**2 / n),
        "keras HeUniform (reference)": (lambda s: keras.initializers.HeUniform(seed=s), lambda n: 2.0 / n),
    }


ACTIVATIONS = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}


def propagate(init_factory, activation, depth, width, batch, seed):
    """Pre-activation variance after each of ``depth`` layers (float64 propagation of float32 kernels)."""
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((batch, width))
    variances = []
    for layer in range(depth):
        w = np.asarray(init_factory(seed * 1000 + layer)((width, width), dtype="float32"), np.float64)
        z = h @ w
        variances.append(float(z.var()))
        h = ACTIVATIONS[activation](z)
    return variances


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shallower, narrower net (a few seconds)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("examples_out"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    depth, width, batch = (20, 256, 256) if args.quick else (50, 512, 1024)

    inits = initializer_factories()
    summary = {"depth": depth, "width": width, "batch": batch, "variance": {}, "relu_gain_theory": {}}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, activation in zip(axes, ACTIVATIONS, strict=True):
        for name, (factory, _) in inits.items():
            v = propagate(factory, activation, depth, width, batch, seed=1)
            summary["variance"].setdefault(activation, {})[name] = v
            ax.semilogy(range(1, depth + 1), v, "o-", ms=3, label=name)
        ax.set_title(f"{activation}: width {width}, zero bias")
        ax.set_xlabel("layer")
        ax.set_ylabel("Var(pre-activation)")
        ax.legend(fontsize=8)
    for name, (_, var_w) in inits.items():
        summary["relu_gain_theory"][name] = width * var_w(width) / 2.0
    fig.suptitle("activation variance through a deep MLP, by initializer")
    fig.tight_layout()
    fig.savefig(args.out / "initializers_variance.png", dpi=70 if args.quick else 120)
    plt.close(fig)

    shown = sorted({1, depth // 2, depth})
    print(f"Var(pre-activation) at layers {shown}, width {width}, batch {batch}; relu gain per layer "
          f"measured (geometric mean) vs m Var(w) / 2:")
    for activation, per_init in summary["variance"].items():
        for name, v in per_init.items():
            cells = " ".join(f"{v[k - 1]:>9.3g}" for k in shown)
            extra = ""
            if activation == "relu":
                measured = (v[-1] / v[0]) ** (1.0 / (depth - 1))
                extra = f"  gain {measured:.3f} vs {summary['relu_gain_theory'][name]:.3f}"
            print(f"  {activation:<5} {name:<31} {cells}{extra}")

    path = args.out / "summary.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["initializers"] = summary
    path.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
