"""Run every example script in lecture order (by the first equation each one shows), with the given flags.

``python examples/run_all.py --quick [--out DIR]``: the flags go to every script. A script in
``examples/`` that is missing from ``LECTURE_ORDER`` (or listed but missing) is an error, so a new
example cannot be skipped silently; so is finding no script at all.
"""

import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent

LECTURE_ORDER = (
    "initializers.py",      # eqs. (1)-(3)
    "errata.py",            # eqs. (7)-(18): momentum, RMSprop, Adam, printed vs corrected
    "optax_style_loop.py",  # eqs. (13)-(18) through keras_optreg.functional
)


def scripts():
    """The scripts in lecture order; ValueError if the folder and ``LECTURE_ORDER`` disagree or are empty."""
    present = {p.name for p in HERE.glob("*.py") if p.name != "run_all.py"}
    unlisted, missing = sorted(present - set(LECTURE_ORDER)), sorted(set(LECTURE_ORDER) - present)
    if unlisted or missing or not present:
        raise ValueError(f"examples/: unlisted scripts {unlisted}, listed but missing {missing}, "
                         f"{len(present)} found")
    return [HERE / name for name in LECTURE_ORDER]


def main(argv):
    try:
        paths = scripts()
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    for path in paths:
        print(f"== {path.name} {' '.join(argv)}", flush=True)
        start = time.perf_counter()
        subprocess.run([sys.executable, str(path), *argv], check=True)
        print(f"== {path.name} took {time.perf_counter() - start:.1f} s", flush=True)
    print(f"{len(paths)} examples ran")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
