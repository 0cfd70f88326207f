"""Scalar rows: the learning-rate schedule (eq. 6) and the weight penalty (eq. 19), values against the spec."""

from __future__ import annotations

import importlib.util

import numpy as np
from hypothesis import strategies as st

from keras_optreg.conformance import engine as E
from keras_optreg.conformance import strategies as S
from keras_optreg_spec import corrected as C
from keras_optreg_spec import printed as P

ULP = 2.0 ** -24
ROWS = {
    "minibatch_gradient": "eq04 eq07 eq10 eq13 minibatch gradient, (1/m) sum over m examples (GBC16 Alg. 8.1)",
    "linear_decay": "eq06 linear decay (GBC16 eq. 8.14)",
    "tikhonov": "eq19 Tikhonov, (lambda/2) sum ||W||^2 (GBC16 sec. 7.1.1)",
    "weight_norm": "eq19 as printed: lambda sum ||W|| (group lasso)",
}
SPEC_IDS = {"minibatch_gradient": ("eq04", "eq07", "eq10", "eq13"), "linear_decay": ("eq06",), "tikhonov": ("eq19",), "weight_norm": ("eq19",)}
KINDS = tuple(ROWS)


# ---- eqs. (4), (7), (10), (13) --------------------------------------------------------------------------


@st.composite
def gradient_examples(draw):
    m = draw(st.integers(2, 8))  # rows; eq. (7) as printed reads them as i = 0..m-1 and divides by m - 1
    return S.as_float32(draw(S.arrays((m, *draw(S.shapes())), -10.0, 10.0)))


def _minibatch_checks():
    """The printed gradient equations, against GBC16's mean; the library's mean is the loss reduction
    (tested in tests/test_optimizers.py::test_fit_uses_the_mean_of_per_example_gradients)."""
    row = ROWS["minibatch_gradient"]
    convs = (E.Convention("printed sum over i = 0..m: m + 1 terms over m (erratum E-sum)",
                          lambda ex: P.eq07_minibatch_gradient(ex)),)
    for eq, fn in (("eq04", P.eq04_minibatch_gradient), ("eq07", P.eq07_minibatch_gradient)):
        yield E.Check(row=row, column="spec (as printed)", component=f"keras_optreg_spec.printed.{eq}_minibatch_gradient",
                      strategy=gradient_examples, run=fn, reference=C.minibatch_gradient,  # float64 both
                      tolerance=lambda ex, exp: (1e-12, 1e-12), describe=lambda ex: f"per-example gradients {E._short(ex)}"
                      f" ({len(ex)} rows)", conventions=convs, method="values")
    yield E.na(row, "keras_optreg", "keras_optreg (model.fit)", "the mean is Keras' loss reduction; see "
               "tests/test_optimizers.py::test_fit_uses_the_mean_of_per_example_gradients")
    yield E.na(row, "keras", "keras (model.fit)", "the mean is the loss reduction ('sum_over_batch_size')")


# ---- eq. (6) --------------------------------------------------------------------------------------


@st.composite
def schedule_examples(draw):
    tau = draw(st.integers(1, 10_000))
    steps = draw(st.lists(st.integers(0, 2 * tau), min_size=1, max_size=8))
    return (float(np.float32(draw(S.learning_rates))), float(np.float32(draw(S.learning_rates))), tau,
            np.array(sorted({0, tau, *steps}), np.int64))


def describe_schedule(example):
    eps0, eps_tau, tau, steps = example
    return f"eps_0={eps0:.4g}, eps_tau={eps_tau:.4g}, tau={tau}, k={steps.tolist()}"


def schedule_reference(fn):
    return lambda ex: np.asarray(fn(ex[3], ex[0], ex[1], ex[2]), np.float64)


def schedule_tolerance(example, expected):
    return 8 * ULP, 8 * ULP * max(abs(example[0]), abs(example[1]))


def schedule_runner(factory):
    def run(example):
        eps0, eps_tau, tau, steps = example
        return np.asarray(factory(eps0, eps_tau, tau)(steps), np.float64)
    return run


def _spec(kind):
    """The Check fields of row ``kind`` ("linear_decay", "tikhonov", "weight_norm") but column, component, run."""
    if kind == "linear_decay":
        convs = (E.Convention("no hold after tau: eq. (8.14) extrapolated past tau",
                              schedule_reference(lambda k, a, b, t: a + k / t * (b - a))),)
        return dict(strategy=schedule_examples, reference=schedule_reference(C.eq06_linear_decay),
                    tolerance=schedule_tolerance, describe=describe_schedule, conventions=convs,
                    method="values at steps 0..2 tau")
    if kind == "tikhonov":
        ref = _penalty(C.eq19_tikhonov_penalty)
        convs = (E.Convention("no 1/2: lambda sum ||W||^2 (Keras L2(l) = Tikhonov(2 l))",
                              _penalty(lambda ws, lam: 2.0 * C.eq19_tikhonov_penalty(ws, lam))),
                 E.Convention("printed eq. (19): unsquared norm, group lasso (erratum E-reg)",
                              _penalty(P.eq19_weight_norm_penalty)))
    else:
        ref = _penalty(P.eq19_weight_norm_penalty)
        convs = (E.Convention("Tikhonov (lambda/2) sum ||W||^2, the corrected eq. (19)", _penalty(C.eq19_tikhonov_penalty)),)
    return dict(strategy=penalty_examples, reference=ref, tolerance=penalty_tolerance, describe=describe_penalty,
                conventions=convs, method="penalty summed over weight objects")


def make_check(kind, column, component, run, ours=False):
    return E.Check(row=ROWS[kind], column=column, component=component, run=run, ours=ours, **_spec(kind))


def user_check(kind, factory, component):
    """Row ``kind``'s check of a user's schedule ``factory(initial, final, decay_steps)`` (called on an int64
    array of steps) or weight penalty ``factory(lam)`` (called on each float32 weight, summed)."""
    if kind not in ("linear_decay", "tikhonov", "weight_norm"):
        raise ValueError(f"Argument `spec_id`: row {kind!r} checks the loss reduction, not a component")
    runner = schedule_runner if kind == "linear_decay" else penalty_runner
    return make_check(kind, "user", component, runner(factory))


def _linear_decay_checks():
    import keras

    import keras_optreg

    def check(column, component, run, ours=False):
        return make_check("linear_decay", column, component, run, ours)

    yield check("keras_optreg", "keras_optreg.LinearDecay",
                schedule_runner(lambda a, b, t: keras_optreg.LinearDecay(a, b, t)), ours=True)
    yield check("keras", "keras.optimizers.schedules.PolynomialDecay(power=1)", schedule_runner(
        lambda a, b, t: keras.optimizers.schedules.PolynomialDecay(a, t, end_learning_rate=b, power=1.0)))
    yield check("spec (as printed)", "keras_optreg_spec.printed", lambda ex: np.asarray(
        P.eq06_linear_decay(ex[3], ex[0], ex[1], ex[2]), np.float64))


# ---- eq. (19) -------------------------------------------------------------------------------------


@st.composite
def penalty_examples(draw):
    shapes = draw(st.lists(S.shapes(), min_size=1, max_size=3))
    weights = [S.flush_subnormals(S.as_float32(draw(S.arrays(s, -10.0, 10.0))), below=1e-15) for s in shapes]
    return weights, float(np.float32(draw(S.log_uniform(-6, 0))))


def describe_penalty(example):
    weights, lam = example
    return f"lambda={lam:.4g}, weights {[E._short(w) for w in weights]}"


def penalty_tolerance(example, expected):
    n = sum(w.size for w in example[0])
    return 4 * ULP * (n + 8), 1e-30


def penalty_runner(factory):
    def run(example):
        weights, lam = example
        reg = factory(lam)
        return np.float64(sum(float(reg(np.asarray(w, np.float32))) for w in weights))
    return run


def _penalty(fn):
    return lambda ex: np.float64(fn([np.asarray(w, np.float64) for w in ex[0]], ex[1]))


def _penalty_checks(kind):
    import keras

    from keras_optreg import regularizers as R

    row = ROWS[kind]
    if kind == "tikhonov":
        ours = ("keras_optreg.regularizers.Tikhonov", lambda lam: R.Tikhonov(lam))
        theirs = [("keras.regularizers.L2", lambda lam: keras.regularizers.L2(lam))]
    else:
        ours = ("keras_optreg.regularizers.WeightNorm", lambda lam: R.WeightNorm(lam))
        theirs = []
        yield E.na(row, "spec (as printed)", "keras_optreg_spec.printed", "this row is the printed form")

    def check(column, component, run, is_ours=False):
        return make_check(kind, column, component, run, is_ours)

    yield check("keras_optreg", ours[0], penalty_runner(ours[1]), is_ours=True)
    for name, factory in theirs:
        yield check("keras", name, penalty_runner(factory))
    if not theirs:
        yield E.na(row, "keras", "keras.regularizers", "Keras has no unsquared-norm (group lasso) regularizer")
    if kind == "tikhonov":
        yield check("spec (as printed)", "keras_optreg_spec.printed", _penalty(P.eq19_weight_norm_penalty))


def checks(kind):
    if kind == "minibatch_gradient":
        yield from _minibatch_checks()
    else:
        yield from (_linear_decay_checks() if kind == "linear_decay" else _penalty_checks(kind))
    for lib in ("torch", "optax"):
        if importlib.util.find_spec(lib) is None:
            yield E.na(ROWS[kind], lib, lib, "", status=E.NOT_INSTALLED)
        elif lib == "optax" and kind == "linear_decay":
            yield from _optax_linear_schedule_check()
        else:
            yield E.na(ROWS[kind], lib, lib, _NOT_COMPARABLE[lib][kind])


_NOT_COMPARABLE = {
    "torch": {"minibatch_gradient": "the loss's reduction, not an optimizer's: the mean is nn.*Loss(reduction='mean')",
              "linear_decay": "lr_scheduler.LinearLR is a stepped multiplicative factor in (0, 1]: no rate that "
                              "rises, and not evaluable at an arbitrary step k",
              "tikhonov": "PyTorch has no penalty term: weight_decay acts inside the optimizer's step",
              "weight_norm": "PyTorch has no penalty term: weight_decay acts inside the optimizer's step"},
    "optax": {"minibatch_gradient": "the loss's reduction, not an optimizer's",
              "tikhonov": "optax.add_decayed_weights is a gradient transformation, not a penalty term",
              "weight_norm": "optax.add_decayed_weights is a gradient transformation, not a penalty term"},
}


def _optax_linear_schedule_check():
    import optax

    row = ROWS["linear_decay"]
    yield E.Check(row=row, column="optax", component="optax.linear_schedule", strategy=schedule_examples,
                  run=schedule_runner(lambda a, b, t: optax.linear_schedule(a, b, t)),
                  reference=schedule_reference(C.eq06_linear_decay), tolerance=schedule_tolerance,
                  describe=describe_schedule, conventions=(), ours=False, method="values at steps 0..2 tau")
