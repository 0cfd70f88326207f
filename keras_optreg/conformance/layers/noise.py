"""Dropout and input-noise rows: dropout structurally (the mask read from the output), noise statistically."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from keras_optreg.conformance import engine as E
from keras_optreg.conformance import strategies as S
from keras_optreg.conformance.compare import as_float64
from keras_optreg_spec import unnumbered as U

ULP = 2.0 ** -24
STRUCTURAL = "structural: output given the draws read from it, plus a 6-sigma count of the draws"


@st.composite
def nonzero_inputs(draw, shapes=((64,), (16, 32), (8, 8, 8))):
    shape = draw(st.sampled_from(shapes))
    mag = draw(S.arrays(shape, 0.1, 10.0))
    sign = np.where(draw(S.arrays(shape, -1.0, 1.0)) < 0, -1.0, 1.0)
    return S.as_float32(sign * mag).astype(np.float32)


@st.composite
def dropout_examples(draw):
    return draw(nonzero_inputs()), float(np.float32(draw(st.floats(0.0, 0.9)))), draw(st.integers(0, 2**30))


def describe_rate(example):
    x, rate, seed = example
    return f"x shape {x.shape}, x={E._short(x)}, rate={rate:.3g}, seed {seed}"


def _binomial_z(count, n, p):
    sd = math.sqrt(n * p * (1.0 - p))
    return 0.0 if sd == 0.0 and count == n * p else (count - n * p) / sd if sd > 0 else math.inf


def dropout_runner(factory):
    """[y (training), y (inference), z of the kept count against Binomial(n, 1 - rate)]."""
    def run(example):
        x, rate, seed = example
        layer = factory(rate, seed)
        y = as_float64(layer(x, training=True)).ravel()
        y_inf = as_float64(layer(x, training=False)).ravel()
        z = _binomial_z(int(np.count_nonzero(y)), y.size, 1.0 - rate)
        return np.concatenate([y, y_inf, [z]])
    return run


def dropout_reference(form):
    def ref(example, got):
        x, rate, _ = example
        n = x.size
        keep = got[:n] != 0.0
        xs = np.asarray(x, np.float64).ravel()
        if form == "inverted":
            train, infer = U.dropout_inverted(xs, keep, rate, True), U.dropout_inverted(xs, keep, rate, False)
        else:
            train, infer = U.dropout_srivastava(xs, keep, 1 - rate, True), U.dropout_srivastava(xs, keep, 1 - rate, False)
        return np.concatenate([train, infer, [0.0]])
    return ref


def sigma_tolerance(example, expected):
    """8 ULP relative on the values; 6 standard errors on the last entry (a z-score)."""
    atol = np.zeros(len(expected))
    atol[-1] = 6.0
    rtol = np.full(len(expected), 8 * ULP)
    rtol[-1] = 0.0
    return rtol, atol


@st.composite
def noise_examples(draw):
    x = draw(nonzero_inputs(((4096,), (64, 64))))
    return x, float(np.float32(draw(S.log_uniform_from_low(-2, 0)))), draw(st.integers(0, 2**30))  # Keras: stddev <= 1


def describe_noise(example):
    x, sd, seed = example
    return f"x shape {x.shape}, stddev={sd:.3g}, seed {seed}"


def noise_runner(factory):
    """[z-score of mean((y - x)/sd), z-score of its variance against 1, max |y_inference - x|]."""
    def run(example):
        x, sd, seed = example
        layer = factory(sd, seed)
        x64 = np.asarray(x, np.float64)
        z = (as_float64(layer(x, training=True)) - x64) / sd
        n = z.size
        return np.array([z.mean() * math.sqrt(n), (z.var() - 1.0) / math.sqrt(2.0 / n),
                         float(np.max(np.abs(as_float64(layer(x, training=False)) - x64)))])
    return run


def noise_reference(noise_std=lambda sd: sd):
    def ref(example):
        x, sd, _ = example
        n = x.size
        return np.array([0.0, ((noise_std(sd) / sd) ** 2 - 1.0) / math.sqrt(2.0 / n), 0.0])
    return ref


def noise_tolerance(example, expected):
    x, sd, _ = example
    # float32 rounding of x + sd z relative to sd: ULP |x| / sd per element, on the scale of the z-scores
    r = ULP * float(np.max(np.abs(x))) / sd * math.sqrt(x.size) * 4
    return 0.0, np.array([6.0 + r, 6.0 + r * 4, 0.0])


def spec(kind):
    """The Check fields of row ``kind`` ("dropout" or "input_noise") but its column, component and run."""
    if kind == "dropout":
        convs = (E.Convention("Srivastava et al.'s form: no 1/(1 - rate) in training, times (1 - rate) at inference",
                              dropout_reference("srivastava")),)
        return dict(strategy=dropout_examples, reference=dropout_reference("inverted"), tolerance=sigma_tolerance,
                    describe=describe_rate, conventions=convs, method=STRUCTURAL, conditional=True)
    convs = (E.Convention("variance stddev instead of standard deviation stddev", noise_reference(math.sqrt)),)
    return dict(strategy=noise_examples, reference=noise_reference(), tolerance=noise_tolerance, describe=describe_noise,
                conventions=convs, method="statistical: 6-sigma mean and variance of (y - x)/sigma")


def user_runner(kind, factory):
    """A layer class or factory called as ``factory(rate, seed=...)`` / ``factory(stddev, seed=...)``."""
    runner = dropout_runner if kind == "dropout" else noise_runner
    return runner(lambda value, seed: factory(value, seed=seed))


def columns(kind, check):
    import keras

    from keras_optreg import layers as L

    if kind == "dropout":
        yield check("keras_optreg", "keras_optreg.layers.Dropout", user_runner(kind, L.Dropout), ours=True)
        yield check("keras", "keras.layers.Dropout", user_runner(kind, keras.layers.Dropout))
        yield E.na(check.row, "spec (as printed)", "keras_optreg_spec.printed",
                   "unnumbered: the lecture prints no dropout equation")
    else:
        yield check("keras_optreg", "keras_optreg.layers.InputNoise", user_runner(kind, L.InputNoise), ours=True)
        yield check("keras", "keras.layers.GaussianNoise", user_runner(kind, keras.layers.GaussianNoise))
        yield E.na(check.row, "spec (as printed)", "keras_optreg_spec.printed",
                   "unnumbered: the lecture prints no noise equation")
