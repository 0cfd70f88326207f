"""Bad-input rows: the schedule LinearDecay (eq. 6): every constraint checked at construction."""

from __future__ import annotations

import keras
import numpy as np

import keras_optreg
from keras_optreg_spec import corrected
from tests.backend import float64_on
from tests.badinput import Case

NAN, INF = float("nan"), float("inf")
LD = keras_optreg.LinearDecay


def _rates_at(sched, steps, eps0, eps_tau, tau):
    """The schedule at int64 ``steps`` (on JAX inside ``jax.enable_x64``) equals eq. (6) (clamped to [0, tau]) on
    the float32-rounded rates."""
    with float64_on("int64"):
        got = keras.ops.convert_to_numpy(sched(keras.ops.convert_to_tensor(np.array(steps), "int64")))
    got = np.asarray(got, np.float64)
    want = [corrected.eq06_linear_decay(min(max(k, 0), tau), float(np.float32(eps0)), float(np.float32(eps_tau)), tau)
            for k in steps]
    np.testing.assert_allclose(got, want, rtol=0, atol=8 * 2.0 ** -24 * (eps0 + eps_tau))  # as tests/test_schedules.py


CASES = []
for arg in ("initial_learning_rate", "final_learning_rate"):
    for bad, error, words in ((1e39, ValueError, ("float32", "1e+39")), (-0.1, ValueError, ("-0.1",)),
                              (NAN, ValueError, ("nan",)), (INF, ValueError, ("inf",)), ("0.1", TypeError, ("'0.1'",)),
                              (None, TypeError, ("None",)), (True, TypeError, ("True",)),
                              (1e-50, ValueError, ("float32", "1e-50")), (1e-45, ValueError, ("float32", "1e-45"))):
        CASES.append(Case(f"schedules/linear_decay-{arg}-{bad!r}", lambda arg=arg, bad=bad: LD(**{arg: bad}), error,
                          (arg, *words),
                          keras="PolynomialDecay(1e39, 10): accepted; unclear TensorFlow ValueError at the first call"
                          if bad == 1e39 else ""))
for bad, error, words in ((0, ValueError, ("0",)), (-5, ValueError, ("-5",)),
                          (2 ** 1024, ValueError, (str(2 ** 1024), "int64")),
                          (2 ** 63, ValueError, (str(2 ** 63), "int64")),
                          (500.0, TypeError, ("500.0",)), (True, TypeError, ("True",)), ("500", TypeError, ("'500'",)),
                          (None, TypeError, ("None",)), (NAN, TypeError, ("nan",))):
    CASES.append(Case(f"schedules/linear_decay-decay_steps-{bad!r}"[:80], lambda bad=bad: LD(0.1, 0.01, bad), error,
                      ("decay_steps", *words),
                      keras="PolynomialDecay(0.1, 2**1024): accepted; 'out-of-range integer' at the first call"
                      if bad == 2 ** 1024 else ""))
for kw, value in (("end_learning_rate", 0.01), ("power", 2.0), ("cycle", True)):
    CASES.append(Case(f"schedules/linear_decay-polynomial-decay-keyword-{kw}", lambda kw=kw, value=value: LD(
        0.1, **{kw: value}), TypeError, (kw,)))
CASES += [
    Case("schedules/linear_decay-name-int", lambda: LD(name=3), TypeError, ("name", "3")),
    Case("schedules/linear_decay-from-config-extra-key",
         lambda: LD.from_config({**LD().get_config(), "power": 1.0}), TypeError, ("power",)),
    Case("schedules/linear_decay-decay_steps-int64-max", lambda: LD(0.1, 0.02, 2 ** 63 - 1), None,
         check=lambda s: _rates_at(s, [-1, 0, 2 ** 62, 2 ** 63 - 1], 0.1, 0.02, 2 ** 63 - 1)),
    Case("schedules/linear_decay-decay_steps-numpy-int", lambda: LD(0.1, 0.02, np.int64(8)), None,
         check=lambda s: _rates_at(s, [0, 3, 8, 20], 0.1, 0.02, 8)),
    Case("schedules/linear_decay-rates-float32-tiny-normal", lambda: LD(float(np.finfo(np.float32).tiny), 0.0, 4), None,
         check=lambda s: _rates_at(s, [0, 4], float(np.finfo(np.float32).tiny), 0.0, 4)),
]
