"""The bad-input table: every row of every ``tests/_bad_<area>.py`` either fails clearly or works.

"Clearly": a ``ValueError``/``TypeError`` (or the row's stated type) whose message contains the row's
words, typically the argument's name and the value received. "Works": the row's ``check`` accepts
the result. See ``tests/badinput.py`` for the row type.
"""

from __future__ import annotations

import importlib
import pathlib

import pytest

HERE = pathlib.Path(__file__).parent
MODULES = sorted(p.stem for p in HERE.glob("_bad_*.py"))


def _cases():
    for name in MODULES:
        yield from importlib.import_module(f"tests.{name}").CASES


CASES = list(_cases())


def test_the_table_has_rows_and_unique_ids():
    ids = [c.id for c in CASES]
    assert ids, "no bad-input rows found (tests/_bad_*.py)"
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def _param(case):
    marks = [pytest.mark.tensorflow_only(case.tensorflow_only)] if case.tensorflow_only else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case):
    if case.raises is None:
        case.check(case.call())
        return
    with pytest.raises(case.raises) as info:
        case.call()
    message = str(info.value)
    missing = [w for w in case.words if w not in message]
    assert not missing, f"{case.id}: the message lacks {missing}: {message!r}"
