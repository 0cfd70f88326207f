"""Spec self-tests: where the lecture has no erratum, its printed equation equals the source's.

keras_optreg_spec.printed and keras_optreg_spec.corrected are two independent transcriptions (the lecture;
GBC16's algorithm boxes and the papers), so agreement here is evidence, not a tautology.
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from keras_optreg.conformance import strategies as S
from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg_spec import corrected as C
from keras_optreg_spec import errata
from keras_optreg_spec import printed as P

NO_ERRATUM = ("eq01", "eq04", "eq05", "eq06", "eq08", "eq14", "eq15", "eq20")


def test_no_erratum_list_matches_the_registry():
    """eq20's affine line is correct; its normalisation line carries E-bn."""
    for eq in NO_ERRATUM:
        assert errata.errata_for(eq) == () or eq == "eq20", eq
    assert [e.id for e in errata.errata_for("eq20")] == ["E-bn"]


@given(m=S.fans, n=S.fans, u=S.arrays((5,), 0.0, 0.999999))
def test_eq01_printed_equals_glorot_bengio_eq16(m, n, u):
    assert_matches_spec(P.eq01_glorot_uniform_bound(m, n), C.eq01_glorot_uniform_bound(m, n), eq="eq01",
                    inputs={"m": m, "n": n}, rtol=1e-14)
    assert_matches_spec(P.eq01_glorot_uniform(u, m, n), C.eq01_glorot_uniform(u, m, n), eq="eq01",
                    inputs={"m": m, "n": n, "u": u}, rtol=1e-13, atol=1e-15)


@given(m=S.fans)
def test_eq02_printed_bound_equals_torch_linear_default(m):
    """E-init2 is a naming erratum: the bound itself is PyTorch's."""
    assert_matches_spec(P.eq02_he_uniform_bound(m), C.eq02_torch_linear_bound(m), eq="eq02", inputs={"m": m},
                    rtol=1e-14)


@given(shape=S.shapes(), m=st.integers(1, 9), data=st.data())
def test_eq04_printed_equals_gbc16_alg81_gradient(shape, m, data):
    grads = data.draw(S.arrays((m, *shape)))
    assert_matches_spec(P.eq04_minibatch_gradient(grads), C.minibatch_gradient(grads), eq="eq04",
                    inputs={"grads": grads}, rtol=1e-12, atol=1e-12)


@given(shape=S.shapes(), eps=S.learning_rates, data=st.data())
def test_eq05_printed_equals_gbc16_alg81_update(shape, eps, data):
    theta, g = data.draw(S.arrays(shape)), data.draw(S.scaled_arrays(shape))
    assert_matches_spec(P.eq05_sgd_update(theta, g, eps), C.eq05_sgd_update(theta, g, eps), eq="eq05",
                    inputs={"theta": theta, "g": g, "eps": eps}, rtol=1e-14, atol=1e-300)


@given(k=st.integers(-1000, 3000), eps_0=S.learning_rates, eps_tau=S.learning_rates, tau=st.integers(1, 1000))
def test_eq06_printed_equals_gbc16_eq814(k, eps_0, eps_tau, tau):
    assert_matches_spec(P.eq06_linear_decay(k, eps_0, eps_tau, tau), C.eq06_linear_decay(k, eps_0, eps_tau, tau),
                    eq="eq06", inputs={"k": k, "eps_0": eps_0, "eps_tau": eps_tau, "tau": tau},
                    rtol=1e-12, atol=1e-15)


@given(shape=S.shapes(), alpha=S.unit_interval, eps=S.learning_rates, data=st.data())
def test_eq08_printed_equals_gbc16_alg82_velocity(shape, alpha, eps, data):
    v, g = data.draw(S.arrays(shape)), data.draw(S.scaled_arrays(shape))
    assert_matches_spec(P.eq08_momentum_velocity(v, g, alpha, eps), C.eq08_momentum_velocity(v, g, alpha, eps),
                    eq="eq08", inputs={"v": v, "g": g, "alpha": alpha, "eps": eps}, rtol=1e-14, atol=1e-300)


@given(shape=S.shapes(), rho1=S.unit_interval, rho2=S.unit_interval, data=st.data())
def test_eq14_eq15_printed_equal_gbc16_alg87_moments(shape, rho1, rho2, data):
    s, g = data.draw(S.arrays(shape)), data.draw(S.scaled_arrays(shape))
    r = np.abs(data.draw(S.arrays(shape)))
    assert_matches_spec(P.eq14_adam_first_moment(s, g, rho1), C.eq14_adam_first_moment(s, g, rho1), eq="eq14",
                    inputs={"s": s, "g": g, "rho1": rho1}, rtol=1e-13, atol=1e-300)
    assert_matches_spec(P.eq15_adam_second_moment(r, g, rho2), C.eq15_adam_second_moment(r, g, rho2), eq="eq15",
                    inputs={"r": r, "g": g, "rho2": rho2}, rtol=1e-13, atol=1e-300)


@given(shape=S.shapes(), data=st.data())
def test_eq20_affine_printed_equals_ioffe_szegedy_alg1(shape, data):
    x = data.draw(S.arrays(shape))
    gamma, beta = data.draw(S.arrays(shape[-1:])), data.draw(S.arrays(shape[-1:]))
    assert_matches_spec(P.eq20_batchnorm_affine(x, gamma, beta), C.eq20_batchnorm_affine(x, gamma, beta),
                    eq="eq20", inputs={"x": x, "gamma": gamma, "beta": beta}, rtol=1e-14, atol=1e-9)


@given(x=S.arrays((6, 3), -10, 10).filter(lambda a: (a.std(axis=0) > 1e-3).all()))
def test_eq20_printed_equals_corrected_per_position_without_epsilon(x):
    """On a 2-D (batch, feature) input with epsilon = 0, the literal per-position reading and
    Ioffe & Szegedy's per-feature statistics coincide: E-bn is about epsilon and conv maps."""
    assert_matches_spec(P.eq20_batchnorm_normalize(x), C.eq20_batchnorm_normalize(x, axis=-1, epsilon=0.0)[0],
                    eq="eq20", inputs={"x": x}, rtol=1e-9, atol=1e-9)
