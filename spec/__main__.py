"""``python -m keras_optreg_spec``: the spec's self-check. For each erratum, one worked case, printed vs corrected."""

from __future__ import annotations

import sys

import numpy as np

from . import algorithms as A
from . import corrected as C
from . import printed as P
from .errata import ERRATA


def _cases():
    g = np.array([0.5, -0.5])
    yield "E-init2", P.eq02_he_uniform_bound(100), C.he_uniform_bound(100)
    yield "E-init3", P.eq03_truncated_normal_std(10), C.eq03_lecun_normal_sigma(100) * C.TRUNCNORM_STD_2
    yield "E-sum", P.eq07_minibatch_gradient(np.ones((2, 1)))[0], C.minibatch_gradient(np.ones((2, 1)))[0]
    # f(theta) = theta^2 / 2 from theta = 1: one momentum step from v = 0.
    yield "E-mom", A.printed_momentum_step(1.0, 0.0, np.ones((2,)) * 1.0, 0.1, 0.9)[0], \
        A.alg_momentum_step(1.0, 0.0, 1.0, 0.1, 0.9)[0]
    yield "E-rms", A.printed_rmsprop_step(1.0, 0.0, np.full((2,), 1e-3), 1e-3, 1e-6)[0], \
        A.alg_rmsprop_step(1.0, 0.0, 1e-3, 1e-3, 0.9, 1e-6)[0]
    yield "E-adam", A.printed_adam_step(np.zeros(2), 0 * g, 0 * g, np.stack([g, g]), 1e-3, 0.9, 0.999, 1e-8)[0], \
        A.alg_adam_step(np.zeros(2), 0 * g, 0 * g, 0, g)[0]
    w = [np.array([3.0, 4.0])]
    yield "E-reg", P.eq19_weight_norm_penalty(w, 0.1), C.eq19_tikhonov_penalty(w, 0.1)
    x = np.array([[1.0, 2.0], [1.0, 4.0]])
    yield "E-bn", P.eq20_batchnorm_normalize(x)[:, 0], C.eq20_batchnorm_normalize(x, axis=-1)[0][:, 0]


def main() -> int:
    with np.errstate(divide="ignore", invalid="ignore"):  # E-bn's printed form divides 0 by 0
        cases = {k: (p, c) for k, p, c in _cases()}
    width = max(len(e.id) for e in ERRATA)
    for e in ERRATA:
        p, c = cases[e.id]
        print(f"{e.id:<{width}}  {', '.join(e.equations):<16} printed={np.round(p, 6)!s:<24} "
              f"corrected={np.round(c, 6)!s:<24} {e.source}")
    differ = [e.id for e in ERRATA if not np.allclose(*cases[e.id], equal_nan=False)]
    print(f"{len(differ)} of {len(ERRATA)} errata show a difference on their worked case")
    return 0 if len(differ) == len(ERRATA) else 1


if __name__ == "__main__":
    sys.exit(main())
