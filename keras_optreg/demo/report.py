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


def plot(results, path):
    """Train and validation loss per epoch, one panel per experiment, i* marked: the overfitting figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(5, len(results))
    rows = -(-len(results) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False, sharey=True)
    for ax, r in zip(axes.flat, results, strict=False):  # more panels than experiments
        epochs = range(1, len(r.history["loss"]) + 1)
        ax.plot(epochs, r.history["loss"], label="train loss")
        ax.plot(epochs, r.history["val_loss"], label="validation loss")
        if r.best_epoch:
            ax.axvline(r.best_epoch, color="gray", linestyle=":", label="i* (best val loss)")
        ax.set_title(r.name)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
    for ax in list(axes.flat)[len(results):]:
        ax.axis("off")
    axes.flat[0].set_ylabel("cross-entropy")
    axes.flat[0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
