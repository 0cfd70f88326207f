"""Issue 12 bug 1: sparse gradients (``tf.IndexedSlices``, an Embedding's) step exactly as their dense form,
for every optimizer, below and above ``_fused.MIN_SIZE``, every ``nonfinite`` mode, eager, graph and XLA.

Before the fix, Adagrad, RMSprop and Adam raised ``TypeError: unsupported operand type(s) for *:
'IndexedSlices' and 'IndexedSlices'`` on any variable under 4096 elements.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_optreg as ko
from keras_optreg import _fused

pytestmark = pytest.mark.tensorflow_only(
    "sparse gradients (tf.IndexedSlices) are TensorFlow's: Embedding's gradient is dense on JAX and PyTorch")

#: every class, and the options that add slots (the densified gradient then meets every rule)
MAKERS = {
    "sgd": lambda **k: ko.SGD(0.05, **k),
    "momentum": lambda **k: ko.SGD(0.05, momentum=0.9, **k),
    "adagrad": lambda **k: ko.Adagrad(0.1, **k),
    "rmsprop": lambda **k: ko.RMSprop(0.01, **k),
    "rmsprop_centered": lambda **k: ko.RMSprop(0.01, momentum=0.5, centered=True, **k),
    "adam": lambda **k: ko.Adam(0.01, **k),
    "amsgrad": lambda **k: ko.Adam(0.01, amsgrad=True, **k),
}
ROWS = {"small": 10, "large": 1000}  # x 16 columns: 160 (op by op) and 16000 (fused kernel) elements
assert ROWS["small"] * 16 < _fused.MIN_SIZE <= ROWS["large"] * 16
RNG = np.random.default_rng(1)
MODES = {"eager": ("propagate", "skip", "raise"), "graph": ("propagate", "skip", "raise"), "xla": ("propagate", "skip")}


def _sparse(rows, step):
    # row 3 twice: the dense form sums repeated rows
    values = RNG.normal(size=(4, 16)).astype(np.float32) * (1 + step)
    return tf.IndexedSlices(tf.constant(values), tf.constant([3, 0, 3, rows - 1]), tf.constant([rows, 16]))


def _stepper(pairs):
    def step(gs):
        for (sparse_opt, dense_opt, a, b), g in zip(pairs, gs, strict=True):
            sparse_opt.apply([g], [a])
            dense_opt.apply([tf.convert_to_tensor(g)], [b])

    return step


@pytest.mark.parametrize("kind", list(MAKERS))
def test_sparse_gradients_step_as_their_dense_form(kind):
    """Every nonfinite mode and both table sizes of one execution mode in one function (one trace per mode)."""
    tables = {rows: RNG.normal(size=(rows, 16)).astype(np.float32) for rows in ROWS.values()}
    cases = [(n, rows) for n in ("propagate", "skip", "raise") for rows in tables]
    steps = [[_sparse(rows, k) for _, rows in cases] for k in range(3)]
    for mode, nonfinite_modes in MODES.items():
        active = [i for i, (n, _) in enumerate(cases) if n in nonfinite_modes]
        pairs = [(MAKERS[kind](nonfinite=cases[i][0]), MAKERS[kind](nonfinite=cases[i][0]),
                  keras.Variable(tables[cases[i][1]]), keras.Variable(tables[cases[i][1]])) for i in active]
        step = _stepper(pairs)
        fn = step if mode == "eager" else tf.function(step, jit_compile=mode == "xla")
        for gs in steps:
            fn([gs[i] for i in active])
        for i, (sparse_opt, dense_opt, a, b) in zip(active, pairs, strict=True):
            nonfinite, rows = cases[i]
            where = f"{mode} {nonfinite} {rows} rows"
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=where)
            for u, v in zip(sparse_opt.variables, dense_opt.variables, strict=True):
                np.testing.assert_array_equal(u.numpy(), v.numpy(), err_msg=f"{where} {u.path}")
            assert not np.array_equal(a.numpy(), tables[rows])
            untouched = [r for r in range(rows) if r not in (0, 3, rows - 1)]
            if kind == "sgd":  # no slot: rows without a gradient stay as they were
                np.testing.assert_array_equal(a.numpy()[untouched], tables[rows][untouched])


@pytest.mark.parametrize("kind", list(MAKERS))
def test_sparse_nonfinite_gradient_is_skipped_or_raised(kind):
    for rows in ROWS.values():
        bad = tf.IndexedSlices(tf.constant([[np.nan] * 16], tf.float32), tf.constant([1]), tf.constant([rows, 16]))
        var = keras.Variable(np.ones((rows, 16), np.float32))
        skip = MAKERS[kind](nonfinite="skip")
        skip.apply([bad], [var])
        assert int(skip.skipped_steps.numpy()) == 1
        np.testing.assert_array_equal(var.numpy(), 1.0)
        with pytest.raises(tf.errors.InvalidArgumentError, match="nonfinite gradient"):
            MAKERS[kind](nonfinite="raise").apply([bad], [var])
        np.testing.assert_array_equal(var.numpy(), 1.0)
