"""tf.distribute: MirroredStrategy over 2 logical CPUs, checkpoints across strategies, MultiWorkerMirroredStrategy.

Each scenario runs in a subprocess (``tests/_dist_worker.py``): logical devices must be configured
before TensorFlow initialises its devices, which this process already did. Scenarios run once per
module (fixtures) and the tests compare what they wrote.

Tolerance: the strategy sums the per-replica gradients (and, with ``synchronized=True``, the
BatchNormalization sums) in a different order from one device, a float32 rounding difference per
reduction. We allow ``8 * STEPS`` float32 epsilons (8 units in the last place per optimizer step)
relative to each array's largest magnitude; measured differences are 1-2 ulp. The per-replica
(unsynchronized) model differs by over 1000 times that bound, which the tests also assert, so the
comparison would catch a strategy that does not reproduce one-device training.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

import keras_optreg_spec.corrected as sc
from tests import _dist_worker as W
from tests import workers

pytestmark = pytest.mark.tensorflow_only(
    "tf.distribute (MirroredStrategy, MultiWorkerMirroredStrategy, checkpoints across strategies) is "
    "TensorFlow's; JAX's DataParallel is tests/test_distributed_jax.py")

ROOT = pathlib.Path(__file__).resolve().parents[1]
EPS32 = float(np.finfo(np.float32).eps)
RTOL = 8 * W.STEPS * EPS32
TIMEOUT_S = 120


def _env(**extra):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", **extra}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _kill(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _run(*args, env=None):
    """Start ``python -m tests._dist_worker ARGS`` in its own process group; killed on timeout or error."""
    return subprocess.Popen([sys.executable, "-m", "tests._dist_worker", *map(str, args)], cwd=ROOT,
                            env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _finish(procs):
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
        for p, out in zip(procs, outputs, strict=True):
            assert p.returncode == 0, f"worker failed (rc={p.returncode}):\n{out[-4000:]}"
    except subprocess.TimeoutExpired:
        pytest.fail(f"distribution worker ran past {TIMEOUT_S} s")
    finally:
        for p in procs:
            _kill(p)


@pytest.fixture(scope="module")
def _scenarios(tmp_path_factory):
    """Start the mirrored and checkpoint workers together (about one core each) and collect both."""
    base = tmp_path_factory.mktemp("dist")
    runs = {"mirrored": (base / "mirrored.npz",), "checkpoint": (base / "checkpoint.npz", base)}
    procs = {name: _run(name, *args) for name, args in runs.items()}
    try:
        _finish(list(procs.values()))
    finally:
        for p in procs.values():
            _kill(p)
    return {name: dict(np.load(args[0])) for name, args in runs.items()}


@pytest.fixture(scope="module")
def mirrored(_scenarios):
    return _scenarios["mirrored"]


@pytest.fixture(scope="module")
def checkpoint(_scenarios):
    return _scenarios["checkpoint"]


_pairs = workers.pairs


def _close(got, want):
    return workers.assert_close(got, want, RTOL)


@pytest.mark.parametrize("opt", ["adam", "sgd"])
@pytest.mark.spec("eq06", "eq09", "eq18", "eq20")
def test_mirrored_fit_matches_one_device(mirrored, opt):
    """Adam / SGD(momentum) + LinearDecay + Tikhonov + synchronized BatchNormalization: same weights
    (and BN moving statistics) under MirroredStrategy(2 CPUs) as on one device with the same global batch."""
    assert int(mirrored[f"{opt}/mirrored/iterations"]) == W.STEPS
    for key, single, strat in _pairs(mirrored, f"{opt}/single", f"{opt}/mirrored"):
        _close(strat, single)
        initial = mirrored[key.replace(f"{opt}/single", "initial", 1)]
        assert np.max(np.abs(single - initial)) > 1e3 * RTOL, key  # training moved every variable
    np.testing.assert_allclose(mirrored[f"{opt}/mirrored/loss"], mirrored[f"{opt}/single/loss"], rtol=RTOL)


@pytest.mark.spec("eq18")
def test_eq18_mirrored_custom_loop_matches_one_device(mirrored):
    """strategy.run loop with compute_average_loss over the global batch: same weights as one device."""
    for _, single, strat in _pairs(mirrored, "loop/single", "loop/mirrored"):
        _close(strat, single)
    for _, fit_single, loop_single in _pairs(mirrored, "adam/single", "loop/single"):
        _close(loop_single, fit_single)  # and the loop trains what model.fit trains


@pytest.mark.spec("eq20")
def test_eq20_mirrored_unsynchronized_batchnorm_differs_from_one_device(mirrored):
    """Per-replica statistics (the default, as Keras) are not the global batch's: the comparison above can fail."""
    gaps = [np.max(np.abs(u - s)) for _, s, u in _pairs(mirrored, "adam/single", "adam/mirrored_unsynchronized")]
    assert max(gaps) > 1000 * RTOL * 3.0, gaps


@pytest.mark.spec("eq20")
def test_eq20_batchnorm_synchronized_uses_global_batch_statistics(mirrored):
    x = mirrored["bn/x"].astype(np.float64)  # global batch of 16, 8 per replica
    want = sc.eq20_batchnorm_normalize(x, epsilon=1e-3)[0]
    np.testing.assert_allclose(mirrored["bn/sync=True/y"], want, rtol=1e-5, atol=1e-5)
    mean, var = sc.batchnorm_moving_update([0.0], [1.0], x, momentum=0.5)  # the global batch's statistics
    np.testing.assert_allclose(mirrored["bn/sync=True/moving_mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(mirrored["bn/sync=True/moving_variance"], var, rtol=1e-6)


@pytest.mark.spec("eq20")
def test_eq20_batchnorm_unsynchronized_normalises_each_replica_slice(mirrored):
    """synchronized=False: replica r computes what one device computes on its slice; the moving
    averages get the mean over replicas of the per-replica updates (aggregation="mean")."""
    x = mirrored["bn/x"].astype(np.float64)
    halves = np.split(x, 2)
    want = np.concatenate([sc.eq20_batchnorm_normalize(h, epsilon=1e-3)[0] for h in halves])
    np.testing.assert_allclose(mirrored["bn/sync=False/y"], want, rtol=1e-5, atol=1e-5)
    assert np.max(np.abs(mirrored["bn/sync=False/y"] - mirrored["bn/sync=True/y"])) > 1e-2
    updates = [sc.batchnorm_moving_update([0.0], [1.0], h, momentum=0.5) for h in halves]  # one per replica
    np.testing.assert_allclose(mirrored["bn/sync=False/moving_mean"], np.mean([u[0] for u in updates], axis=0),
                               rtol=1e-6)
    np.testing.assert_allclose(mirrored["bn/sync=False/moving_variance"], np.mean([u[1] for u in updates], axis=0),
                               rtol=1e-6)


@pytest.mark.spec("dropout")
def test_dropout_replicas_draw_independent_masks_replica0_as_one_device(mirrored):
    y = mirrored["dropout/mirrored"]  # ones through Dropout(0.5), 8 rows per replica
    r0, r1 = np.split(y != 0, 2)
    np.testing.assert_array_equal(np.split(y, 2)[0], mirrored["dropout/single_slice0"])
    assert set(np.unique(y)) <= {0.0, 2.0}
    # independent Bernoulli(1/2) masks agree on about half the entries: n = 2048, sd = sqrt(n)/2
    n = r0.size
    agree = int(np.sum(r0 == r1))
    assert abs(agree - n / 2) < 5 * math.sqrt(n) / 2, agree
    np.testing.assert_array_equal(mirrored["dropout/rng_state"], [11, 1])


@pytest.mark.parametrize("route", W.CHECKPOINT_ROUTES, ids="-".join)
@pytest.mark.spec("eq18")
def test_eq18_checkpoint_across_strategies(checkpoint, route):
    """.keras save under one context, load under another: weights and Adam's slots restore bit for bit.
    Continuing M steps equals N + M uninterrupted steps in the last context: bit for bit when the first
    N steps ran there too (a round trip through the other context), within RTOL otherwise (the first
    N steps ran with the other context's reduction order)."""
    tag = "-".join(route)
    saved = sorted(k for k in checkpoint if k.startswith(f"{tag}/saved/"))
    assert len(saved) == 18  # 7 model variables + iteration, 2 x 5 Adam slots (skipped_steps only with "skip")
    for k in saved:
        np.testing.assert_array_equal(checkpoint[k.replace("/saved/", "/restored/")], checkpoint[k])
    for _, uninterrupted, continued in _pairs(checkpoint, f"{tag}/uninterrupted", f"{tag}/continued"):
        if route[0] == route[-1]:
            np.testing.assert_array_equal(continued, uninterrupted)
        else:
            _close(continued, uninterrupted)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.mark.spec("eq18", "eq20")
def test_eq18_eq20_multiworker_mirrored_fit_matches_one_device(tmp_path):
    """Two worker processes on 127.0.0.1 (TF_CONFIG), one CPU each: same weights as one device."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    out = tmp_path / "chief.npz"
    procs = []
    try:
        for i in range(2):
            tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
            procs.append(_run("multiworker", out, env=_env(TF_CONFIG=tf_config)))
    finally:
        _finish(procs)
    result = dict(np.load(out))
    assert int(result["replicas"]) == 2
    for _, single, multi in _pairs(result, "single", "multiworker"):
        _close(multi, single)
