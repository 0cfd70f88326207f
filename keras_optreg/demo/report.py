"""Results table, the best epoch i* (GBC16 Alg. 7.1) and the loss-curve figure."""

from __future__ import annotations

import math

COLUMNS = ("experiment", "best val acc", "i* (best val loss epoch)", "final gap val_loss-loss", "epochs",
           "wall s", "note")


def best_epoch(val_losses):
    """i* of GBC16 Alg. 7.1 with n = 1 step per epoch: the 1-based epoch of the first strictly lowest loss.

    ``val_losses[e]`` is the validation loss after epoch e + 1. Like the algorithm (``v' < v``) a
    later equal value does not move i*; NaN never counts as an improvement. 0 if no value is finite
    and below infinity.
    """
    best, i_star = math.inf, 0
    for epoch, value in enumerate(val_losses, start=1):
        if value < best:
            best, i_star = value, epoch
    return i_star


def table(results):
    """A Markdown table, one row per experiment, the columns of ``COLUMNS``."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in results:
        cells = (r.name, f"{r.best_val_accuracy:.3f}", str(r.best_epoch), f"{r.final_gap:+.3f}", str(r.epochs_run),
                 f"{r.wall_s:.1f}", r.note)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure_title(dataset, n_train, label_noise):
    name = {"digits": "8x8 digits", "mnist": "MNIST"}.get(dataset, dataset)
    return (f"Overfitting and regularization: a small CNN on {n_train} {name} images "
            f"({label_noise:.0%} of the training labels wrong); i* = best validation loss")


def plot(results, path, title="Train and validation loss per experiment"):
    """The lecture's overfitting figure: train and validation cross-entropy per epoch, one panel per experiment.

    Linear y axis shared by all panels, so the validation loss's rise after its minimum at i* (dotted
    line, dot on the curve) is plain and panels compare; the top of the axis is 1.15 times the largest
    validation loss from epoch 3 on (the first two epochs' falling losses may run off the top). The
    legend sits below the panels, covering no curve; the title above them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(5, len(results))
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.3 * rows + 1.0), squeeze=False, sharex=True,
                             sharey=True)
    late = [v for r in results for v in r.history["val_loss"][2:] if math.isfinite(v)]
    every = [v for r in results for key in ("loss", "val_loss") for v in r.history[key] if math.isfinite(v)]
    top = 1.15 * max(late or every or [1.0])
    for ax, r in zip(axes.flat, results, strict=False):  # more panels than experiments
        epochs = range(1, len(r.history["loss"]) + 1)
        train_line, = ax.plot(epochs, r.history["loss"], color="tab:blue", label="training loss")
        val_line, = ax.plot(epochs, r.history["val_loss"], color="tab:orange", label="validation loss")
        handles = [train_line, val_line]
        if r.best_epoch:
            best = r.history["val_loss"][r.best_epoch - 1]
            handles.append(ax.axvline(r.best_epoch, color="gray", linestyle=":", label="i* (lowest validation loss)"))
            ax.plot([r.best_epoch], [best], "o", color="tab:orange", markersize=4)
        ax.set_title(r.name, fontsize="medium")
        ax.set_ylim(0.0, top)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(results):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("cross-entropy")
    for ax in axes[-1, :]:
        ax.set_xlabel("epoch")
    fig.suptitle(title, fontsize="medium")
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    fig.savefig(path, dpi=80)
    plt.close(fig)
