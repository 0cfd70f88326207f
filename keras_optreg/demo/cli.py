"""Command line of ``python -m keras_optreg.demo``.

The demo runs on the Keras backend Keras itself picks (``KERAS_BACKEND``, else ``~/.keras/keras.json``,
else TensorFlow) and prints it first.

Every bad argument, a missing ``[examples]`` extra included, ends the run before anything trains with
one line on stderr, ``python -m keras_optreg.demo: error: ...`` naming the argument and the value
received, and exit code 2 (argparse's convention).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

DEFAULT_EPOCHS, QUICK_EPOCHS = 40, 2
DEFAULT_LABEL_NOISE = 0.2
PROG = "python -m keras_optreg.demo"
EXTRA = "pip install 'keras_optreg[examples]'"


class UsageError(Exception):
    """A bad command line: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def parse_args(argv=None):
    from keras_optreg.demo.experiments import EXPERIMENTS

    p = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=("digits", "mnist"), default="digits",
                   help="digits: scikit-learn's bundled 8x8 digits (default); mnist: a local mnist.npz")
    p.add_argument("--data-path", default=None, help="path of mnist.npz (Keras' format) for --dataset mnist")
    p.add_argument("--experiments", nargs="+", choices=tuple(EXPERIMENTS), default=list(EXPERIMENTS),
                   metavar="NAME", help=f"experiments to run (default: all): {', '.join(EXPERIMENTS)}")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs per experiment (default {DEFAULT_EPOCHS}; {QUICK_EPOCHS} with --quick)")
    p.add_argument("--label-noise", type=float, default=DEFAULT_LABEL_NOISE,
                   help=f"fraction of training labels made wrong, in [0, 1) (default {DEFAULT_LABEL_NOISE}; "
                        "validation labels stay clean)")
    p.add_argument("--quick", action="store_true", help="few epochs, smaller validation set: a smoke run")
    p.add_argument("--out", default="demo_out", help="output directory (runs/<experiment>, loss_curves.png, "
                   "results.md)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the labels made wrong, the weights "
                   "and the random layers")
    args = p.parse_args(argv)
    if args.epochs is None:
        args.epochs = QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS
    _check(args)
    return args


def _check(args):
    from keras_optreg.demo.models import MAX_SEED, SEED_OFFSETS

    if args.epochs <= 0:
        raise UsageError(f"argument --epochs: must be > 0. Received: --epochs={args.epochs}")
    if not (0.0 <= args.label_noise < 1.0):
        raise UsageError(f"argument --label-noise: must be in [0, 1). Received: --label-noise={args.label_noise}")
    if not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"argument --seed: must be in [0, {MAX_SEED}] (the layers' seeds are --seed + "
                         f"0..{SEED_OFFSETS - 1}, each below 2**31). Received: --seed={args.seed}")
    if args.dataset == "digits" and args.data_path is not None:
        raise UsageError(f"argument --data-path: only with --dataset mnist. Received: --data-path={args.data_path!r}")
    probe = os.path.abspath(args.out)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise UsageError(f"argument --out: must be a directory or a path to create one; {probe!r} is an existing "
                         f"file. Received: --out={args.out!r}")


def _check_extras(dataset):
    """The [examples] extra: matplotlib for the figure, scikit-learn for the digits."""
    modules = ["matplotlib"] + (["sklearn"] if dataset == "digits" else [])
    for module in modules:
        try:
            __import__(module)
        except ImportError as e:
            raise UsageError(f"the demo needs the [examples] extra ({EXTRA}): {e}") from None


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    try:
        args = parse_args(argv)
        _check_extras(args.dataset)
        from keras_optreg.demo import data

        try:
            train, val = data.load(args.dataset, args.data_path, quick=args.quick, seed=args.seed,
                                   label_noise=args.label_noise)
        except ValueError as e:
            raise UsageError(f"argument --data-path: {e}") from None
        try:
            os.makedirs(os.path.join(args.out, "runs"), exist_ok=True)
        except OSError as e:
            raise UsageError(f"argument --out: cannot create it ({e}). Received: --out={args.out!r}") from None
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr, flush=True)
        return 2
    import keras

    from keras_optreg.demo import experiments, report

    print(f"Keras backend: {keras.backend.backend()}", flush=True)
    print(f"{args.dataset}: {len(train[0])} training images ({args.label_noise:.0%} of their labels made wrong) "
          f"and {len(val[0])} validation images {train[0].shape[1:]}, {args.epochs} epochs, "
          f"experiments: {', '.join(args.experiments)}", flush=True)
    results = []
    for name in args.experiments:
        r = experiments.run(name, train, val, args.epochs, args.out, seed=args.seed)
        results.append(r)
        print(f"[{len(results)}/{len(args.experiments)}] {name}: best val acc {r.best_val_accuracy:.3f}, "
              f"i*={r.best_epoch}, gap {r.final_gap:+.3f}, {r.wall_s:.1f} s", flush=True)
    text = report.table(results)
    figure = os.path.join(args.out, "loss_curves.png")
    report.plot(results, figure, title=report.figure_title(args.dataset, len(train[0]), args.label_noise))
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print()
    print(text)
    print(f"\nfigure: {figure}\nTensorBoard logs: {os.path.join(args.out, 'runs')}/<experiment>/{{train,validation}}"
          f"\ntotal wall time: {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
