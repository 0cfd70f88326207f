"""``optimizer.gradient_norm`` under ``MirroredStrategy``: the norm of the all-reduced (global-batch)
gradient, not one replica's share, with and without clipping, and ``nonfinite="skip"`` deciding on
that gradient (``tests/_optim_dist_worker.py``).

Tolerance: the strategy sums the two replicas' float32 gradients, each a sum over 8 examples, where
one device sums 16: each gradient element differs by a few float32 roundings (Higham 2002 eq. 4.4:
at most 16 u relative for 16 terms), and the norm of 7 elements adds (7 + 2) u; we allow 32 u.
One replica's share alone has about half the norm, so the check would catch it.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import workers

pytestmark = pytest.mark.tensorflow_only(
    "tf.distribute (MirroredStrategy) is TensorFlow's; JAX's DataParallel is tests/test_distributed_jax.py")

U = 2.0 ** -24
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return workers.run("tests._optim_dist_worker", tmp_path_factory.mktemp("optim_dist") / "norms.npz", "tensorflow",
                       TIMEOUT_S)


@pytest.mark.parametrize("case", ["loop/plain", "loop/clipnorm", "loop/global_clipnorm", "fit/plain"])
def test_gradient_norm_under_mirrored_strategy_is_the_global_batch_gradient_norm(result, case):
    np.testing.assert_allclose(result[case], result["want"], rtol=32 * U)
    if case.startswith("loop/"):
        np.testing.assert_array_equal(result[f"{case}/replicas"], result[case])


def test_nonfinite_skip_under_mirrored_strategy_skips_on_every_replica(result):
    """A NaN on one replica reaches the all-reduced gradient: the step is skipped everywhere, counted once,
    the weights unchanged, the recorded norm NaN."""
    assert int(result["skip/skipped_steps"]) == 1
    assert bool(result["skip/weights_unchanged"])
    assert np.isnan(result["skip/norm"])
