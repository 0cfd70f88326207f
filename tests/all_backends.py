"""Run the test suite on every Keras 3 backend: ``python -m tests.all_backends [pytest args]``.

One ``python -m pytest -q`` process per backend (``KERAS_BACKEND=tensorflow``, ``jax``, ``torch``), up
to ``--jobs`` at a time (default: the number of CPUs, at most 3; a suite process keeps about one core
busy). Each run's output goes to ``<log-dir>/<backend>.log``; at the end every backend's summary line
and wall time is printed, and the exit code is non-zero when any run failed or ran no test. The
TensorFlow run starts first: it is the longest. The backend-independent tests (the spec, the packaging,
the conformance table's PyTorch, optax and printed-spec columns: tests/conftest.py) run once, in the
PyTorch run when it is among those run (the shortest: ``KERAS_OPTREG_ONCE_BACKEND=torch``), else in the
first backend's.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

BACKENDS = ("tensorflow", "jax", "torch")
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|error).*) in [\d.]+s")


def _summary(log):
    lines = [line.strip("= \n") for line in log.read_text(errors="replace").splitlines() if SUMMARY.match(line)]
    return lines[-1] if lines else "no summary line (the run crashed?)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated (default: all three)")
    parser.add_argument("--jobs", type=int, default=min(3, os.cpu_count() or 1))
    parser.add_argument("--log-dir", default=None, help="where the per-backend logs go (default: a temp dir)")
    args, pytest_args = parser.parse_known_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not backends:
        parser.error(f"--backends must name some of {', '.join(BACKENDS)}. Received: {args.backends!r}")
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1. Received: {args.jobs}")
    log_dir = pathlib.Path(args.log_dir or tempfile.mkdtemp(prefix="keras_optreg_tests_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    once = "torch" if "torch" in backends else backends[0]
    pending, running, done = list(backends), {}, {}
    while pending or running:
        while pending and len(running) < args.jobs:
            backend = pending.pop(0)
            log = log_dir / f"{backend}.log"
            env = {**os.environ, "KERAS_BACKEND": backend, "KERAS_OPTREG_ONCE_BACKEND": once}
            with log.open("w") as out:
                proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", *pytest_args], env=env,
                                        stdout=out, stderr=subprocess.STDOUT)
            running[backend] = (proc, log, time.monotonic())
            print(f"[{backend}] started, log: {log}", flush=True)
        time.sleep(1.0)
        for backend, (proc, log, start) in list(running.items()):
            if proc.poll() is not None:
                done[backend] = (proc.returncode, log, time.monotonic() - start)
                del running[backend]
                print(f"[{backend}] finished in {done[backend][2]:.0f} s: {_summary(log)}", flush=True)
    failed = []
    for backend in backends:
        code, log, seconds = done[backend]
        summary = _summary(log)
        if code != 0 or not re.match(r"\d+ passed", summary):
            failed.append(backend)
            print(f"\n----- {backend}: the end of {log} -----")
            print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))
    print()
    for backend in backends:
        code, log, seconds = done[backend]
        print(f"KERAS_BACKEND={backend}: {seconds:.0f} s, exit {code}")
        print(_summary(log))  # pytest's own line ("1749 passed, 5 skipped in ..."), which .ci/run looks for
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
