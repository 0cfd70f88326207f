"""Bad-input rows: optimizers (construction, build, step)."""

from __future__ import annotations

import keras_optreg
from tests.badinput import Case

NAN = float("nan")

CASES = [
    Case("optimizers/adam-beta_1-nan", lambda: keras_optreg.Adam(beta_1=NAN), ValueError, ("beta_1", "nan")),
]
