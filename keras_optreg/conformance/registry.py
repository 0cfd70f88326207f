"""The rows of the table, in lecture order, and the columns (implementations)."""

from __future__ import annotations

import time

from keras_optreg.conformance import engine as E

COLUMNS = ("keras_optreg", "keras", "spec (as printed)", "torch", "optax")


FAMILIES = ("initializers", "optimizers", "scalars", "layers")  # lecture order: eqs. 1-3, 4-18, 6 and 19, 20 +


def _families():
    import importlib

    rows = []
    for family in FAMILIES:
        try:
            mod = importlib.import_module(f"keras_optreg.conformance.{family}")
        except ModuleNotFoundError as exc:
            if exc.name == f"keras_optreg.conformance.{family}":
                continue  # a family not written yet
            raise
        for kind in mod.KINDS:
            rows.append((kind, mod.SPEC_IDS[kind], mod.ROWS[kind], lambda m=mod, k=kind: m.checks(k)))
    return rows


def rows():
    """[(key, spec ids, row label, cells())]: ``cells()`` yields a Check or a ready Verdict per column."""
    return _families()


def keys():
    return [key for key, *_ in rows()]


def select(only=None):
    """The rows whose key or one of whose spec ids is in ``only`` (all rows when None)."""
    if not only:
        return rows()
    wanted = set(only)
    unknown = wanted - {k for k, ids, *_ in rows() for k in (k, *ids)}
    if unknown:
        raise ValueError(f"Argument `only` names no row: {sorted(unknown)}. Rows: {', '.join(keys())}")
    return [r for r in rows() if r[0] in wanted or wanted & set(r[1])]


def check_columns(columns):
    """``columns`` as a tuple of names from :data:`COLUMNS` (all of them when None)."""
    if columns is None:
        return COLUMNS
    columns = (columns,) if isinstance(columns, str) else tuple(columns)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown or not columns:
        raise ValueError(f"Argument `columns` must name some of {', '.join(map(repr, COLUMNS))}. "
                         f"Received: columns={columns!r}")
    return columns


def run(only=None, max_examples=50, progress=None, columns=None):
    """Every verdict of the selected rows and ``columns``; ``progress(verdict, seconds)`` after each cell.

    A cell of a column not selected is neither checked nor reported."""
    columns = check_columns(columns)
    verdicts = []
    for _key, _ids, _label, cells in select(only):
        for cell in cells():
            if cell.column not in columns:
                continue
            start = time.perf_counter()
            verdict = cell if isinstance(cell, E.Verdict) else E.evaluate(cell, max_examples)
            verdicts.append(verdict)
            if progress:
                progress(verdict, time.perf_counter() - start)
    return verdicts
