"""Statistical checks for the initializer tests: a variance z-test and a KS test, with exact moments.

Both checks are deterministic given fixed seeds. Bounds come from the sample size: the sample
variance (mean known to be 0) of N draws has standard error var * sqrt((kurtosis - 1) / N).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

Z_LIMIT = 5.0
KS_P_MIN = 1e-6
UNIFORM_KURTOSIS = 1.8  # E u^4 / (E u^2)^2 = (b^4/5) / (b^2/3)^2


def truncated_standard_normal_moments(c=2.0):
    """(E z^2, E z^4) of N(0, 1) truncated to (-c, c), exactly: integrate z^2 phi and z^4 phi by parts."""
    phi = math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    mass = math.erf(c / math.sqrt(2.0))
    m2_int = mass - 2.0 * c * phi
    m4_int = 3.0 * m2_int - 2.0 * c ** 3 * phi
    return m2_int / mass, m4_int / mass


def truncated_normal_kurtosis(c=2.0):
    m2, m4 = truncated_standard_normal_moments(c)
    return m4 / m2 ** 2


def variance_z(sample, true_var, kurtosis):
    """z of the mean-known sample variance mean(x^2) against ``true_var``."""
    x = np.asarray(sample, dtype=np.float64).ravel()
    se = true_var * math.sqrt((kurtosis - 1.0) / x.size)
    return (np.mean(x * x) - true_var) / se


def ks_pvalue(sample, cdf):
    return stats.kstest(np.asarray(sample, dtype=np.float64).ravel(), cdf).pvalue


def uniform_cdf(bound):
    return lambda x: np.clip((np.asarray(x) + bound) / (2.0 * bound), 0.0, 1.0)


def checks_pass(sample, true_var, kurtosis, cdf):
    """{'variance_z': bool, 'ks': bool}: True where the check accepts the sample."""
    return {"variance_z": abs(variance_z(sample, true_var, kurtosis)) < Z_LIMIT,
            "ks": ks_pvalue(sample, cdf) > KS_P_MIN}
