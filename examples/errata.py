r"""Why the errata of eqs. (7)-(18) matter: the printed and the corrected optimizers, side by side.

Runs :mod:`keras_optreg_spec.algorithms` (NumPy, float64) on two problems with the same hyper-parameters:

* a quadratic, the mean of N per-example losses
  :math:`C_i(\theta) = \tfrac12 (\theta - c_i)^\top H (\theta - c_i)`, H = diag(1, 10);
* Rosenbrock, :math:`f(x, y) = (1 - x)^2 + 100 (y - x^2)^2`, as the two "examples"
  :math:`C_1 = (1-x)^2`, :math:`C_2 = 100 (y - x^2)^2` (so the minibatch gradient is :math:`\nabla f / 2`).

Equations shown (printed form from :mod:`keras_optreg_spec.printed`, corrected form from
:mod:`keras_optreg_spec.corrected`):

* (7), (10), (13) minibatch gradient, erratum E-sum: printed :math:`\frac1m\sum_{i=0}^{m}` divides
  m + 1 terms by m, so every printed run sees its gradient scaled by N / (N - 1);
* (8)-(9) momentum, erratum E-mom: printed :math:`\theta \leftarrow \theta - v` with
  :math:`v \leftarrow \alpha v - \epsilon g` climbs the gradient; corrected :math:`\theta + v`
  (GBC16 Alg. 8.2);
* (11)-(12) RMSprop, erratum E-rms: printed :math:`r \leftarrow r + g \odot g`,
  :math:`\theta \leftarrow \theta - \frac{\epsilon}{\delta + r} \odot g` has a step that scales
  as 1/g and decays like 1/t; corrected :math:`r \leftarrow \rho r + (1-\rho) g \odot g`,
  :math:`\theta \leftarrow \theta - \frac{\epsilon}{\sqrt{\delta + r}} \odot g` (GBC16 Alg. 8.5)
  is invariant to the scale of the loss. The script runs both on the quadratic times
  c = 1e-2 ... 1e3;
* (14)-(18) Adam, erratum E-adam: printed :math:`\hat s = s / (1 - \rho_1)`,
  :math:`\hat r = r / (1 - \rho_2)`, :math:`\theta \leftarrow \theta - \frac{\epsilon \hat s}{\delta + \hat r} \odot g`;
  from zero state the first step is :math:`-\epsilon g^2 / (\delta + g^2) \approx -\epsilon`
  whatever the sign of g, and once s and g agree in sign the step stays negative: theta drifts
  to minus infinity. Corrected (Kingma & Ba Alg. 1 = GBC16 Alg. 8.7):
  :math:`\hat s = s / (1 - \rho_1^t)`, :math:`\hat r = r / (1 - \rho_2^t)`,
  :math:`\theta \leftarrow \theta - \epsilon \hat s / (\sqrt{\hat r} + \delta)`.

Writes ``errata_quadratic.png``, ``errata_rosenbrock.png``, ``errata_rmsprop_scale.png`` and
``summary.json`` (section ``errata``) into ``--out``; prints the final losses.
Run from the repository root: ``python examples/errata.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_optreg_spec import algorithms as A  # noqa: E402
from keras_optreg_spec import corrected as C  # noqa: E402

DIVERGED = 1e12  # a run whose loss passes this is stopped and reported as diverged


# ---- problems: per-example gradients (rows), the loss, the start -------------------------------


class Quadratic:
    name = "quadratic"
    H = np.array([1.0, 10.0])
    centers = np.array([[0.5, 0.5], [-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5]])  # mean (0, 0)
    start = np.array([1.0, -1.0])
    optimum = np.zeros(2)

    def __init__(self, scale=1.0):
        self.scale = scale

    def per_example_grads(self, theta):
        return self.scale * self.H * (theta - self.centers)

    def loss(self, theta):
        """Excess loss f(theta) - f*, unscaled: 1/2 theta^T H theta (the centers average to 0)."""
        return 0.5 * float(np.sum(self.H * theta**2))


class Rosenbrock:
    name = "rosenbrock"
    start = np.array([-1.2, 1.0])
    optimum = np.ones(2)
    scale = 1.0

    def per_example_grads(self, theta):
        x, y = theta
        return np.array([[-2.0 * (1.0 - x), 0.0], [-400.0 * x * (y - x * x), 200.0 * (y - x * x)]])

    def loss(self, theta):
        x, y = theta
        return float((1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2)


# ---- hyper-parameters (identical for printed and corrected) -----------------------------------

HYPER = {
    "quadratic": {"momentum": dict(eps=0.01, alpha=0.9), "rmsprop": dict(eps=0.01, rho=0.9, delta=1e-6),
                  "adam": dict(eps=0.01, rho1=0.9, rho2=0.999, delta=1e-8)},
    "rosenbrock": {"momentum": dict(eps=1e-3, alpha=0.9), "rmsprop": dict(eps=1e-3, rho=0.9, delta=1e-6),
                   "adam": dict(eps=0.01, rho1=0.9, rho2=0.999, delta=1e-8)},
}


def make_steppers(h):
    """For each optimizer, (printed, corrected): step(theta, state, rows) -> (theta, state)."""
    mom = h["momentum"]
    rms = h["rmsprop"]
    adam = h["adam"]

    def printed_momentum(theta, st, rows):
        theta, v = A.printed_momentum_step(theta, st.get("v", 0.0 * theta), rows, mom["eps"], mom["alpha"])
        return theta, {"v": v}

    def corrected_momentum(theta, st, rows):
        theta, v = A.alg_momentum_step(theta, st.get("v", 0.0 * theta), C.minibatch_gradient(rows),
                                       mom["eps"], mom["alpha"])
        return theta, {"v": v}

    def printed_rmsprop(theta, st, rows):
        theta, r = A.printed_rmsprop_step(theta, st.get("r", 0.0 * theta), rows, rms["eps"], rms["delta"])
        return theta, {"r": r}

    def corrected_rmsprop(theta, st, rows):
        theta, r = A.alg_rmsprop_step(theta, st.get("r", 0.0 * theta), C.minibatch_gradient(rows),
                                      rms["eps"], rms["rho"], rms["delta"])
        return theta, {"r": r}

    def printed_adam(theta, st, rows):
        z = 0.0 * theta
        theta, s, r = A.printed_adam_step(theta, st.get("s", z), st.get("r", z), rows,
                                          adam["eps"], adam["rho1"], adam["rho2"], adam["delta"])
        return theta, {"s": s, "r": r}

    def corrected_adam(theta, st, rows):
        z = 0.0 * theta
        theta, s, r, t = A.alg_adam_step(theta, st.get("s", z), st.get("r", z), st.get("t", 0),
                                         C.minibatch_gradient(rows), adam["eps"], adam["rho1"], adam["rho2"],
                                         adam["delta"])
        return theta, {"s": s, "r": r, "t": t}

    return {"momentum": (printed_momentum, corrected_momentum),
            "rmsprop": (printed_rmsprop, corrected_rmsprop),
            "adam": (printed_adam, corrected_adam)}


def run(problem, step, steps):
    """Iterates ``step``; returns the trajectory (k+1, 2), the losses (k+1,) and whether it diverged."""
    theta, state = problem.start.copy(), {}
    path, losses = [theta], [problem.loss(theta)]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            theta, state = step(theta, state, problem.per_example_grads(theta))
            loss = problem.loss(theta)
            if not np.isfinite(loss) or loss > DIVERGED:
                return np.array(path), np.array(losses), True
            path.append(theta)
            losses.append(loss)
    return np.array(path), np.array(losses), False


def _final(losses, diverged):
    return float("inf") if diverged else float(losses[-1])


# ---- the figures --------------------------------------------------------------------------------


def plot_problem(problem, runs, out, quick):
    fig, axes = plt.subplots(3, 2, figsize=(10, 11))
    lo = np.minimum(problem.start, problem.optimum) - 1.0
    hi = np.maximum(problem.start, problem.optimum) + 1.0
    grid = 60 if quick else 200
    xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    zs = np.vectorize(lambda a, b: problem.loss(np.array([a, b])))(xs, ys)
    for row, (opt, res) in enumerate(runs.items()):
        ax_path, ax_loss = axes[row]
        ax_path.contour(xs, ys, np.log10(zs + 1e-3), levels=20, cmap="Greys", linewidths=0.6)
        for label, color in (("printed", "tab:red"), ("corrected", "tab:blue")):
            path, losses, diverged = res[label]
            tag = f"{label}{' (diverged)' if diverged else ''}"
            ax_path.plot(path[:, 0], path[:, 1], color=color, lw=1.2, label=tag)
            ax_loss.semilogy(np.maximum(losses, 1e-16), color=color, label=tag)
        ax_path.plot(*problem.start, "ko", ms=4)
        ax_path.plot(*problem.optimum, "k*", ms=9)
        ax_path.set_xlim(lo[0], hi[0])
        ax_path.set_ylim(lo[1], hi[1])
        ax_path.set_title(f"{opt}: trajectory")
        ax_path.legend(fontsize=8)
        ax_loss.set_title(f"{opt}: loss (f - f*)" if problem.name == "quadratic" else f"{opt}: loss")
        ax_loss.set_xlabel("step")
        ax_loss.legend(fontsize=8)
    fig.suptitle(f"printed (lecture) vs corrected (GBC16 / Kingma & Ba) on the {problem.name}")
    fig.tight_layout()
    fig.savefig(out / f"errata_{problem.name}.png", dpi=70 if quick else 120)
    plt.close(fig)


def rmsprop_scale_study(steps, out, quick):
    """E-rms on the quadratic times c: the first step's length and f(theta_T)/f(theta_0), per c.

    Corrected: the first step is eps g / sqrt(delta + (1 - rho) g^2) ~ eps / sqrt(1 - rho) per
    coordinate for every c with delta << (1 - rho) g^2. Printed: eps g / (delta + g^2) ~ eps / g, 1/c.
    """
    scales = [1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3]
    steppers = make_steppers(HYPER["quadratic"])["rmsprop"]
    result = {"scales": scales, "first_step": {"printed": [], "corrected": []},
              "loss_ratio": {"printed": [], "corrected": []}}
    for c in scales:
        problem = Quadratic(scale=c)
        for label, step in zip(("printed", "corrected"), steppers, strict=True):
            path, losses, diverged = run(problem, step, steps)
            result["first_step"][label].append(float(np.linalg.norm(path[1] - path[0])))
            result["loss_ratio"][label].append(_final(losses, diverged) / losses[0])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for label, color in (("printed", "tab:red"), ("corrected", "tab:blue")):
        ax1.loglog(scales, result["first_step"][label], "o-", color=color, label=label)
        ax2.loglog(scales, np.maximum(result["loss_ratio"][label], 1e-40), "o-", color=color, label=label)
    ax1.set_xlabel("loss scale c (loss = c * quadratic)")
    ax1.set_ylabel("|theta_1 - theta_0|")
    ax1.set_title("RMSprop first step: printed ~ 1/c, corrected ~ constant")
    ax2.set_xlabel("loss scale c")
    ax2.set_ylabel(f"f(theta_{steps}) / f(theta_0)")
    ax2.set_title(f"after {steps} steps")
    for ax in (ax1, ax2):
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "errata_rmsprop_scale.png", dpi=70 if quick else 120)
    plt.close(fig)
    return result


def adam_first_step(h):
    """E-adam: the first step from zero state on the quadratic, printed vs corrected."""
    problem = Quadratic()
    printed, corrected = make_steppers(h)["adam"]
    rows = problem.per_example_grads(problem.start)
    return {"gradient": C.minibatch_gradient(rows).tolist(),
            "printed": (printed(problem.start, {}, rows)[0] - problem.start).tolist(),
            "corrected": (corrected(problem.start, {}, rows)[0] - problem.start).tolist()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, coarser plots (a few seconds)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("examples_out"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = 300 if args.quick else 3000

    summary = {"steps": steps, "final_loss": {}}
    for problem in (Quadratic(), Rosenbrock()):
        runs = {}
        for opt, (printed, corrected) in make_steppers(HYPER[problem.name]).items():
            runs[opt] = {"printed": run(problem, printed, steps), "corrected": run(problem, corrected, steps)}
            summary["final_loss"].setdefault(problem.name, {})[opt] = {
                "initial": float(runs[opt]["corrected"][1][0]),
                **{label: _final(r[1], r[2]) for label, r in runs[opt].items()}}
        plot_problem(problem, runs, args.out, args.quick)
    summary["rmsprop_scale"] = rmsprop_scale_study(steps, args.out, args.quick)
    summary["adam_first_step"] = adam_first_step(HYPER["quadratic"])

    print(f"final loss after {steps} steps (inf = diverged past {DIVERGED:g}), same hyper-parameters:")
    print(f"{'problem':<11} {'optimizer':<9} {'initial':>10} {'printed':>10} {'corrected':>10}")
    for name, per_opt in summary["final_loss"].items():
        for opt, v in per_opt.items():
            print(f"{name:<11} {opt:<9} {v['initial']:>10.3g} {v['printed']:>10.3g} {v['corrected']:>10.3g}")
    sc = summary["rmsprop_scale"]
    print("RMSprop on c * quadratic: first-step length and f(theta_T)/f(theta_0) per c:")
    for i, c in enumerate(sc["scales"]):
        print(f"  c={c:<6g} first step printed={sc['first_step']['printed'][i]:<9.3g} "
              f"corrected={sc['first_step']['corrected'][i]:<9.3g} loss ratio "
              f"printed={sc['loss_ratio']['printed'][i]:<9.3g} corrected={sc['loss_ratio']['corrected'][i]:.3g}")
    fs = summary["adam_first_step"]
    print(f"Adam first step on the quadratic: gradient={np.round(fs['gradient'], 4).tolist()} "
          f"printed step={np.round(fs['printed'], 5).tolist()} corrected step={np.round(fs['corrected'], 5).tolist()}")

    path = args.out / "summary.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data["errata"] = summary
    path.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
