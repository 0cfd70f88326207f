"""The public checking API, ``conformance.verify`` / ``assert_conforms``, on each kind of component.

Each kind discriminates: a component in the spec's form conforms, a near miss (3 % off) is caught as
``unexplained``, another framework's form gets its convention named. The verdicts are the tool's
own Hypothesis searches (derandomized) with few examples.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import settings

import keras_optreg
from keras_optreg import conformance
from keras_optreg.conformance import engine as E

N = 10  # examples per search: each near miss below fails on (almost) every example


@pytest.mark.spec("eq19")
def test_keras_l2_deviates_from_tikhonov_by_the_missing_half_and_a_3_percent_penalty_is_caught():
    v = conformance.verify(keras.regularizers.L2, "eq19", max_examples=N)
    assert v.status == E.DEVIATES and v.convention.startswith("no 1/2"), v
    expected, got = float(v.counterexample["expected"]), float(v.counterexample["got"])
    assert got == pytest.approx(2.0 * expected, rel=1e-5)  # L2(l) = l sum w^2 = 2 (l/2) sum w^2
    near = conformance.verify(lambda lam: keras.regularizers.L2(0.515 * lam), "eq19", max_examples=N)
    assert near.unexplained, near  # 0.515 l sum w^2 = 1.03 (l/2) sum w^2
    assert conformance.verify(keras_optreg.regularizers.Tikhonov, "eq19", max_examples=N).conforms


@pytest.mark.spec("eq01")
def test_keras_glorot_uniform_conforms_to_eq1_and_three_percent_more_variance_is_caught():
    assert conformance.assert_conforms(keras.initializers.GlorotUniform, "eq01", max_examples=N).conforms
    # Glorot's law is VarianceScaling(1, fan_avg, uniform); scale 1.03: the bound is sqrt(1.03) = 1.015 times
    # eq. (1)'s, and max |w| of >= 4096 draws lies within b (1 +- 2e-6) of b (1 - 10/n) .. b (module docstring)
    v = conformance.verify(lambda seed: keras.initializers.VarianceScaling(1.03, "fan_avg", "uniform", seed=seed),
                           "eq01", max_examples=N)
    assert v.unexplained, v


@pytest.mark.spec("eq06")
def test_polynomial_decay_power_one_conforms_to_eq6_and_power_1_03_is_caught():
    def schedule(power):
        return lambda a, b, t: keras.optimizers.schedules.PolynomialDecay(a, t, b, power=power)

    assert conformance.verify(schedule(1.0), "eq06", max_examples=N).conforms
    v = conformance.verify(schedule(1.03), "eq06", max_examples=N)
    assert v.unexplained, v  # at k = tau/2: 0.5^1.03 = 0.490 of the way, not 0.5


@pytest.mark.spec("dropout")
def test_keras_dropout_conforms_and_one_dropping_more_than_its_rate_is_caught():
    assert conformance.verify(keras.layers.Dropout, "dropout", max_examples=N).conforms
    v = conformance.verify(lambda rate, seed: keras.layers.Dropout(min(1.1 * rate, 0.95), seed=seed), "dropout",
                           max_examples=N)
    assert v.unexplained, v  # kept values scaled by 1/(1 - 1.1 rate), not 1/(1 - rate)


@pytest.mark.spec("eq18", "adamw")
def test_optimizer_rows_by_spec_id_and_by_row_key():
    v = conformance.verify(keras.optimizers.Adam, "eq18", max_examples=N)
    assert v.convention.startswith("epsilon-hat"), v
    assert conformance.verify(keras_optreg.Adam, "adamw", max_examples=N).conforms  # weight_decay is drawn
    with pytest.raises(AssertionError, match="deviates: no 1/2"):  # the verdict's cell, counterexample included
        conformance.assert_conforms(keras.regularizers.L2, "eq19", max_examples=N)


def test_the_users_hypothesis_settings_decide_the_number_of_examples():
    v = conformance.verify(keras_optreg.regularizers.Tikhonov, "weight_norm",
                           settings=settings(max_examples=3, derandomize=True))
    assert v.status == E.DEVIATES and v.convention.startswith("Tikhonov"), v  # the row is the printed, unsquared norm
    ok = conformance.verify(keras_optreg.regularizers.WeightNorm, "weight_norm",
                            settings=settings(max_examples=7, derandomize=True, database=None))
    assert ok.conforms and ok.examples == 7, ok
    assert conformance.verify(keras_optreg.regularizers.WeightNorm, "weight_norm", max_examples=4,
                              settings=settings(max_examples=7, derandomize=True)).examples == 4


def test_rows_lists_every_row_verify_takes():
    from keras_optreg.conformance import api, registry

    rows = api.rows()
    assert set(rows) == {k for k, *_ in registry.rows()} - {"minibatch_gradient"}
    assert np.all([isinstance(label, str) for _, label in rows.values()])
