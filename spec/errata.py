"""The errata registry: where the lecture's printed equations differ from their cited sources."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Erratum:
    id: str
    equations: tuple[str, ...]
    printed: str
    corrected: str
    source: str
    consequence: str


ERRATA: tuple[Erratum, ...] = (
    Erratum(
        id="E-init2",
        equations=("eq02",),
        printed="U(-1/sqrt(m), 1/sqrt(m)), called He-uniform",
        corrected="same bound, named PyTorch's nn.Linear default (kaiming_uniform_, a=sqrt(5)); "
        "He-uniform is U(-sqrt(6/m), sqrt(6/m))",
        source="PyTorch nn.Linear.reset_parameters; He et al. 2015 sec. 2.2 (N(0, 2/fan_in))",
        consequence="a user who wants He-uniform from this slide gets weights sqrt(6) = 2.45x too small",
    ),
    Erratum(
        id="E-init3",
        equations=("eq03",),
        printed="N(0, sqrt(1/n)), n = output size, redraw beyond 2 sigma",
        corrected="n = fan_in; std after truncation sqrt(1/fan_in): sigma = sqrt(1/fan_in) / "
        "0.87962566103423978, cut at 2 sigma (flax lecun_normal)",
        source="flax.linen.Dense default kernel_init; jax.nn.initializers.variance_scaling",
        consequence="wrong fan whenever fan_in != fan_out, and a variance 0.774x the intended one",
    ),
    Erratum(
        id="E-sum",
        equations=("eq07", "eq10", "eq13"),
        printed="(1/m) sum_{i=0}^{m}: m + 1 terms divided by m",
        corrected="(1/m) sum_{i=1}^{m}, as eq. (4)",
        source="GBC16 Alg. 8.1-8.7 (minibatch of m examples)",
        consequence="the gradient is scaled by (m+1)/m: 2x for m = 1, a learning-rate change per batch size",
    ),
    Erratum(
        id="E-mom",
        equations=("eq09",),
        printed="theta_{t+1} = theta_t - v_t",
        corrected="theta_{t+1} = theta_t + v_t",
        source="GBC16 Alg. 8.2",
        consequence="with v = alpha v - eps g, theta - v climbs the gradient: the loss increases",
    ),
    Erratum(
        id="E-rms",
        equations=("eq11", "eq12"),
        printed="r += g*g; theta -= eps/(delta + r) * g",
        corrected="r = rho r + (1-rho) g*g; theta -= eps/sqrt(delta + r) * g (RMSProp); the printed "
        "accumulator is AdaGrad's (theta -= eps/(delta + sqrt(r)) * g)",
        source="GBC16 Alg. 8.5 (RMSProp), Alg. 8.4 (AdaGrad)",
        consequence="no forgetting and no square root: the step decays like 1/(t g^2) instead of "
        "staying near eps, and scales as 1/g instead of being scale-free",
    ),
    Erratum(
        id="E-adam",
        equations=("eq16", "eq17", "eq18"),
        printed="s_hat = s/(1-rho1), r_hat = r/(1-rho2); theta -= eps s_hat/(delta + r_hat) * g",
        corrected="s_hat = s/(1-rho1^t), r_hat = r/(1-rho2^t); theta -= eps s_hat/(sqrt(r_hat) + delta)",
        source="GBC16 Alg. 8.7; Kingma & Ba 2015 Alg. 1 (eps=1e-3, rho1=0.9, rho2=0.999, delta=1e-8)",
        consequence="from zero state at t = 1, s_hat = g and r_hat = g^2, so the printed step is "
        "eps g^2/(delta + g^2): theta falls by ~eps whatever the gradient's sign (it ascends half the time)",
    ),
    Erratum(
        id="E-reg",
        equations=("eq19",),
        printed="lambda sum_i |W_i|_2 (unsquared norm per weight object), called Tikhonov",
        corrected="Tikhonov is lambda/2 sum_i ||W_i||_2^2; the printed form is group lasso",
        source="GBC16 sec. 7.1.1, eq. (7.1)",
        consequence="the unsquared norm drives whole tensors to exactly zero (a constant-size pull "
        "lambda W/||W||), it does not sparsify single weights nor decay weights proportionally",
    ),
    Erratum(
        id="E-bn",
        equations=("eq20",),
        printed="(x - mu)/sigma per feature position i, j, no epsilon",
        corrected="(x - mu_B)/sqrt(sigma_B^2 + eps), per channel over batch and all positions for "
        "conv maps; inference with population statistics, Var = m/(m-1) E[sigma_B^2]",
        source="Ioffe & Szegedy 2015 Alg. 1, Alg. 2, sec. 3.2",
        consequence="a constant feature divides 0 by 0 (NaN); per-position statistics break the "
        "convolutional property and estimate from N instead of N*H*W values",
    ),
)

BY_ID = {e.id: e for e in ERRATA}


def errata_for(eq_id):
    """The errata that name equation ``eq_id`` (e.g. "eq18")."""
    return tuple(e for e in ERRATA if eq_id in e.equations)
