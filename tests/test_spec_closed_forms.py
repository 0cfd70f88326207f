"""Spec self-tests: closed forms worked by hand, each with its derivation in the docstring."""

import math

import numpy as np
import pytest

from keras_optreg.conformance.compare import assert_matches_spec
from keras_optreg_spec import algorithms as A
from keras_optreg_spec import corrected as C
from keras_optreg_spec import printed as P


@pytest.mark.parametrize("eq06", [P.eq06_linear_decay, C.eq06_linear_decay], ids=["printed", "corrected"])
@pytest.mark.parametrize("k, expected", [(0, 0.01), (250, 0.0055), (500, 0.001), (1000, 0.001)])
def test_eq06_lecture_example(eq06, k, expected):
    """The lecture's example eps_0 = .01, eps_tau = .001, tau = 500: alpha = k/500, so
    k=250 gives .5*.01 + .5*.001 = .0055; k >= 500 stays at .001 ("remains the same")."""
    assert_matches_spec(eq06(k, 0.01, 0.001, 500), expected, eq="eq06", inputs={"k": k}, rtol=1e-15)


def test_eq01_glorot_bound_for_square_layer():
    """m = n: sqrt(6/(2n)) = sqrt(3/n); m = n = 3 gives exactly 1, m = n = 300 gives 0.1."""
    assert_matches_spec(P.eq01_glorot_uniform_bound(3, 3), 1.0, eq="eq01", rtol=1e-15)
    assert_matches_spec(P.eq01_glorot_uniform_bound(300, 300), 0.1, eq="eq01", rtol=1e-15)


def test_eq01_sampler_maps_unit_interval_onto_support():
    """u = 0 -> -b, u = 1/2 -> 0, u -> 1 -> b."""
    b = P.eq01_glorot_uniform_bound(10, 14)
    assert_matches_spec(P.eq01_glorot_uniform([0.0, 0.5, 1.0], 10, 14), [-b, 0.0, b], eq="eq01", rtol=1e-15)


def test_eq02_bound_is_torch_kaiming_uniform_with_a_sqrt5():
    """kaiming_uniform_(a=sqrt 5): gain sqrt(2/(1+5)) = sqrt(1/3), bound gain*sqrt(3/m) = 1/sqrt(m); m=4 -> 0.5."""
    assert_matches_spec(P.eq02_he_uniform_bound(4), 0.5, eq="eq02", rtol=1e-15)
    assert_matches_spec(C.eq02_torch_linear_bound(4), 0.5, eq="eq02", rtol=1e-15)


def test_eq03_truncation_constant_is_the_std_of_a_truncated_standard_normal():
    """jax's 0.87962566103423978 = sqrt(1 - 2*2*phi(2)/erf(sqrt 2)) (truncated-normal variance)."""
    assert math.isclose(C.truncated_standard_normal_std(2.0), C.TRUNCNORM_STD_2, rel_tol=1e-15)


def test_eq03_sampler_takes_the_first_draw_within_two_sigma():
    """Draws for two positions: (3.0, 0.5) -> 0.5 (first is an outlier), (-1.0, 9.9) -> -1.0; n = 4: sigma 1/2."""
    z = np.array([[3.0, -1.0], [0.5, 9.9]])
    assert_matches_spec(P.eq03_truncated_normal(z, 4), [0.25, -0.5], eq="eq03", rtol=1e-15)
    assert np.isnan(P.eq03_truncated_normal(np.array([[5.0]]), 4)[0])


def test_eq04_mean_of_per_example_gradients():
    """Rows 1..m: (1, 2, 6)/3 = 3."""
    assert_matches_spec(P.eq04_minibatch_gradient(np.array([[1.0], [2.0], [6.0]])), [3.0], eq="eq04", rtol=1e-15)


def test_eq14_ema_of_a_constant_is_debiased_exactly_by_eq16_corrected():
    """s_t = (1-rho)(c + rho c + ... + rho^{t-1} c) = c (1 - rho^t): corrected eq. (16) returns c,
    printed eq. (16) returns c (1 - rho^t)/(1 - rho)."""
    c, rho, s = 2.5, 0.9, 0.0
    for t in range(1, 8):
        s = P.eq14_adam_first_moment(s, c, rho)
        assert_matches_spec(s, c * (1 - rho**t), eq="eq14", inputs={"t": t}, rtol=1e-13)
        assert_matches_spec(C.eq16_adam_first_moment_hat(s, rho, t), c, eq="eq16", inputs={"t": t}, rtol=1e-13)
        assert_matches_spec(P.eq16_adam_first_moment_hat(s, rho), c * (1 - rho**t) / (1 - rho), eq="eq16",
                        inputs={"t": t}, rtol=1e-13)


def test_eq18_corrected_first_adam_step_is_eps_times_sign():
    """Kingma & Ba sec. 2.1: at t = 1 from zero state s_hat = g, r_hat = g^2, so
    delta_theta = -eps g / (|g| + delta) = -eps sign(g) up to delta/|g|."""
    g = np.array([3.0, -1e-2, 40.0])
    theta, *_ = A.alg_adam_step(np.zeros(3), np.zeros(3), np.zeros(3), 0, g)
    assert_matches_spec(theta, -1e-3 * g / (np.abs(g) + 1e-8), eq="eq18", rtol=1e-12)


def test_eq09_corrected_momentum_matches_closed_form_on_constant_gradient():
    """Constant g from v = 0: v_t = -eps g (1 - alpha^t)/(1 - alpha) (geometric series)."""
    theta, v, eps, alpha, g = 0.0, 0.0, 0.1, 0.5, 2.0
    for t in range(1, 6):
        theta, v = A.alg_momentum_step(theta, v, g, eps, alpha)
        assert_matches_spec(v, -eps * g * (1 - alpha**t) / (1 - alpha), eq="eq08", inputs={"t": t}, rtol=1e-14)


def test_eq11_corrected_rmsprop_accumulator_of_constant_gradient():
    """r_t = (1 - rho^t) g^2 for constant g from r = 0 (same geometric series as the EMA)."""
    r, rho, g = 0.0, 0.9, 3.0
    for t in range(1, 6):
        r = C.eq11_rmsprop_accumulator(r, g, rho)
        assert_matches_spec(r, (1 - rho**t) * g * g, eq="eq11", inputs={"t": t}, rtol=1e-13)


def test_eq19_printed_and_tikhonov_on_a_3_4_5_triangle():
    """||(3, 4)|| = 5: printed 0.1 * 5 = 0.5; Tikhonov 0.1/2 * 25 = 1.25."""
    w = [np.array([3.0, 4.0])]
    assert_matches_spec(P.eq19_weight_norm_penalty(w, 0.1), 0.5, eq="eq19", rtol=1e-15)
    assert_matches_spec(C.eq19_tikhonov_penalty(w, 0.1), 1.25, eq="eq19", rtol=1e-15)


def test_eq20_batchnorm_population_variance_is_unbiased():
    """Alg. 2: m/(m-1) times the biased variance of one batch is np.var(ddof=1)."""
    x = np.array([[1.0], [2.0], [4.0], [7.0]])
    _, mu, var = C.eq20_batchnorm_normalize(x, axis=-1, epsilon=0.0)
    mean, pop_var = C.batchnorm_population_statistics(mu[None], var[None], m=4)
    assert_matches_spec(pop_var, np.var(x, axis=0, ddof=1, keepdims=True), eq="eq20", rtol=1e-15)
    assert_matches_spec(mean, [[3.5]], eq="eq20", rtol=1e-15)


def test_eq20_batchnorm_inference_equals_training_normalisation_with_the_same_statistics():
    """Alg. 2 step 11 is Alg. 1 with E[x], Var[x] in place of mu_B, sigma_B^2."""
    x = np.array([[1.0, -2.0], [2.0, 0.5], [4.0, 3.0]])
    mean, var = np.array([0.5, 1.0]), np.array([2.0, 0.25])
    gamma, beta = np.array([1.5, -0.5]), np.array([0.1, 0.2])
    expected = C.eq20_batchnorm_affine((x - mean) / np.sqrt(var + 1e-3), gamma, beta)
    assert_matches_spec(C.batchnorm_inference(x, mean, var, gamma, beta, 1e-3), expected, eq="eq20", rtol=1e-14)


def test_eq20_batchnorm_moving_update_by_hand():
    """Batch x = [[1], [3]] per feature: mu_B = 2, sigma_B^2 = 1 (biased), m/(m-1) sigma_B^2 = 2. From (0, 1)
    with momentum 0.9 (Keras: the old value's weight): mean 0.1 * 2 = 0.2, variance 0.9 + 0.1 * 2 = 1.1;
    momentum 0 gives the batch's (2, 2). A mask keeping only the first three of four rows equals the
    update on those rows (mean 2, unbiased variance of [1, 2, 3] = 1)."""
    x = np.array([[1.0, 10.0], [3.0, 14.0]])
    mean, var = C.batchnorm_moving_update(np.zeros(2), np.ones(2), x, momentum=0.9)
    assert_matches_spec(mean, [0.2, 1.2], eq="eq20", rtol=1e-15)
    assert_matches_spec(var, [1.1, 0.9 + 0.1 * 8.0], eq="eq20", rtol=1e-15)
    mean, var = C.batchnorm_moving_update(np.zeros(2), np.ones(2), x, momentum=0.0)
    assert_matches_spec(mean, [2.0, 12.0], eq="eq20", rtol=1e-15)
    assert_matches_spec(var, [2.0, 8.0], eq="eq20", rtol=1e-15)
    rows = np.array([[1.0], [2.0], [3.0], [100.0]])
    mean, var = C.batchnorm_moving_update([0.0], [1.0], rows, momentum=0.0, mask=[True, True, True, False])
    assert_matches_spec(np.concatenate([mean, var]), [2.0, 1.0], eq="eq20", rtol=1e-15)


def test_adamw_first_step_on_a_zero_gradient_is_pure_decay_and_the_l2_form_is_not():
    """g = 0 at t = 1: s_hat = r_hat = 0, so AdamW's step is the decay alone, theta (1 - eps lambda):
    theta = 2, eps = 0.1, lambda = 0.5 gives 1.9. The coupled form feeds g + lambda theta = 1 to Adam:
    s_hat = 1, r_hat = 1, step eps * 1 / (1 + delta), theta = 2 - 0.1 / (1 + 1e-8): the decay is normalised
    by sqrt(r_hat) like a gradient. weight_decay = 0 is Adam."""
    theta, z = np.array([2.0]), np.zeros(1)
    got = A.alg_adamw_step(theta, z, z, 0, z, eps=0.1, delta=1e-8, weight_decay=0.5)[0]
    assert_matches_spec(got, [1.9], eq="adamw", rtol=1e-15)
    got = A.alg_adam_l2_step(theta, z, z, 0, z, eps=0.1, delta=1e-8, lam=0.5)[0]
    assert_matches_spec(got, [2.0 - 0.1 / (1.0 + 1e-8)], eq="adamw", rtol=1e-15)
    g = np.array([0.3])
    assert_matches_spec(A.alg_adamw_step(theta, z, z, 0, g, weight_decay=0.0)[0], A.alg_adam_step(theta, z, z, 0, g)[0],
                        eq="adamw", rtol=0)
