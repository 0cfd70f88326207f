"""Initializer rows (lecture eqs. 1-3): statistics of one large draw against the law's parameters.

An initializer's draws cannot be fed to the spec's samplers, so the check is statistical, and
labelled so: for a drawn kernel shape (n >= 4096 entries) and seed, the implementation's sample
gives ``[max |w|, std(w)]``, compared with the law of the reference form: for U(-b, b),
``max |w|`` lies in [b (1 - 20/n), b] (probability of a miss (1 - 20/n)^n < e^-20) and the std is
b / sqrt(3) within 6 standard errors (sqrt(0.2 / n) relative); for sigma z, z a standard normal
truncated to (-2, 2), ``max |w|`` lies in [2 sigma (1 - 100/n), 2 sigma] (a miss: e^-22) and
the std is 0.8796 sigma within 6 standard errors (0.58 / sqrt(n) relative).
Fans follow Keras' layout: Dense (in, out), Conv (k, k, in, out), fan_in = in k^2.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
from hypothesis import strategies as st

from keras_optreg.conformance import engine as E
from keras_optreg.conformance import torch_runners as T
from keras_optreg_spec import corrected as C
from keras_optreg_spec import printed as P

ROWS = {
    "glorot": "eq01 Glorot uniform (Glorot & Bengio 2010 eq. 16)",
    "torch_uniform": "eq02 U(+-1/sqrt(fan_in)) (PyTorch nn.Linear default)",
    "lecun_normal": "eq03 truncated normal (flax lecun_normal)",
}
SPEC_IDS = {"glorot": ("eq01",), "torch_uniform": ("eq02",), "lecun_normal": ("eq03",)}
KINDS = tuple(ROWS)
METHOD = "statistical: max |w| and std of one draw (n >= 4096)"


@st.composite
def examples(draw):
    if draw(st.booleans()):
        shape = (draw(st.sampled_from((3, 5))),) * 2 + (draw(st.integers(24, 64)), draw(st.integers(24, 64)))
    else:
        shape = (draw(st.integers(64, 512)), draw(st.integers(64, 512)))
    return shape, draw(st.integers(0, 2**31 - 2))


def fans(shape):
    r = math.prod(shape[:-2])
    return shape[-2] * r, shape[-1] * r


def describe(example):
    shape, seed = example
    fi, fo = fans(shape)
    return f"shape {shape} (fan_in {fi}, fan_out {fo}), seed {seed}"


def stats(w):
    w = np.asarray(w, np.float64)
    return np.array([np.max(np.abs(w)), np.std(w)])


def uniform_law(bound_fn):
    """Expected [max |w|, std] of U(-b, b), b = bound_fn(fan_in, fan_out), centred in the allowed window."""
    def ref(example):
        n = math.prod(example[0])
        b = float(bound_fn(*fans(example[0])))
        return np.array([b * (1.0 - 10.0 / n), b / math.sqrt(3.0)])
    return ref


def uniform_tolerance(example, expected):
    """Absolute half-widths: max |w| in b (1 - 10/n) +- b (10/n + 2e-6) (float32 rounding at the edge)."""
    n = math.prod(example[0])
    b = expected[0] / (1.0 - 10.0 / n)
    return 0.0, np.array([b * (10.0 / n + 2e-6), expected[1] * 6.0 * math.sqrt(0.2 / n)])


def truncated_law(sigma_fn):
    """Expected [max |w|, std] of sigma z, z standard normal truncated to (-2, 2), sigma = sigma_fn(fan_in, fan_out)."""
    def ref(example):
        n = math.prod(example[0])
        s = float(sigma_fn(*fans(example[0])))
        return np.array([2.0 * s * (1.0 - 50.0 / n), s * C.TRUNCNORM_STD_2])
    return ref


def truncated_tolerance(example, expected):
    """Absolute half-widths: max |w| in 2 sigma (1 - 50/n) +- 2 sigma (50/n + 2e-6)."""
    n = math.prod(example[0])
    two_sigma = expected[0] / (1.0 - 50.0 / n)
    return 0.0, np.array([two_sigma * (50.0 / n + 2e-6), expected[1] * 6.0 * 0.58 / math.sqrt(n)])


REFERENCE = {
    "glorot": (uniform_law(C.eq01_glorot_uniform_bound), uniform_tolerance),
    "torch_uniform": (uniform_law(lambda fi, fo: C.eq02_torch_linear_bound(fi)), uniform_tolerance),
    "lecun_normal": (truncated_law(lambda fi, fo: C.eq03_lecun_normal_sigma(fi)), truncated_tolerance),
}

CONVENTIONS = {
    "glorot": (("He-uniform bound sqrt(6/fan_in)", uniform_law(lambda fi, fo: C.he_uniform_bound(fi))),),
    "torch_uniform": (("He-uniform bound sqrt(6/fan_in) (He et al. 2015; the name eq. 2 prints, erratum E-init2)",
                       uniform_law(lambda fi, fo: C.he_uniform_bound(fi))),
                      ("Glorot bound sqrt(6/(fan_in + fan_out))", uniform_law(C.eq01_glorot_uniform_bound))),
    "lecun_normal": (("printed eq. (3): sigma = sqrt(1/fan_out), no truncation correction (erratum E-init3)",
                      truncated_law(lambda fi, fo: P.eq03_truncated_normal_std(fo))),
                     ("no truncation correction: std 0.88 sqrt(1/fan_in)",
                      truncated_law(lambda fi, fo: math.sqrt(1.0 / fi))),
                     ("fan_out instead of fan_in", truncated_law(lambda fi, fo: C.eq03_lecun_normal_sigma(fo)))),
}


def keras_runner(factory):
    def run(example):
        shape, seed = example
        return stats(factory(seed)(shape, dtype="float32"))
    return run


def printed_runner(kind):
    """The lecture's samplers (keras_optreg_spec.printed) on NumPy draws: u uniform, z standard normal with 20 redraws."""
    def run(example):
        shape, seed = example
        rng = np.random.default_rng(seed)
        fi, fo = fans(shape)
        if kind == "glorot":
            return stats(P.eq01_glorot_uniform(rng.random(shape), fi, fo))
        if kind == "torch_uniform":
            return stats(P.eq02_he_uniform(rng.random(shape), fi))
        return stats(P.eq03_truncated_normal(rng.standard_normal((20, *shape)), fo))
    return run


def make_check(kind, column, component, run, ours=False):
    ref, tol = REFERENCE[kind]
    convs = tuple(E.Convention(name, r) for name, r in CONVENTIONS[kind])
    return E.Check(row=ROWS[kind], column=column, component=component, strategy=examples, run=run, reference=ref,
                   tolerance=tol, describe=describe, conventions=convs, ours=ours, method=METHOD)


def user_check(kind, factory, component):
    """Row ``kind``'s check of a user's Keras initializer ``factory(seed=...)`` (a class or callable), drawn
    as ``init(shape, dtype="float32")`` with Keras' kernel layout."""
    return make_check(kind, "user", component, keras_runner(lambda seed: factory(seed=seed)))


def checks(kind):
    import keras

    import keras_optreg.initializers as I

    ki = keras.initializers
    ours = {"glorot": ("keras_optreg.initializers.GlorotUniform", lambda s: I.GlorotUniform(seed=s)),
            "torch_uniform": ("keras_optreg.initializers.TorchDefault", lambda s: I.TorchDefault(seed=s)),
            "lecun_normal": ("keras_optreg.initializers.FlaxDefault", lambda s: I.FlaxDefault(seed=s))}[kind]
    yield make_check(kind, "keras_optreg", ours[0], keras_runner(ours[1]), ours=True)
    theirs = {"glorot": [("keras.initializers.GlorotUniform", lambda s: ki.GlorotUniform(seed=s))],
              "torch_uniform": [("keras.initializers.VarianceScaling(1/3, 'fan_in', 'uniform')",
                                 lambda s: ki.VarianceScaling(1.0 / 3.0, "fan_in", "uniform", seed=s)),
                                ("keras.initializers.HeUniform", lambda s: ki.HeUniform(seed=s))],
              "lecun_normal": [("keras.initializers.VarianceScaling(1, 'fan_in', 'truncated_normal')",
                                lambda s: ki.VarianceScaling(1.0, "fan_in", "truncated_normal", seed=s))]}[kind]
    for name, factory in theirs:
        yield make_check(kind, "keras", name, keras_runner(factory))
    yield make_check(kind, "spec (as printed)", "keras_optreg_spec.printed", printed_runner(kind))
    if not T.installed():
        yield E.na(ROWS[kind], "torch", "torch", "", status=E.NOT_INSTALLED)
    else:
        name, fill = T.initializer(kind)
        if name is None:
            yield E.na(ROWS[kind], "torch", "torch", fill)
        else:
            yield make_check(kind, "torch", name, T.initializer_runner(fill, stats))
    if importlib.util.find_spec("optax") is None:
        yield E.na(ROWS[kind], "optax", "optax", "", status=E.NOT_INSTALLED)
    else:
        yield E.na(ROWS[kind], "optax", "optax", "optax has no initializers (flax.linen.initializers are Flax's)")
