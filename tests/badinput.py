"""The row type of the bad-input table (``tests/test_bad_inputs.py``): one bad input or fault per row.

Each area keeps its rows in a module ``tests/_bad_<area>.py`` exposing ``CASES`` (a list of
:class:`Case`); ``tests/test_bad_inputs.py`` collects every such module, so a new area needs no
registration. A row either expects a clear error (``raises`` with the words its message must
contain: the argument's name and the value received) or a correct result (``raises=None`` and a
``check`` that asserts the result is right, not merely that nothing was raised).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    """``<area>/<what>``, e.g. ``optimizers/adam-epsilon-zero-in-float32``."""
    call: Callable[[], object]
    """Performs the bad input; the row's subject (construction, build, a call, a step)."""
    raises: type[BaseException] | tuple[type[BaseException], ...] | None
    """The exception type expected; ``None``: ``call`` must return, and ``check`` judges what it returned."""
    words: tuple[str, ...] = ()
    """Substrings the error message must contain (e.g. ``("learning_rate", "nan")``)."""
    check: Callable[[object], None] | None = None
    """With ``raises=None``: asserts that ``call()``'s result is the correct one."""
    keras: str = ""
    """What Keras' built-in does with the same input, where it was tried (documentation only)."""
    tensorflow_only: str = ""
    """Non-empty for a row about TensorFlow-only machinery (tf.function, IndexedSlices, tf.distribute):
    the reason, which the row's ``tensorflow_only`` marker carries (skipped on JAX and PyTorch)."""

    def __post_init__(self):
        if (self.raises is None) == (self.check is None):
            raise ValueError(f"case {self.id}: give exactly one of `raises` and `check`")
        if self.raises is not None and not self.words:
            raise ValueError(f"case {self.id}: an expected error must name the words its message contains")
