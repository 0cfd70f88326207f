"""Test configuration: Keras backend and Hypothesis profiles.

Profiles (select with HYPOTHESIS_PROFILE; CI=true selects ``ci`` on TensorFlow, ``ci_other`` on JAX
and PyTorch):
  dev       fast local iteration (25 examples, random, with the example database);
  ci        what CI runs on TensorFlow: derandomized, no database, no deadline, 100 examples per property;
  ci_other  what CI runs on JAX and PyTorch: the same, 10 examples per property. The properties are the
            same keras.ops code on every backend, searched with 100 examples on TensorFlow; the other
            backends check that it computes the same there, in the CI time of all three (README);
  thorough  1000 examples per property, for a long local run.
Plugins: ``pytester`` (tests/test_spec_coverage.py runs the coverage plugin on suites of its own) and
``keras_optreg.conformance.pytest_plugin`` (the spec coverage table from ``@pytest.mark.spec`` markers).
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# PyTorch's OpenMP threads spin while idle: they would take the CPU from TensorFlow in the same process
# and from the other backends' runs beside it (tests/all_backends.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from hypothesis import HealthCheck, settings  # noqa: E402

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, print_blob=True, **_common)
settings.register_profile("ci_other", max_examples=10, derandomize=True, database=None, print_blob=True, **_common)
settings.register_profile("thorough", max_examples=1000, **_common)

_ci = "ci" if os.environ["KERAS_BACKEND"] == "tensorflow" else "ci_other"
_default = _ci if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))

pytest_plugins = ("pytester", "keras_optreg.conformance.pytest_plugin")

TENSORFLOW_ONLY = "tensorflow_only"
#: a test whose subject does not depend on the Keras backend (e.g. the conformance table's PyTorch, optax and
#: printed-spec columns): it runs once, in the run of tests.backend.ONCE_BACKEND (TensorFlow's unless
#: KERAS_OPTREG_ONCE_BACKEND names another: tests/all_backends.py gives them to the PyTorch run, its shortest)
BACKEND_INDEPENDENT = "backend_independent"
#: test files whose subject does not depend on the Keras backend: they run once, in the ONCE_BACKEND run
ONCE_FILES = {"test_spec_*.py": "the spec (NumPy only) and its coverage plugin",
              "test_packaging.py": "the sdist and wheel (built and installed once)"}
#: test files that run in the TensorFlow run only: the example scripts (their training loops are tf.function)
TENSORFLOW_FILES = {"test_examples.py": "the example scripts (their loops are tf.function, run once)"}


def pytest_configure(config):
    config.addinivalue_line("markers", f"{TENSORFLOW_ONLY}(reason): TensorFlow-only machinery; skipped, with the "
                                       "reason, on the JAX and PyTorch backends (README lists the reasons)")
    config.addinivalue_line("markers", f"{BACKEND_INDEPENDENT}(reason): the subject does not depend on the Keras "
                                       "backend; runs in one run only (ONCE_BACKEND's)")


def pytest_collection_modifyitems(config, items):
    import keras
    import pytest

    from tests.backend import ONCE_BACKEND

    backend = keras.backend.backend()
    for item in items:
        once = next((why for pattern, why in ONCE_FILES.items() if item.path.match(pattern)), None)
        mark = item.get_closest_marker(BACKEND_INDEPENDENT)
        if once is None and mark is not None:
            once = mark.args[0] if mark.args else mark.kwargs.get("reason", "")
        if once is not None:
            if backend != ONCE_BACKEND:
                item.add_marker(pytest.mark.skip(reason=f"backend-independent: {once}, tested in the {ONCE_BACKEND} "
                                                        "run"))
            continue
        if backend == "tensorflow":
            continue
        why = next((why for pattern, why in TENSORFLOW_FILES.items() if item.path.match(pattern)), None)
        if why is not None:
            item.add_marker(pytest.mark.skip(reason=f"TensorFlow only: {why}"))
            continue
        mark = item.get_closest_marker(TENSORFLOW_ONLY)
        if mark is not None:
            reason = mark.args[0] if mark.args else mark.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(reason=f"TensorFlow only: {reason}"))
