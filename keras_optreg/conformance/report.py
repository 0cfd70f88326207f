"""The table: markdown (rows = equations, columns = implementations) or JSON."""

from __future__ import annotations

import json

from keras_optreg.conformance import engine as E
from keras_optreg.conformance.registry import COLUMNS


def _md(text):
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(verdicts):
    columns = [c for c in COLUMNS if any(v.column == c for v in verdicts)]
    columns += sorted({v.column for v in verdicts} - set(columns))
    rows = list(dict.fromkeys(v.row for v in verdicts))
    cells = {}
    for v in verdicts:
        cells.setdefault((v.row, v.column), []).append(v)
    lines = ["| spec row | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        out = []
        for col in columns:
            out.append("<br>".join(v.status if v.status == E.NOT_INSTALLED else f"`{v.component}`: {_md(v.cell())}"
                                   for v in cells.get((row, col), [])))
        lines.append(f"| {_md(row)} | " + " | ".join(out) + " |")
    return "\n".join(lines)


def as_json(verdicts, **meta):
    """The verdicts and ``meta`` as JSON, with the Keras backend the checks ran on (``"backend"``)."""
    import keras

    return json.dumps({"backend": keras.backend.backend(), **meta, "verdicts": [v.as_dict() for v in verdicts]},
                      indent=1, default=str)


def exit_code(verdicts):
    """2 when a check itself failed; 1 when a keras_optreg component does not conform; else 0."""
    if any(v.status == E.ERROR for v in verdicts):
        return 2
    return 1 if any(v.ours and v.status not in (E.CONFORMS, E.NA) for v in verdicts) else 0
