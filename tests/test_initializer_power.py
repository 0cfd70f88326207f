"""Statistical power of the initializer checks (eqs. 1-3): each check must reject wrong generators.

Every wrong generator is built from the library itself (a scaled draw, the other layout, the other
mode, an untruncated normal), on a (256, 1024) kernel: N = 262144 draws, fan_in 256 != fan_out 1024,
so that transposed fans change the law. The variance z-test's relative standard error is
sqrt((kurtosis - 1) / N) ~ 0.2 % for the uniform law; a 3 % scale error is a 6 % variance error.
Run with ``-s`` to print the power table.
"""

import keras
import numpy as np
import pytest

from keras_optreg import initializers as ki
from keras_optreg_spec import corrected
from tests import stats
from tests.test_initializers import _expected

SHAPE, FAN_IN, FAN_OUT = (256, 1024), 256, 1024
SEEDS = (0, 1, 2, 3, 4)
SCALE_ERROR = 1.03
HE_OVER_TORCH = float(corrected.he_uniform_bound(FAN_IN) / corrected.eq02_torch_linear_bound(FAN_IN))


def _draw(init, seed):
    return np.asarray(init(seed)(SHAPE, dtype="float64"))


def _normal_not_truncated(seed):
    # Same std as the correct law (sqrt(1/fan_in)) but untruncated: only the shape of the law differs.
    return np.asarray(keras.random.normal(SHAPE, stddev=float(np.sqrt(1.0 / FAN_IN)), dtype="float64", seed=seed))


# (law, generator) -> sampler(seed); the law's exact distribution comes from _expected(law, ...)
GENERATORS = {
    ("glorot", "correct"): lambda s: _draw(lambda s: ki.GlorotUniform(seed=s), s),
    ("glorot", "scale x1.03"): lambda s: SCALE_ERROR * _draw(lambda s: ki.GlorotUniform(seed=s), s),
    ("torch", "correct"): lambda s: _draw(lambda s: ki.TorchDefault(seed=s), s),
    ("torch", "scale x1.03"): lambda s: SCALE_ERROR * _draw(lambda s: ki.TorchDefault(seed=s), s),
    ("torch", "He bound sqrt(6/fan_in)"): lambda s: HE_OVER_TORCH * _draw(lambda s: ki.TorchDefault(seed=s), s),
    ("torch", "transposed fans"): lambda s: _draw(lambda s: ki.TorchDefault(seed=s, layout="torch"), s),
    ("flax", "correct"): lambda s: _draw(lambda s: ki.FlaxDefault(seed=s), s),
    ("flax", "scale x1.03"): lambda s: SCALE_ERROR * _draw(lambda s: ki.FlaxDefault(seed=s), s),
    ("flax", "transposed fans (fan_out)"): lambda s: _draw(lambda s: ki.FlaxDefault(seed=s, mode="fan_out"), s),
    ("flax", "no variance correction"): lambda s: _draw(lambda s: ki.FlaxDefault(seed=s, variance_corrected=False), s),
    ("flax", "normal, not truncated"): _normal_not_truncated,
}

# Which checks must reject a generator on every seed. The untruncated normal has the correct
# variance by construction, so only the KS test can see it.
MUST_REJECT = {key: ({"variance_z", "ks"} if key[1] != "correct" else set()) for key in GENERATORS}
MUST_REJECT[("flax", "normal, not truncated")] = {"ks"}


@pytest.fixture(scope="module")
def power_table():
    table = {}
    for (law, gen), sampler in GENERATORS.items():
        var, kurt, cdf, _ = _expected(law, FAN_IN, FAN_OUT)
        rejects = {"variance_z": 0, "ks": 0}
        for seed in SEEDS:
            for check, ok in stats.checks_pass(sampler(seed), var, kurt, cdf).items():
                rejects[check] += not ok
        table[(law, gen)] = rejects
    lines = [f"| law | generator | variance z rejects (of {len(SEEDS)} seeds) | KS rejects |", "|---|---|---|---|"]
    lines += [f"| {law} | {gen} | {r['variance_z']} | {r['ks']} |" for (law, gen), r in table.items()]
    print("\n" + "\n".join(lines))
    return table


@pytest.mark.spec("eq01", "eq02", "eq03")
@pytest.mark.parametrize("key", sorted(GENERATORS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_eq01_eq02_eq03_checks_reject_wrong_generators(power_table, key):
    rejects = power_table[key]
    for check in ("variance_z", "ks"):
        if check in MUST_REJECT[key]:
            assert rejects[check] == len(SEEDS), f"{key}: {check} missed a wrong generator: {rejects}"
    if key[1] == "correct":
        assert rejects == {"variance_z": 0, "ks": 0}, f"{key}: the correct law was rejected: {rejects}"
    else:
        assert any(rejects[c] == len(SEEDS) for c in rejects), f"{key}: no check rejects it: {rejects}"
