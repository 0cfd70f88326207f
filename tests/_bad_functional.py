"""Bad-input rows: ``keras_optreg.functional`` (construction, init, update, apply_updates), issue 13.

Every case is repeated over every factory (sgd, momentum sgd, adagrad, rmsprop, centered
rmsprop, adam, amsgrad) and, where the dtype matters, float16/bfloat16/float32/float64 parameters.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_optreg import functional as F
from tests.backend import x64
from tests.badinput import Case

NAN = float("nan")


def ones(shape, dtype="float32"):
    return keras.ops.ones(shape, dtype)


def const(values, dtype):
    return keras.ops.convert_to_tensor(np.asarray(values), dtype=dtype)
FACTORIES = {"sgd": lambda **k: F.sgd(0.5, **k), "momentum": lambda **k: F.sgd(0.5, momentum=0.9, **k),
             "adagrad": lambda **k: F.adagrad(0.5, **k), "rmsprop": lambda **k: F.rmsprop(0.5, **k),
             "centered_rmsprop": lambda **k: F.rmsprop(0.5, centered=True, momentum=0.5, **k),
             "adam": lambda **k: F.adam(0.5, **k), "amsgrad": lambda **k: F.adam(0.5, amsgrad=True, **k)}
EPSILON = {"adagrad", "rmsprop", "centered_rmsprop", "adam", "amsgrad"}


def _update(make, grads, params, state_params=None, **kwargs):
    def call():
        opt = make(**kwargs)
        state = opt.init(state_params if state_params is not None else params)
        return opt.update(grads, state, params)
    return call


def _step_then_apply(make, grads, params):
    def call():
        opt = make()
        updates, _ = opt.update(grads, opt.init(params))
        return F.apply_updates(params, updates)
    return call


def _integer_step(make):
    def call():
        opt = make()
        params = [const([1, 2, 3], "int32")]
        opt.update([ones(3)], opt.init(params), params)
    return call


def _low_precision_state(make, dtype):
    def call():
        opt = make()
        params = {"w": const([1.0, 2.0, 3.0], dtype)}
        state = opt.init(params)
        updates, state = opt.update({"w": const([0.0, 1.0, -1.0], dtype)}, state, params)
        return params, updates, state, F.apply_updates(params, updates)
    return call


def _check_low_precision(dtype):
    def check(result):
        params, updates, state, new = result
        assert keras.backend.standardize_dtype(new["w"].dtype) == dtype
        # computed in float32 (optax's dtype promotion in apply_updates)
        assert keras.backend.standardize_dtype(updates["w"].dtype) == "float32"
        for name, slot in state.items():
            if name != "count":
                assert keras.backend.standardize_dtype(slot["w"].dtype) == "float32", name
        moved = (keras.ops.convert_to_numpy(keras.ops.cast(new["w"], "float32")).astype(np.float64)
                 - keras.ops.convert_to_numpy(keras.ops.cast(params["w"], "float32")).astype(np.float64))
        assert np.isfinite(moved).all() and moved[0] == 0.0 and moved[1] < 0 < moved[2]
    return check


def _lr_callable(make_name, value):
    def call():
        opt = {"sgd": F.sgd, "adam": F.adam}[make_name](learning_rate=lambda count: value)
        params = [ones(3)]
        opt.update([ones(3)], opt.init(params), params)
    return call


def _rows():
    p, g = {"a": ones(3), "b": ones(2)}, {"b": ones(2), "c": ones(3)}
    for key, make in FACTORIES.items():
        yield Case(f"functional/{key}-integer-params-init", lambda m=make: m().init([const([1, 2], "int32")]),
                   TypeError, ("`params`", "floating-point", "int32"), keras="sgd(0.5) left int32 parameters unchanged")
        yield Case(f"functional/{key}-integer-params-step", _integer_step(make), TypeError, ("`params`", "int32"))
        if key == "sgd":  # no slot to compare with: the step's apply_updates finds the mismatch
            yield Case(f"functional/{key}-dict-keys-mismatch", _step_then_apply(make, g, p), ValueError,
                       ("`updates`", "structure", "'a'", "'c'"))
        else:
            yield Case(f"functional/{key}-dict-keys-mismatch", _update(make, g, None, state_params=p), ValueError,
                       ("`grads`", "structure", "'a'", "'c'"), keras="b fed into a's slot")
        yield Case(f"functional/{key}-dict-keys-mismatch-with-params", _update(make, g, p), ValueError,
                   ("`grads`", "structure", "key"))
        yield Case(f"functional/{key}-too-many-gradients", _update(make, [ones(3), ones(3)], [ones(3)]),
                   ValueError, ("`grads`", "structure", "arity"), keras="IndexError")
        yield Case(f"functional/{key}-too-few-gradients", _update(make, [ones(3)], [ones(3), ones(3)]),
                   ValueError, ("`grads`", "structure"))
        yield Case(f"functional/{key}-none-gradient", _update(make, [None, ones(3)], [ones(3), ones(3)]),
                   ValueError, ("`grads`", "None", "grads[0]"), keras="AttributeError")
        for n in (3, 5000):
            yield Case(f"functional/{key}-gradient-(1,)-for-({n},)", _update(make, [ones(1)], [ones(n)]),
                       ValueError, ("`grads`", "shape (1,)", f"({n},)", "no broadcasting"), keras="broadcast")
        yield Case(f"functional/{key}-integer-gradient", _update(make, [ones(3, "int32")], [ones(3)]),
                   TypeError, ("`grads`", "int32"))
        yield Case(f"functional/{key}-state-not-from-init", lambda m=make: m().update([ones(3)], {"counter": 0}),
                   ValueError, ("`state`", "init", "'count'"))
        yield Case(f"functional/{key}-apply-updates-shape", lambda: F.apply_updates([ones(3)], [ones(1)]),
                   ValueError, ("`updates`", "(1,)", "(3,)"))
        for dtype in ("float16", "bfloat16"):
            yield Case(f"functional/{key}-{dtype}-params-in-float32", _low_precision_state(make, dtype), None,
                       check=_check_low_precision(dtype), keras="NaN after a step (hyper-parameters cast to float16)")
        if key in EPSILON:
            for dtype in ("float16", "bfloat16", "float32"):
                yield Case(f"functional/{key}-epsilon-1e-50-{dtype}",
                           _update(make, [ones(3, dtype)], [ones(3, dtype)], epsilon=1e-50), ValueError,
                           ("`epsilon`", "float32", "1e-50"))
            if x64():  # float64 parameters exist (JAX: only with jax_enable_x64)
                yield Case(f"functional/{key}-epsilon-1e-50-float64-works",
                           _update(make, [const([0.0, 1.0, 2.0], "float64")], [ones(3, "float64")],
                                   epsilon=1e-50), None, check=_finite_update)
            yield Case(f"functional/{key}-epsilon-nan", lambda m=make: m(epsilon=NAN), ValueError,
                       ("`epsilon`", "epsilon=nan"))
        yield Case(f"functional/{key}-learning_rate-nan", lambda k=key: _lr_nan(k),
                   ValueError, ("`learning_rate`", "learning_rate=nan"))
    for key in ("adam", "rmsprop"):
        arg = {"adam": "beta_2", "rmsprop": "rho"}[key]
        yield Case(f"functional/{key}-{arg}-1-1e-10-float32",
                   _update(FACTORIES[key], [ones(3)], [ones(3)], **{arg: 1 - 1e-10}), ValueError,
                   (f"`{arg}`", "float32"))
    yield Case("functional/adagrad-initial_accumulator_value-negative",
               lambda: F.adagrad(initial_accumulator_value=-0.1), ValueError,
               ("`initial_accumulator_value`", "-0.1"))
    yield Case("functional/rmsprop-centered-string", lambda: F.rmsprop(centered="yes"), TypeError, ("`centered`",))
    yield Case("functional/adam-amsgrad-string", lambda: F.adam(amsgrad="yes"), TypeError, ("`amsgrad`",))
    for name in ("sgd", "adam"):
        yield Case(f"functional/{name}-learning_rate-callable-string", _lr_callable(name, "fast"), TypeError,
                   ("`learning_rate`", "'fast'", "step time"), keras="a deep error")
        yield Case(f"functional/{name}-learning_rate-callable-negative", _lr_callable(name, -1.0), ValueError,
                   ("`learning_rate`", "learning_rate=-1.0"))
    yield Case("functional/apply-updates-integer-params", lambda: F.apply_updates([const([1, 2], "int32")], [ones(2)]),
               TypeError, ("`params`", "int32"))


def _lr_nan(key):
    return {"sgd": F.sgd, "momentum": F.sgd, "adagrad": F.adagrad, "rmsprop": F.rmsprop,
            "centered_rmsprop": F.rmsprop, "adam": F.adam, "amsgrad": F.adam}[key](learning_rate=NAN)


def _finite_update(result):
    updates, state = result
    u = keras.ops.convert_to_numpy(updates[0])
    assert keras.backend.standardize_dtype(updates[0].dtype) == "float64"
    assert np.isfinite(u).all() and u[0] == 0.0 and u[2] < 0.0


CASES = list(_rows())
