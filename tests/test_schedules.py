"""keras_optreg.LinearDecay against the lecture's eq. (6) (keras_optreg_spec.corrected.eq06_linear_decay)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

import keras_optreg
from keras_optreg_spec import corrected as C
from tests import strategies as S
from tests.assertions import assert_conforms

LR = st.floats(0.0, 1.0, allow_subnormal=False)


@given(eps0=LR, eps_tau=LR, tau=st.integers(1, 10_000), k=st.integers(-100, 20_000))
def test_eq06_linear_decay_matches_spec(eps0, eps_tau, tau, k):
    sched = keras_optreg.LinearDecay(eps0, eps_tau, tau)
    got = float(sched(tf.constant(k)))
    kk = min(max(k, 0), tau)  # clamped: negative steps -> eps_0, after tau -> eps_tau
    want = C.eq06_linear_decay(kk, S.as_float32(eps0), S.as_float32(eps_tau), tau)
    assert_conforms(got, want, eq="eq06", rtol=1e-5, atol=1e-7, inputs={"eps0": eps0, "eps_tau": eps_tau,
                                                                          "tau": tau, "k": k})


def test_eq06_negative_steps_clamp_unlike_keras_polynomial_decay():
    ours = keras_optreg.LinearDecay(0.01, 0.001, 500)
    keras_poly = keras.optimizers.schedules.PolynomialDecay(0.01, 500, 0.001)
    assert float(ours(-100)) == np.float32(0.01)
    assert float(keras_poly(-100)) > 0.01  # Keras extrapolates above the initial rate
    assert float(ours(500)) == float(ours(10_000)) == np.float32(0.001)


def test_eq06_linear_decay_in_an_optimizer_under_xla_and_round_trip():
    sched = keras_optreg.LinearDecay(0.1, 0.0, 3)
    assert keras_optreg.LinearDecay.from_config(sched.get_config()).get_config() == sched.get_config()
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(sched))
    assert isinstance(restored, keras_optreg.LinearDecay)
    opt = keras_optreg.SGD(sched)
    v = keras.Variable(np.zeros(1, np.float32))
    opt.build([v])
    step = tf.function(lambda: opt.apply([tf.ones(1)], [v]), jit_compile=True)
    for _ in range(5):
        step()
    # SGD with g = 1: theta = -sum_k eps_k over k = 0..4, eps = 0.1, 0.0667, 0.0333, 0, 0 (eq. 6)
    want = -sum(C.eq06_linear_decay(min(k, 3), np.float32(0.1), 0.0, 3) for k in range(5))
    assert_conforms(v.numpy(), [want], eq="eq06", rtol=1e-5)
