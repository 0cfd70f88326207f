"""The tests that train in a subprocess (a distribution needs its devices configured before the backend
starts): run one worker module, and compare the arrays two trainings wrote.

Used by ``tests/test_distributed.py`` (tf.distribute), ``tests/test_optimizers_distributed.py`` and
``tests/test_distributed_jax.py`` (JAX DataParallel). No backend is imported here.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(module, out, backend, timeout_s):
    """``python -m <module> <out>`` with ``KERAS_BACKEND=backend`` from the repository root; fails the test
    with the worker's output when it exits non-zero or runs past ``timeout_s``; returns the arrays it saved."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.Popen([sys.executable, "-m", module, str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        log = proc.communicate(timeout=timeout_s)[0]
        assert proc.returncode == 0, f"worker {module} failed (rc={proc.returncode}):\n{log[-4000:]}"
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker {module} ran past {timeout_s} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return dict(np.load(out))


def pairs(result, prefix, other):
    """``(key, result[key], result[key with prefix -> other])`` for the 7 arrays of the workers' model."""
    keys = sorted(k for k in result if k.startswith(prefix + "/") and not k.endswith("/loss"))
    assert len(keys) == 7, keys  # conv kernel, gamma, beta, moving mean/variance, dense kernel/bias
    return [(k, result[k], result[k.replace(prefix, other, 1)]) for k in keys]


def assert_close(got, want, rtol):
    """Within ``rtol`` of ``want``'s largest magnitude (at least 1); returns the largest difference."""
    atol = rtol * max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)
    return float(np.max(np.abs(got - want)))
