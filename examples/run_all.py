"""Run every example script (examples/[0-9][0-9]_*.py, lecture order) with the given flags."""

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def main(argv):
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != "run_all.py")
    if not scripts:
        print("no example scripts found", file=sys.stderr)
        return 1
    for script in scripts:
        print(f"== {script.name} {' '.join(argv)}", flush=True)
        subprocess.run([sys.executable, str(script), *argv], check=True)
    print(f"{len(scripts)} examples ran")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
