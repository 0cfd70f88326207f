"""``python -m keras_optreg.conformance [--format markdown|json] [--only adam,eq19] [--columns keras_optreg,keras]
[--max-examples N]``.

Exit code: 0 when every keras_optreg component conforms, 1 when one does not, 2 when a check
itself failed (an internal error) or Hypothesis is missing. The checks run on the Keras backend Keras
picks (``KERAS_BACKEND``, ``~/.keras/keras.json``); the JSON output names it (``"backend"``).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys


def _parser():
    p = argparse.ArgumentParser(prog="python -m keras_optreg.conformance", description=__doc__.split("\n\n")[0])
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--only", default="", help="comma-separated row keys or spec ids, e.g. adam,momentum,eq19")
    p.add_argument("--columns", default="", help="comma-separated columns, e.g. keras_optreg,keras (default: all: "
                                                 "keras_optreg, keras, spec (as printed), torch, optax)")
    p.add_argument("--max-examples", type=int, default=50, help="Hypothesis examples per cell (default 50)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    if importlib.util.find_spec("hypothesis") is None:
        print("keras_optreg.conformance needs Hypothesis: pip install keras_optreg[conformance]", file=sys.stderr)
        return 2
    if args.max_examples < 1:
        print(f"--max-examples must be >= 1. Received: {args.max_examples}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notices: one trace per drawn shape
    from keras_optreg.conformance import registry, report

    only = [s.strip() for s in args.only.split(",") if s.strip()]
    try:
        registry.select(only)
        columns = registry.check_columns([s.strip() for s in args.columns.split(",") if s.strip()] or None)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2

    def progress(v, seconds):
        if not args.quiet:
            print(f"[{seconds:5.1f}s] {v.row} | {v.column}: {v.status}", file=sys.stderr, flush=True)

    verdicts = registry.run(only=only, max_examples=args.max_examples, progress=progress, columns=columns)
    code = report.exit_code(verdicts)
    if args.format == "json":
        print(report.as_json(verdicts, max_examples=args.max_examples, only=only, columns=list(columns),
                             exit_code=code))
    else:
        print(report.markdown(verdicts))
    return code


if __name__ == "__main__":
    sys.exit(main())
