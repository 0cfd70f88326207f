"""Bad-input rows: optimizers (construction, build, step), issue 13.

Each named case of the issue is repeated over the classes around it (every optimizer; float16,
bfloat16, float32 and float64 variables where the dtype matters). ``keras=`` records what Keras'
twin does with the same input (tried with Keras 3.15.1).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

import keras_optreg as ko
from tests import backend as B
from tests.badinput import Case

XLA_RAISE = ("XLA on TensorFlow drops tf.debugging.check_numerics, so nonfinite='raise' refuses a jit_compile=True "
             "step there (JAX raises from inside jax.jit: tests/test_optimizers_behaviour.py)")
SPARSE = "sparse gradients (tf.IndexedSlices) are TensorFlow's: Embedding's gradient is dense on JAX and PyTorch"
SIGNATURE = ("tf.function input signatures with unknown dimensions are TensorFlow's (JAX and PyTorch trace "
             "concrete shapes)")

NAN, INF = float("nan"), float("inf")
CLASSES = {"sgd": ko.SGD, "adagrad": ko.Adagrad, "rmsprop": ko.RMSprop, "adam": ko.Adam}
#: each class's own hyper-parameters: name -> (kind in "unit", "positive", "nonnegative", "bool")
OWN = {"sgd": {"momentum": "unit", "nesterov": "bool"},
       "adagrad": {"epsilon": "positive", "initial_accumulator_value": "nonnegative"},
       "rmsprop": {"rho": "unit", "momentum": "unit", "epsilon": "positive", "centered": "bool"},
       "adam": {"beta_1": "unit", "beta_2": "unit", "epsilon": "positive", "amsgrad": "bool"}}
BAD = {"unit": [(NAN, "nan"), (1.0, "1.0"), (-0.1, "-0.1"), (INF, "inf")],
       "positive": [(NAN, "nan"), (0.0, "0.0"), (-1e-7, "-1e-07"), (INF, "inf")],
       "nonnegative": [(NAN, "nan"), (-0.1, "-0.1"), (INF, "inf")]}
#: Keras' base-class options: (value, error type, the words of the message)
BASE = {"clipnorm": [(-1.0, ValueError), (NAN, ValueError), (0.0, ValueError), (INF, ValueError)],
        "global_clipnorm": [(-1.0, ValueError), (NAN, ValueError), (0.0, ValueError)],
        "clipvalue": [(NAN, ValueError), (-1.0, ValueError), (0.0, ValueError)],
        "weight_decay": [(-1.0, ValueError), (NAN, ValueError), (INF, ValueError), ("0.1", TypeError)],
        "use_ema": [("yes", TypeError), (1, TypeError)],
        "ema_momentum": [(NAN, ValueError), (1.5, ValueError), (-0.1, ValueError)],
        "ema_overwrite_frequency": [(0, ValueError), (2.5, TypeError)],
        "loss_scale_factor": [(0.0, ValueError), (NAN, ValueError), (-2.0, ValueError)],
        "gradient_accumulation_steps": [(1, ValueError), (0, ValueError), (2.5, TypeError), (True, TypeError)]}


def _var(shape=(3,), dtype="float32"):
    # PyTorch refuses a trainable integer tensor itself (requires_grad); the optimizer's check is on the dtype
    return keras.Variable(np.ones(shape), dtype=dtype, trainable=keras.backend.is_float_dtype(dtype))


def _build(cls, dtype="float32", **kwargs):
    def call():
        cls(**kwargs).build([_var(dtype=dtype)])
    return call


def _step(opt, grads, variables=None):
    variables = variables or [_var()]

    def call():
        opt.apply(grads, variables)
        return opt, variables
    return call


def _construction_rows():
    for key, cls in CLASSES.items():
        for arg, kind in OWN[key].items():
            if kind == "bool":
                yield Case(f"optimizers/{key}-{arg}-string", lambda c=cls, a=arg: c(**{a: "yes"}), TypeError,
                           (f"`{arg}`", "bool", "'yes'"), keras="accepted, truthy")
                continue
            for value, text in BAD[kind]:
                yield Case(f"optimizers/{key}-{arg}-{text}", lambda c=cls, a=arg, v=value: c(**{a: v}), ValueError,
                           (f"`{arg}`", f"{arg}={text}"), keras="nan accepted" if text == "nan" else "")
        for value, text in ((NAN, "nan"), (-1.0, "-1.0"), (INF, "inf")):
            yield Case(f"optimizers/{key}-learning_rate-{text}", lambda c=cls, v=value: c(learning_rate=v), ValueError,
                       ("`learning_rate`", f"learning_rate={text}"))
        yield Case(f"optimizers/{key}-learning_rate-string", lambda c=cls: c(learning_rate="0.1"), TypeError,
                   ("`learning_rate`", "'0.1'"))
        yield Case(f"optimizers/{key}-nonfinite-unknown", lambda c=cls: c(nonfinite="ignore"), ValueError,
                   ("`nonfinite`", "'ignore'"))
        yield Case(f"optimizers/{key}-track_gradient_norm-int", lambda c=cls: c(track_gradient_norm=1), TypeError,
                   ("`track_gradient_norm`", "track_gradient_norm=1"))
        for arg, rows in BASE.items():
            for value, error in rows:
                yield Case(f"optimizers/{key}-{arg}-{value!r}", lambda c=cls, a=arg, v=value: c(**{a: v}), error,
                           (f"`{arg}`", f"{arg}={value!r}"),
                           keras="accepted, no clipping" if arg.startswith("clip") or arg == "global_clipnorm" else "")


def _rounding_rows():
    """Hyper-parameters valid as Python floats, broken once rounded to the dtype that computes."""
    for key, cls in CLASSES.items():
        yield Case(f"optimizers/{key}-learning_rate-1e39-is-inf-in-float32", lambda c=cls: c(learning_rate=1e39),
                   ValueError, ("`learning_rate`", "float32", "inf", "1e+39"), keras="accepted, inf weights")
        for dtype in ("float16", "bfloat16", "float32"):  # all three compute in float32
            yield Case(f"optimizers/{key}-clipnorm-1e39-{dtype}", _build(cls, dtype, clipnorm=1e39), ValueError,
                       ("`clipnorm`", "float32", "1e+39"))
            yield Case(f"optimizers/{key}-loss_scale_factor-1e-50-{dtype}", _build(cls, dtype, loss_scale_factor=1e-50),
                       ValueError, ("`loss_scale_factor`", "float32", "1e-50"))
        yield Case(f"optimizers/{key}-weight_decay-1e-50-float16", _build(cls, "float16", weight_decay=1e-50),
                   ValueError, ("`weight_decay`", "float16", "applies the weight decay"))
        for arg, kind in OWN[key].items():
            bad = {"unit": 1 - 1e-10, "positive": 1e-50, "nonnegative": 1e39}.get(kind)
            if bad is None:
                continue
            for dtype in ("float16", "bfloat16", "float32"):
                yield Case(f"optimizers/{key}-{arg}-{bad!r}-{dtype}", _build(cls, dtype, **{arg: bad}), ValueError,
                           (f"`{arg}`", "float32", "computes the update", repr(bad)),
                           keras="accepted: NaN or a frozen average")
            if kind == "positive":
                yield Case(f"optimizers/{key}-{arg}-1e-40-subnormal-float32", _build(cls, **{arg: 1e-40}), ValueError,
                           (f"`{arg}`", "smallest normal", "1e-40"))
                step = _step(cls(**{arg: 1e-50}), [ops.convert_to_tensor([0.0, 1.0, 2.0], "float64")],
                             [_var(dtype="float64")])
                if B.x64():
                    yield Case(f"optimizers/{key}-{arg}-1e-50-float64-works", step, None, check=_finite_and_moved)
                else:  # JAX without jax_enable_x64: Keras makes a float64 variable float32, where 1e-50 is 0
                    yield Case(f"optimizers/{key}-{arg}-1e-50-float64-is-float32-without-x64", step, ValueError,
                               (f"`{arg}`", "float32", "1e-50"))


def _finite_and_moved(result):
    opt, (v,) = result
    value = v.numpy()
    assert v.dtype == "float64" and np.isfinite(value).all()
    assert value[0] == 1.0 and value[2] < 1.0  # zero gradient: no move (0 / (0 + 1e-50) = 0); the others descend


def _xla_raise(cls):
    def call():
        import tensorflow as tf

        opt = cls(nonfinite="raise")
        v = _var()
        tf.function(lambda g: opt.apply([g], [v]), jit_compile=True)(tf.constant([1.0, np.nan, 0.0]))
    return call


def _fit_xla_raise(cls):
    def call():
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(cls(nonfinite="raise"), loss="mse", jit_compile=True)
        model.fit(np.ones((4, 2)), np.ones((4, 1)), verbose=0)
    return call


def _set_lr(cls, value):
    def call():
        cls().learning_rate = value
    return call


def _lr_callable(cls, value, nonfinite="propagate"):
    def call():
        opt = cls(learning_rate=lambda: value, nonfinite=nonfinite)
        return _step(opt, [ops.ones(3)])()
    return call


class _NaNSchedule(keras.optimizers.schedules.LearningRateSchedule):
    def __call__(self, step):
        return ops.where(step >= 1, ops.convert_to_tensor(np.nan, "float32"), ops.convert_to_tensor(0.1, "float32"))


def _schedule_nan(cls, nonfinite):
    def call():
        opt, v = cls(learning_rate=_NaNSchedule(), nonfinite=nonfinite), [_var()]
        for _ in range(2):
            opt.apply([ops.ones(3)], v)
        return opt, v
    return call


def _skipped_once(result):
    opt, (v,) = result
    assert int(opt.skipped_steps.numpy()) == 1
    assert np.isfinite(v.numpy()).all() and (v.numpy() < 1.0).all()  # the first step moved, the NaN one did not


def _step_rows():
    for key, cls in CLASSES.items():
        yield Case(f"optimizers/{key}-raise-under-tf-function-xla", _xla_raise(cls), ValueError,
                   ("nonfinite='raise'", "XLA", "jit_compile=False"), keras="no such option", tensorflow_only=XLA_RAISE)
        yield Case(f"optimizers/{key}-raise-under-fit-jit_compile", _fit_xla_raise(cls), ValueError,
                   ("nonfinite='raise'", "XLA"), tensorflow_only=XLA_RAISE)
        for value, text in ((NAN, "nan"), (-5.0, "-5.0"), (INF, "inf")):
            yield Case(f"optimizers/{key}-assign-learning_rate-{text}", _set_lr(cls, value), ValueError,
                       ("`learning_rate`", f"learning_rate={text}"), keras="accepted, NaN or climbing weights")
        yield Case(f"optimizers/{key}-assign-learning_rate-string", _set_lr(cls, "0.1"), TypeError,
                   ("`learning_rate`", "'0.1'"))
        yield Case(f"optimizers/{key}-learning_rate-callable-negative", _lr_callable(cls, -0.5), ValueError,
                   ("`learning_rate`", "learning_rate=-0.5"), keras="accepted, climbing weights")
        yield Case(f"optimizers/{key}-learning_rate-callable-string", _lr_callable(cls, "fast"), TypeError,
                   ("`learning_rate`", "'fast'", "step time"), keras="a deep TypeError")
        yield Case(f"optimizers/{key}-learning_rate-schedule-nan-skip", _schedule_nan(cls, "skip"), None,
                   check=_skipped_once, keras="NaN weights")
        yield Case(f"optimizers/{key}-learning_rate-schedule-nan-raise", _schedule_nan(cls, "raise"),
                   B.nonfinite_errors(), ("learning_rate",))
        for shape in ((3,), (5000,)):  # op by op and the fused kernel
            n = shape[0]
            yield Case(f"optimizers/{key}-gradient-(1,)-for-({n},)", _step(cls(), [ops.ones((1,))], [_var(shape)]),
                       ValueError, ("must have the variable's shape", f"({n},)", "(1,)"), keras="broadcast")
        yield Case(f"optimizers/{key}-gradient-(3,1)-for-(3,)", _step(cls(), [ops.ones((3, 1))]), ValueError,
                   ("must have the variable's shape", "(3, 1)"))
        yield Case(f"optimizers/{key}-too-many-gradients", _step(cls(), [ops.ones(3), ops.ones(3)]), ValueError,
                   ("`grads`", "1 variables", "2 gradients"), keras="the extra one ignored")
        yield Case(f"optimizers/{key}-too-few-gradients", _step(cls(), [ops.ones(3)], [_var(), _var()]), ValueError,
                   ("`grads`", "2 variables", "1 gradients"))
        yield Case(f"optimizers/{key}-no-gradient", _step(cls(), [None]), ValueError,
                   ("No gradients provided",))
        yield Case(f"optimizers/{key}-integer-gradient", _step(cls(), [ops.ones(3, 'int32')]), TypeError,
                   ("float tensor", "int32"))
        yield Case(f"optimizers/{key}-integer-variable", _step(cls(), [ops.ones(3, 'int32')], [_var(dtype="int32")]),
                   TypeError, ("floating-point variables only", "int32"))
        yield Case(f"optimizers/{key}-sparse-gradient-wrong-dense-shape", _sparse_mismatch(cls), ValueError,
                   ("must have the variable's shape", "(4, 2)"), tensorflow_only=SPARSE)
        yield Case(f"optimizers/{key}-dynamic-shape-mismatch", _dynamic_mismatch(cls), _invalid_argument(),
                   ("not compatible with expected shape", "[3]"), tensorflow_only=SIGNATURE)


def _invalid_argument():
    if not B.TENSORFLOW:
        return RuntimeError  # the row is skipped there
    import tensorflow as tf

    return tf.errors.InvalidArgumentError


def _sparse_mismatch(cls):
    def call():
        import tensorflow as tf

        return _step(cls(), [tf.IndexedSlices(tf.ones((1, 2)), tf.constant([0]), tf.constant([4, 2]))],
                     [_var((3, 2))])()
    return call


def _dynamic_mismatch(cls):
    def call():
        import tensorflow as tf

        opt, v = cls(), _var()
        opt.build([v])
        tf.function(lambda g: opt.apply([g], [v]), input_signature=[tf.TensorSpec([None])])(ops.ones((1,)))
    return call


SEED = Case("optimizers/adam-beta_1-nan", lambda: ko.Adam(beta_1=NAN), ValueError, ("beta_1", "nan"))
CASES = [SEED, *(c for c in (*_construction_rows(), *_rounding_rows(), *_step_rows()) if c.id != SEED.id)]
