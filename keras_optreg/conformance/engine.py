"""One verdict per (spec row, implementation): a Hypothesis search for a counterexample.

A :class:`Check` draws examples from a strategy, runs the implementation and the reference form
(the spec's corrected form, or the form the row names), and compares within a tolerance derived
from float32 rounding. The search runs under ``settings(derandomize=True, database=None)``, so the
same code and library versions give the same table (the examples drawn depend on the code of the
checks, so a change to a check may change a counterexample or a max rel err). A failing example is shrunk by Hypothesis to
the smallest counterexample; then each named convention of the row (an alternative reference, e.g.
Keras' epsilon-hat Adam) is searched the same way, and the first one the implementation follows
over every example names the deviation. None does: ``deviates: unexplained``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings

from keras_optreg.conformance.compare import as_float64, compare

CONFORMS, DEVIATES, NA, NOT_INSTALLED, ERROR = "conforms", "deviates", "n/a", "not installed", "error"
UNEXPLAINED = "unexplained"


@dataclasses.dataclass(frozen=True)
class Convention:
    """An alternative reference: a named convention of another framework or an erratum of the lecture."""

    name: str
    reference: Callable


@dataclasses.dataclass
class Check:
    """Implementation ``run`` against ``reference`` on ``strategy()``'s examples.

    ``run(example)`` and ``reference(example)`` return arrays of the same shape;
    ``tolerance(example, expected)`` returns ``(rtol, atol)``; ``describe(example)`` a one-line
    summary of the example for the table. ``method`` says what is compared (e.g. "trajectory",
    "support + binomial count"). ``ours``: a keras_optreg component (its deviation fails the exit code).
    """

    row: str
    column: str
    component: str
    strategy: Callable
    run: Callable
    reference: Callable
    tolerance: Callable
    describe: Callable = repr
    conventions: tuple = ()
    ours: bool = False
    method: str = "values"
    conditional: bool = False
    """True: ``reference(example, got)`` reads the implementation's random draws (a dropout mask, a
    flip, crop offsets) from its output and returns the reference output for those draws."""


@dataclasses.dataclass
class Verdict:
    row: str
    column: str
    component: str
    status: str
    detail: str = ""
    max_rel_err: float | None = None
    max_band: float | None = None
    examples: int = 0
    counterexample: dict | None = None
    ours: bool = False
    method: str = ""

    @property
    def conforms(self):
        return self.status == CONFORMS

    @property
    def convention(self):
        """The name of the convention or erratum a deviating implementation follows; None when it conforms,
        when no named convention explains the deviation (``unexplained``) or when nothing was compared."""
        return self.detail if self.status == DEVIATES and self.detail != UNEXPLAINED else None

    @property
    def unexplained(self):
        return self.status == DEVIATES and self.detail == UNEXPLAINED

    def __str__(self):
        return f"{self.component} against {self.row}: {self.cell()}"

    def cell(self):
        if self.status == CONFORMS:
            kind = next((k for k in ("statistical", "structural") if self.method.startswith(k)), "")
            if kind:  # a relative error of z-scores and sample maxima means nothing
                return f"conforms ({kind}; {self.examples} examples within bounds)"
            return f"conforms (max rel err {self.max_rel_err:.1e})"
        if self.status == DEVIATES:
            text = f"deviates: {self.detail}"
            if self.counterexample:
                c = self.counterexample
                text += f"; e.g. {c['inputs']}: spec {c['expected']}, got {c['got']}"
                if "difference" in c:
                    text += f" (|diff| {c['difference']} > {c['allowed']} allowed)"
            return text
        return f"{self.status}: {self.detail}" if self.detail else self.status

    def as_dict(self):
        """JSON-ready: arrays as lists."""
        return _plain(dataclasses.asdict(self))


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray | np.generic):
        return _plain(x.tolist()) if isinstance(x, np.ndarray) else x.item()
    return x


class _Mismatch(Exception):
    pass


def search(strategy, run, reference, tolerance, max_examples, shrink=True, conditional=False, base=None):
    """Run the property; return ({"rel": max normwise rel err, "band": max |diff|/allowed} over passing
    examples, shrunk failure or None).

    The failure is ``(example, got, expected, worst index, rtol, atol)`` of the last failing call, which is
    Hypothesis' final replay of the shrunk example; an exception raised by ``run`` is a failure too.
    ``base``: a ``hypothesis.settings`` the search starts from (the user's: database, derandomize, seed
    source, max_examples when ``max_examples`` is None); the tool always sets deadline=None, its phases
    (no shrinking while a convention is searched) and no health checks. Without it: derandomized, no database.
    """
    state = {"rel": 0.0, "band": 0.0, "fail": None, "n": 0}

    def body(example):
        try:
            got = run(example)
        except Exception as exc:  # the implementation raised: a failure with the error as 'got'
            state["fail"] = (example, f"raised {type(exc).__name__}: {exc}"[:200], None, None, None, None)
            raise _Mismatch from exc
        expected = reference(example, got) if conditional else reference(example)
        rtol, atol = tolerance(example, expected)
        ok, rel, worst, band = compare(got, expected, rtol, atol)
        if not ok:
            state["fail"] = (example, got, expected, worst, rtol, atol)
            raise _Mismatch
        state["rel"] = max(state["rel"], rel)
        state["band"] = max(state["band"], band)
        state["n"] += 1

    parent = base if base is not None else settings(derandomize=True, database=None)
    chosen = {} if max_examples is None else {"max_examples": max_examples}
    prop = settings(parent, **chosen, deadline=None, print_blob=False,
                    phases=(Phase.explicit, Phase.generate) + ((Phase.shrink,) if shrink else ()),
                    suppress_health_check=list(HealthCheck))(given(strategy)(body))
    try:
        prop()
    except _Mismatch:
        return state, state["fail"]
    return state, None


def _short(x):
    if isinstance(x, str):
        return x
    a = np.asarray(x, dtype=np.float64)
    return np.array2string(a.ravel()[:4], precision=4, separator=", ") + (" ..." if a.size > 4 else "") \
        if a.ndim else f"{float(a):.7g}"


def _counterexample(check, fail):
    example, got, expected, worst, rtol, atol = fail
    out = {"inputs": check.describe(example), "expected": "-", "got": _short(got), "example": example}
    if worst is not None:
        shape = as_float64(expected).shape
        rtol, atol = (float(np.broadcast_to(np.asarray(x, np.float64), shape)[worst]) for x in (rtol, atol))
        got, expected = float(as_float64(got)[worst]), float(as_float64(expected)[worst])
        at = f" at {tuple(int(i) for i in worst)}" if len(worst) else ""
        out.update(inputs=out["inputs"] + at, expected=_short(expected),
                   got=_short(got), allowed=f"{atol + rtol * abs(expected):.2g}", difference=f"{abs(got - expected):.2g}")
    return out


def evaluate(check, max_examples, settings=None):
    """The verdict of one check: conforms, or deviates with the named convention and the counterexample.

    ``settings``: the ``hypothesis.settings`` each search starts from (see :func:`search`)."""
    base = dict(row=check.row, column=check.column, component=check.component, ours=check.ours,
                method=check.method)
    try:
        stats, fail = search(check.strategy(), check.run, check.reference, check.tolerance, max_examples,
                             conditional=check.conditional, base=settings)
    except Exception as exc:  # a bug in the check itself, not a verdict
        return Verdict(status=ERROR, detail=f"{type(exc).__name__}: {exc}"[:300], **base)
    if fail is None:
        return Verdict(status=CONFORMS, max_rel_err=stats["rel"], max_band=stats["band"], examples=stats["n"], **base)
    counter = _counterexample(check, fail)
    for conv in check.conventions:
        try:
            _, alt_fail = search(check.strategy(), check.run, conv.reference, check.tolerance, max_examples,
                                 shrink=False, conditional=check.conditional, base=settings)
        except Exception:  # noqa: S112 - an alternative that cannot be evaluated explains nothing
            continue
        if alt_fail is None:
            return Verdict(status=DEVIATES, detail=conv.name, counterexample=counter, **base)
    return Verdict(status=DEVIATES, detail=UNEXPLAINED, counterexample=counter, **base)


def na(row, column, component, reason, status=NA, ours=False):
    """A cell with no comparison: not applicable (with the reason) or not installed."""
    return Verdict(row=row, column=column, component=component, status=status, detail=reason, ours=ours)
