"""Command line of ``python -m keras_optreg.demo``."""

from __future__ import annotations

import argparse
import os
import sys
import time

DEFAULT_EPOCHS, QUICK_EPOCHS = 30, 2


def parse_args(argv=None):
    from keras_optreg.demo.experiments import EXPERIMENTS

    p = argparse.ArgumentParser(prog="python -m keras_optreg.demo", description=__doc__)
    p.add_argument("--dataset", choices=("digits", "mnist"), default="digits",
                   help="digits: scikit-learn's bundled 8x8 digits (default); mnist: a local mnist.npz")
    p.add_argument("--data-path", default=None, help="path of mnist.npz (Keras' format) for --dataset mnist")
    p.add_argument("--experiments", nargs="+", choices=tuple(EXPERIMENTS), default=list(EXPERIMENTS),
                   metavar="NAME", help=f"experiments to run (default: all): {', '.join(EXPERIMENTS)}")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs per experiment (default {DEFAULT_EPOCHS}; {QUICK_EPOCHS} with --quick)")
    p.add_argument("--quick", action="store_true", help="few epochs, smaller validation set: a smoke run")
    p.add_argument("--out", default="demo_out", help="output directory (runs/<experiment>, loss_curves.png, "
                   "results.md)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.epochs is None:
        args.epochs = QUICK_EPOCHS if args.quick else DEFAULT_EPOCHS
    if args.epochs <= 0:
        p.error(f"--epochs must be > 0. Received: {args.epochs}")
    return args


def main(argv=None):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    start = time.perf_counter()
    args = parse_args(argv)
    from keras_optreg.demo import data, experiments, report

    train, val = data.load(args.dataset, args.data_path, quick=args.quick, seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    print(f"{args.dataset}: {len(train[0])} training and {len(val[0])} validation images {train[0].shape[1:]}, "
          f"{args.epochs} epochs, experiments: {', '.join(args.experiments)}", flush=True)
    results = []
    for name in args.experiments:
        r = experiments.run(name, train, val, args.epochs, args.out, seed=args.seed)
        results.append(r)
        print(f"[{len(results)}/{len(args.experiments)}] {name}: best val acc {r.best_val_accuracy:.3f}, "
              f"i*={r.best_epoch}, gap {r.final_gap:+.3f}, {r.wall_s:.1f} s", flush=True)
    text = report.table(results)
    figure = os.path.join(args.out, "loss_curves.png")
    report.plot(results, figure)
    with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    print()
    print(text)
    print(f"\nfigure: {figure}\nTensorBoard logs: {os.path.join(args.out, 'runs')}/<experiment>\n"
          f"total wall time: {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
