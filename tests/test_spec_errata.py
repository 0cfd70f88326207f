"""Spec self-tests: every erratum is real.

For each erratum: a property that holds for all inputs and shows the consequence the registry
states, and ``hypothesis.find`` of the smallest input where printed and corrected differ
materially (``python -m tests.test_spec_errata`` prints those counterexamples).
"""

import math

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from keras_optreg.conformance import strategies as S
from keras_optreg_spec import algorithms as A
from keras_optreg_spec import corrected as C
from keras_optreg_spec import errata
from keras_optreg_spec import printed as P

FIND_SETTINGS = settings(max_examples=2000, database=None, derandomize=True)


def _materially_different(a, b, rel=0.01):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return bool(np.any(~np.isfinite(a) != ~np.isfinite(b)) or
                np.any(np.abs(a - b) > rel * np.maximum(np.abs(a), np.abs(b))))


# ---- one search per erratum: (strategy, condition, description) ----------------------------

def _init2(m):
    return _materially_different(P.eq02_he_uniform_bound(m), C.he_uniform_bound(m))


def _init3(fans):
    fan_in, fan_out = fans
    # the std each form actually produces after truncation
    return _materially_different(P.eq03_truncated_normal_std(fan_out) * C.TRUNCNORM_STD_2,
                                 C.eq03_lecun_normal_sigma(fan_in) * C.TRUNCNORM_STD_2)


def _sum(grads):
    return _materially_different(P.eq07_minibatch_gradient(grads), C.minibatch_gradient(grads))


def _mom(args):
    theta, g, eps, alpha = args
    return _materially_different(P.eq09_momentum_update(theta, P.eq08_momentum_velocity(0.0, g, alpha, eps)),
                                 C.eq09_momentum_update(theta, C.eq08_momentum_velocity(0.0, g, alpha, eps)))


def _rms(args):
    theta, g, eps = args
    printed = P.eq12_rmsprop_update(theta, g, P.eq11_rmsprop_accumulator(0.0, g), eps, 1e-6)
    corrected, _ = A.alg_rmsprop_step(theta, 0.0, g, eps, 0.9, 1e-6)
    return _materially_different(printed, corrected)


def _adam(g):
    printed, _, _ = A.printed_adam_step(0.0, 0.0, 0.0, np.array([g, g]), 1e-3, 0.9, 0.999, 1e-8)
    corrected, *_ = A.alg_adam_step(0.0, 0.0, 0.0, 0, g)
    return _materially_different(printed, corrected)


def _reg(w):
    return _materially_different(P.eq19_weight_norm_penalty([w], 0.01), C.eq19_tikhonov_penalty([w], 0.01))


def _bn(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        printed = P.eq20_batchnorm_normalize(x)
    return _materially_different(printed, C.eq20_batchnorm_normalize(x, axis=-1)[0])


SEARCHES = {
    "E-init2": (S.fans, _init2),
    "E-init3": (st.tuples(S.fans, S.fans), _init3),
    "E-sum": (st.integers(1, 5).flatmap(lambda m: S.arrays((m + 1, 1), -10, 10)), _sum),
    "E-mom": (st.tuples(S.floats(-10, 10), S.floats(-10, 10), S.learning_rates, S.unit_interval), _mom),
    "E-rms": (st.tuples(S.floats(-10, 10), S.floats(-10, 10), S.learning_rates), _rms),
    "E-adam": (S.floats(-10, 10), _adam),
    "E-reg": (S.arrays((2,), -10, 10), _reg),
    "E-bn": (S.arrays((2, 1), -10, 10), _bn),
}


def counterexample(erratum_id):
    strategy, condition = SEARCHES[erratum_id]
    return find(strategy, condition, settings=FIND_SETTINGS)


def test_every_registered_erratum_has_a_search():
    assert set(SEARCHES) == {e.id for e in errata.ERRATA}
    assert len(errata.ERRATA) == 8


@pytest.mark.parametrize("erratum_id", sorted(SEARCHES))
def test_errata_hypothesis_finds_a_material_difference(erratum_id):
    strategy, condition = SEARCHES[erratum_id]
    example = counterexample(erratum_id)
    assert condition(example)


# ---- the consequence each registry entry states, as a property -----------------------------


@given(m=S.fans)
def test_eq02_E_init2_he_uniform_is_sqrt6_times_the_printed_bound(m):
    assert math.isclose(C.he_uniform_bound(m) / P.eq02_he_uniform_bound(m), math.sqrt(6), rel_tol=1e-13)
    # He et al.'s variance 2/fan_in: a uniform law with the printed bound has variance 1/(3m) instead.
    assert math.isclose(C.he_uniform_bound(m) ** 2 / 3, C.he_normal_std(m) ** 2, rel_tol=1e-13)


@given(n=S.fans)
def test_eq03_E_init3_printed_std_after_truncation_is_0_88_of_the_target(n):
    """Same fan on both sides: the printed sigma is the untruncated one, so the weights' std is
    0.8796 sqrt(1/n) and their variance 0.774/n, not 1/n."""
    effective = P.eq03_truncated_normal_std(n) * C.truncated_standard_normal_std(2.0)
    assert math.isclose(effective / math.sqrt(1.0 / n), C.TRUNCNORM_STD_2, rel_tol=1e-14)
    corrected = C.eq03_lecun_normal_sigma(n) * C.truncated_standard_normal_std(2.0)
    assert math.isclose(corrected, math.sqrt(1.0 / n), rel_tol=1e-14)


def test_eq03_E_init3_monte_carlo_confirms_the_truncated_std():
    """2e5 draws, fixed seed: the sample variance of the printed sampler (n = 1) is
    0.8796^2 = 0.774, the corrected one 1.0. Bound: 6 standard errors of the variance,
    sqrt((mu4 - sigma^4)/N) with mu4 of the truncated normal (<= 3 sigma^4)."""
    rng = np.random.default_rng(20230927)
    z = rng.standard_normal((8, 200_000))
    n_draws = z.shape[1]
    for sampler, target in ((lambda: P.eq03_truncated_normal(z, 1), C.TRUNCNORM_STD_2 ** 2),
                            (lambda: C.eq03_lecun_normal(z, 1), 1.0)):
        w = sampler()
        assert not np.isnan(w).any()
        se = math.sqrt(3 * target**2 / n_draws)
        assert abs(w.var() - target) < 6 * se, (w.var(), target, se)
    # the two targets lie more than two 6-SE windows apart, so the check tells them apart
    assert abs(C.TRUNCNORM_STD_2 ** 2 - 1.0) > 12 * math.sqrt(3 / n_draws)


@given(m=st.integers(1, 64), c=S.floats(-10, 10).filter(lambda c: abs(c) > 1e-3))
def test_eq07_eq10_eq13_E_sum_scales_the_gradient_by_m_plus_1_over_m(m, c):
    grads = np.full((m + 1, 1), c)
    for eq in (P.eq07_minibatch_gradient, P.eq10_minibatch_gradient, P.eq13_minibatch_gradient):
        assert math.isclose(eq(grads)[0] / c, (m + 1) / m, rel_tol=1e-13)
    assert math.isclose(P.eq04_minibatch_gradient(grads)[0], c, rel_tol=1e-13)


@given(a=S.floats(0.1, 10), theta=S.floats(-10, 10).filter(lambda t: abs(t) > 1e-3),
       alpha=S.unit_interval, data=st.data())
def test_eq09_E_mom_printed_momentum_increases_a_convex_loss(a, theta, alpha, data):
    """f = a theta^2 / 2 with eps a < 1: one printed step from v = 0 raises f, Alg. 8.2 lowers it."""
    eps = data.draw(st.floats(1e-4, 0.99 / a))
    f = lambda t: 0.5 * a * t * t  # noqa: E731
    printed, _ = A.printed_momentum_step(theta, 0.0, np.array([a * theta, a * theta]), eps, alpha)
    corrected, _ = A.alg_momentum_step(theta, 0.0, a * theta, eps, alpha)
    assert f(printed) > f(theta) > f(corrected)


@given(g=S.floats(-10, 10).filter(lambda g: abs(g) > 1e-3), c=S.log_uniform(-3, 3))
def test_eq11_eq12_E_rms_printed_step_is_not_scale_free(g, c):
    """Alg. 8.5's first step -eps g / sqrt(delta + (1-rho) g^2) is invariant to g -> c g (delta -> 0);
    the printed -eps g/(delta + g^2) scales as 1/c. The printed accumulator is AdaGrad's."""
    eps, rho, delta = 1e-3, 0.9, 1e-12
    step = lambda fn, gg: fn(gg) - 0.0  # noqa: E731
    corrected = lambda gg: A.alg_rmsprop_step(0.0, 0.0, gg, eps, rho, delta)[0]  # noqa: E731
    printed = lambda gg: P.eq12_rmsprop_update(0.0, gg, P.eq11_rmsprop_accumulator(0.0, gg), eps, delta)  # noqa: E731
    assert math.isclose(step(corrected, c * g), step(corrected, g), rel_tol=1e-5)
    assert math.isclose(step(printed, c * g) * c, step(printed, g), rel_tol=1e-5)
    assert P.eq11_rmsprop_accumulator(1.0, g) == C.adagrad_accumulator(1.0, g)


@given(g=S.floats(-10, 10).filter(lambda g: abs(g) > 1e-2))
def test_eq16_eq17_eq18_E_adam_printed_first_step_ignores_the_gradient_sign(g):
    """From zero state the printed step is -eps g^2/(delta + g^2) (with E-sum's factor 2 on m = 1):
    theta always falls by ~eps, while Kingma & Ba's step is -eps sign(g)."""
    printed, _, _ = A.printed_adam_step(0.0, 0.0, 0.0, np.array([g, g]), 1e-3, 0.9, 0.999, 1e-8)
    corrected, *_ = A.alg_adam_step(0.0, 0.0, 0.0, 0, g)
    assert math.isclose(printed, -1e-3, rel_tol=1e-4)
    assert math.isclose(corrected, -1e-3 * math.copysign(1.0, g), rel_tol=1e-4)


@given(rho=st.floats(0.01, 0.999), t=st.integers(2, 100))
def test_eq16_E_adam_missing_power_leaves_the_bias(rho, t):
    """For a constant gradient the EMA is c(1 - rho^t): only the power t removes the bias."""
    s = 1.0 - rho**t
    assert math.isclose(C.eq16_adam_first_moment_hat(s, rho, t), 1.0, rel_tol=1e-9)
    assert not math.isclose(P.eq16_adam_first_moment_hat(s, rho), 1.0, rel_tol=1e-3)


@given(w=S.arrays((3, 2), -10, 10).filter(lambda w: np.linalg.norm(w) > 1e-2), c=S.log_uniform(-3, 3))
def test_eq19_E_reg_printed_penalty_pulls_with_constant_force(w, c):
    """d/dW lam ||W|| = lam W/||W|| has norm lam whatever ||W|| (group lasso: reaches 0 exactly);
    d/dW lam/2 ||W||^2 = lam W shrinks with W (Tikhonov: decays, never reaches 0).
    Checked by central finite differences of the spec functions."""
    lam, h = 0.01, 1e-6

    def grad(fn, x):
        out = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[idx] = h * max(1.0, float(np.linalg.norm(x)))  # step ~ ||x||: rounding eps*f/e stays small
            out[idx] = (fn([x + e], lam) - fn([x - e], lam)) / (2 * e[idx])
        return out

    x = c * w
    assert math.isclose(np.linalg.norm(grad(P.eq19_weight_norm_penalty, x)), lam, rel_tol=1e-4)
    # FD rounding error ~ eps * f / step, f ~ lam ||x||^2: bound it relative to the gradient norm lam ||x||
    np.testing.assert_allclose(grad(C.eq19_tikhonov_penalty, x), lam * x, rtol=1e-4,
                               atol=1e-6 * lam * np.linalg.norm(x))


@given(seed=st.integers(0, 2**32 - 1), scale=S.log_uniform(-2, 2))
def test_eq20_E_bn_per_position_statistics_differ_from_per_channel(seed, scale):
    """On a conv map, Ioffe & Szegedy normalise each channel over N*H*W values; the literal reading
    normalises each (h, w, c) over N values: every position then has mean 0 over the batch, which
    the per-channel form does not impose (continuous draws: per-position means are almost surely
    non-zero)."""
    x = scale * np.random.default_rng(seed).standard_normal((4, 3, 3, 2))
    printed = P.eq20_batchnorm_normalize(x)
    corrected = C.eq20_batchnorm_normalize(x, axis=-1, epsilon=0.0)[0]
    np.testing.assert_allclose(printed.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(corrected.mean(axis=(0, 1, 2)), 0.0, atol=1e-9)
    assert np.abs(corrected.mean(axis=0)).max() > 1e-6


def test_eq20_E_bn_printed_form_is_nan_on_a_constant_feature():
    x = np.array([[1.0, 2.0], [1.0, 5.0]])
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.isnan(P.eq20_batchnorm_normalize(x)[:, 0]).all()
    assert np.isfinite(C.eq20_batchnorm_normalize(x, axis=-1)[0]).all()


if __name__ == "__main__":
    for eid in sorted(SEARCHES):
        print(f"{eid}: {counterexample(eid)!r}")
