"""JAX ``keras.distribution.DataParallel`` over 2 host devices against one device (issue 16).

The scenarios run in one subprocess (``tests/_jax_dist_worker.py``, ``KERAS_BACKEND=jax``,
``XLA_FLAGS=--xla_force_host_platform_device_count=2``: the device count is fixed when JAX starts its
CPU backend). It starts its own JAX process whatever this run's backend is, so it runs once, in the
JAX run of the suite, and is skipped (saying so) in the TensorFlow and PyTorch runs.

Tolerance: ``tests/test_distributed.py``'s derivation. Under ``DataParallel`` the step is one SPMD
program: XLA sums each device's half of the batch, then all-reduces the two partial sums, a
different summation order from one device, a float32 rounding difference per reduction (the
gradients, the loss and BatchNormalization's batch sums). We allow ``8 * STEPS`` float32 epsilons
(8 units in the last place per optimizer step) relative to each array's largest magnitude; measured
differences are below 1 ulp. Training one device on a device's slice (batch 8 instead of 16) moves
the weights by over 1000 times that bound, which a test asserts, so the comparison would catch a
distribution that trained each device on its slice alone.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests import workers
from tests.backend import JAX

pytestmark = pytest.mark.skipif(not JAX, reason="the JAX DataParallel worker starts its own JAX process; it runs "
                                                "once, in the KERAS_BACKEND=jax run of the suite")

EPS32 = float(np.finfo(np.float32).eps)
STEPS = 8  # the worker's N_SAMPLES // GLOBAL_BATCH * EPOCHS = 64 // 16 * 2, checked against its iterations
RTOL = 8 * STEPS * EPS32
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return workers.run("tests._jax_dist_worker", tmp_path_factory.mktemp("jaxdist") / "dataparallel.npz", "jax",
                       TIMEOUT_S)


def _ran(result, scenario):
    if f"{scenario}/error" in result:
        pytest.fail(f"scenario {scenario!r} raised in the worker: {result[f'{scenario}/error']}")


_pairs = workers.pairs


def _close(got, want):
    workers.assert_close(got, want, RTOL)


def _check_fit(result, tag):
    _ran(result, tag)
    assert int(result["devices"]) == 2
    assert int(result[f"{tag}/parallel/iterations"]) == STEPS
    np.testing.assert_array_equal(result[f"{tag}/parallel/variable_devices"], [2])  # every variable on both
    shardings = list(result[f"{tag}/parallel/input_sharding"])
    assert shardings and all("'batch'" in s for s in shardings), shardings  # the batch really was split
    for key, single, parallel in _pairs(result, f"{tag}/single", f"{tag}/parallel"):
        _close(parallel, single)
        initial = result[key.replace("/single/", "/initial/", 1)]
        assert np.max(np.abs(single - initial)) > 1e3 * RTOL, key  # training moved every variable
    np.testing.assert_allclose(result[f"{tag}/parallel/loss"], result[f"{tag}/single/loss"], rtol=RTOL)


@pytest.mark.spec("eq06", "eq18", "eq20")
def test_eq18_eq20_dataparallel_fit_matches_one_device(result):
    """keras_optreg.Adam + LinearDecay + Tikhonov + BatchNormalization (default arguments): the same
    weights and moving statistics under DataParallel(2 devices) as on one device, same global batch.
    On JAX the default BatchNormalization already normalises with the global batch's statistics (one
    SPMD program), unlike MirroredStrategy's per-replica default."""
    _check_fit(result, "plain")


@pytest.mark.spec("eq06", "eq18", "eq20", "dropout")
def test_eq18_eq20_dropout_dataparallel_fit_with_synchronized_batchnorm_and_dropout_matches_one_device(result):
    """The issue's model: ``plain`` with BatchNormalization(synchronized=True) and Dropout(0.25)."""
    _check_fit(result, "full")


@pytest.mark.spec("dropout")
def test_dropout_dataparallel_draws_the_one_device_mask_for_the_global_batch(result):
    """The mask is drawn for the global batch: 2 devices draw bit for bit what one device draws."""
    _ran(result, "dropout")
    assert int(result["dropout/input_devices"]) == 2 and "'batch'" in str(result["dropout/input_sharding"])
    y = result["dropout/parallel"]
    np.testing.assert_array_equal(y, result["dropout/single"])
    np.testing.assert_array_equal(result["dropout/parallel/rng_state"], result["dropout/single/rng_state"])
    np.testing.assert_array_equal(result["dropout/parallel/rng_state"], [11, 1])  # one draw advanced the counter
    assert set(np.unique(y)) <= {0.0, 2.0}
    # a real Bernoulli(1/2) mask on the ones: n = 4096 kept-or-dropped entries, sd = sqrt(n)/2
    n = y.size
    assert abs(int(np.sum(y != 0)) - n / 2) < 5 * math.sqrt(n) / 2


def test_dataparallel_tolerance_rejects_training_on_a_devices_slice(result):
    """The companion check: one device trained on batches of 8 (what each device would see alone)
    differs from the global-batch run by far more than RTOL, so the comparisons above can fail."""
    _ran(result, "plain")
    gaps = [np.max(np.abs(b - s)) / max(1.0, float(np.max(np.abs(s))))
            for _, s, b in _pairs(result, "plain/single", "batch8/single")]
    assert max(gaps) > 1e3 * RTOL, gaps
