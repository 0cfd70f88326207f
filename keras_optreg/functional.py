"""Functional (optax-style) optimizers over the same update rules as ``keras_optreg.optimizers``.

The lecture's snippet, line for line::

    opt = keras_optreg.functional.adam(learning_rate=0.001)
    opt_state = opt.init(weights)
    updates, opt_state = opt.update(grads, opt_state, weights)
    weights = keras_optreg.functional.apply_updates(weights, updates)

``weights`` and ``grads`` are any nested structure (lists, tuples, dicts) of float tensors.
Everything is pure: the state is a dict of tensors (``count`` = steps taken, plus one slot tree
per state variable, named as the Keras optimizers' slots), nothing is hidden, so ``update``
compiles on every backend: ``tf.function(jit_compile=True)``, ``jax.jit`` (also through ``jax.grad`` of a
loss) and ``torch.compile(fullgraph=True)`` (no graph break; Inductor), each traced once (tests/test_functional.py).
``learning_rate`` is a float or a callable of
the step (``count`` before the step, as Keras passes ``iterations``), e.g. ``keras_optreg.LinearDecay``.
The rules are ``keras_optreg._math.optim`` (eqs. 4-18, GBC16 Alg. 8.1-8.7); see there for the
equations.

Checks (``ValueError``/``TypeError`` naming the argument and what was received): parameters must
be float tensors (``init``, ``apply_updates``); ``grads`` (and ``params``, when given) must have
exactly the structure ``init`` saw, every leaf a float tensor of its parameter's shape (no
broadcasting, no ``None``); a learning rate a callable returns must be a number or a float
tensor, and a Python number must be finite and >= 0 (a tensor is used as is: this API has no
``nonfinite`` option). Hyper-parameters are checked at construction and, rounded to the dtype
that computes, at ``init``. A float16/bfloat16 parameter's slots and updates are float32 (the
update is computed in float32, as in the Keras classes); ``apply_updates`` adds in float32 and
rounds once to the parameter's dtype, as ``optax.apply_updates`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import keras
from keras import ops, tree

from keras_optreg import _validation as V
from keras_optreg._math import optim as M
from keras_optreg.optimizers import _checks as C

__all__ = ["GradientTransformation", "sgd", "adagrad", "rmsprop", "adam", "apply_updates"]


class GradientTransformation(NamedTuple):
    """``init(params) -> state`` and ``update(grads, state, params=None) -> (updates, state)``."""

    init: Callable
    update: Callable


def _leaf_name(path):
    return "".join(f"[{k!r}]" for k in path) or "(the root)"


def _float_leaves(name, structure):
    """``[(path, tensor)]`` of a structure of float tensors; TypeError for any other leaf."""
    out = []
    for path, leaf in tree.flatten_with_path(structure):
        if leaf is None:
            raise ValueError(f"Argument `{name}` must hold a tensor at every leaf. Received: None at "
                             f"{name}{_leaf_name(path)}")
        if not (ops.is_tensor(leaf) or isinstance(leaf, keras.Variable)):
            leaf = ops.convert_to_tensor(leaf)
        dtype = keras.backend.standardize_dtype(leaf.dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise TypeError(f"Argument `{name}` must hold floating-point tensors (the optimizers update only "
                            f"those). Received: {name}{_leaf_name(path)} of dtype {dtype}")
        out.append((path, leaf))
    return out


def _same_structure(name, value, reference, what):
    try:
        tree.assert_same_structure(reference, value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"Argument `{name}` must have exactly the structure of {what}. Received: a mismatch "
                         f"({exc})") from None


def apply_updates(params, updates):
    r""":math:`\theta \leftarrow \theta + \Delta\theta`, leaf by leaf, computed in the update's dtype
    (float32 for a float16/bfloat16 parameter) and rounded once to the parameter's dtype.

    Args:
        params: the parameters, a structure of float tensors.
        updates: the ``update`` output, the same structure and shapes.
    """
    _same_structure("updates", updates, params, "`params`")
    leaves = _float_leaves("params", params)
    out = []
    for (path, p), (_, u) in zip(leaves, _float_leaves("updates", updates), strict=True):
        if tuple(u.shape) != tuple(p.shape):
            raise ValueError(f"Argument `updates` must match each parameter's shape. Received: updates"
                             f"{_leaf_name(path)} of shape {tuple(u.shape)} for a parameter of shape {tuple(p.shape)}")
        dtype = keras.backend.standardize_dtype(p.dtype)
        compute = C.compute_dtype(dtype)
        out.append(ops.cast(ops.cast(p, compute) + ops.cast(u, compute), dtype))
    return tree.pack_sequence_as(params, out)


def _make(factory, learning_rate, slots, rule, hyper, initial=None):
    """``rule(g, slots, lr, t) -> (update, *new_slots)``; ``hyper``: {name: (value, kind)} checked at init."""
    learning_rate = C.learning_rate(learning_rate)
    initial = initial or {}

    def init(params):
        leaves = _float_leaves("params", params)
        for dtype in sorted({C.compute_dtype(p.dtype) for _, p in leaves}):
            for name, (value, kind) in hyper.items():
                C.in_dtype(name, value, kind, dtype)
        state = {"count": ops.zeros((), "int64")}
        for name in slots:
            state[name] = tree.pack_sequence_as(params, [
                ops.full(tuple(p.shape), initial.get(name, 0.0), C.compute_dtype(p.dtype)) for _, p in leaves])
        return state

    def update(grads, state, params=None):
        if not isinstance(state, dict) or set(state) != {"count", *slots}:
            raise ValueError(f"Argument `state` must be the state `{factory}().init` returns, a dict with keys "
                             f"{sorted({'count', *slots})}. Received: "
                             f"{sorted(state) if isinstance(state, dict) else type(state).__name__}")
        references = [(state[name], "the parameters the state was built for") for name in slots]
        if params is not None:
            references.append((params, "`params`"))
        for reference, what in references:
            _same_structure("grads", grads, reference, what)
        flat_g = _float_leaves("grads", grads)
        shapes = [tuple(x.shape) for x in tree.flatten(references[0][0])] if references else None
        for i, (path, g) in enumerate(flat_g):
            if shapes is not None and tuple(g.shape) != shapes[i]:
                raise ValueError(f"Argument `grads` must match each parameter's shape (no broadcasting). Received: "
                                 f"grads{_leaf_name(path)} of shape {tuple(g.shape)} for a parameter of shape "
                                 f"{shapes[i]}")
        count = state["count"]
        lr = C.step_learning_rate(learning_rate(count) if callable(learning_rate) else learning_rate)
        flat_slots = [tree.flatten(state[n]) for n in slots]
        updates, new_slots = [], [[] for _ in slots]
        for i, (_, g) in enumerate(flat_g):
            dt = C.compute_dtype(g.dtype) if not flat_slots else keras.backend.standardize_dtype(flat_slots[0][i].dtype)
            out = rule(ops.cast(g, dt), [s[i] for s in flat_slots], C.as_dtype(lr, dt), ops.cast(count + 1, dt))
            updates.append(out[0])
            for j, value in enumerate(out[1:]):
                new_slots[j].append(value)
        new_state = {"count": count + 1}
        for name, values in zip(slots, new_slots, strict=True):
            new_state[name] = tree.pack_sequence_as(state[name], values)
        return tree.pack_sequence_as(grads, updates), new_state

    return GradientTransformation(init, update)


def _c(x, g):
    return C.as_dtype(x, g.dtype)


def sgd(learning_rate=0.01, momentum=0.0, nesterov=False):
    r"""Eqs. (4)-(5), GBC16 Alg. 8.1 (:math:`\theta \leftarrow \theta - \epsilon g`); with momentum
    Alg. 8.2 (eqs. 7-9), ``nesterov=True`` Alg. 8.3 in look-ahead form (``keras_optreg.SGD``).

    Args:
        learning_rate: :math:`\epsilon`, a float >= 0 or a callable of the step.
        momentum: :math:`\alpha` in [0, 1); state slot ``momentum`` (:math:`v`).
        nesterov: Nesterov momentum.
    """
    alpha = V.unit_interval("momentum", momentum)
    V.boolean("nesterov", nesterov)
    hyper = {"momentum": (alpha, "unit")}
    if alpha == 0.0:
        return _make("sgd", learning_rate, (), lambda g, s, lr, t: M.sgd(g, lr), hyper)
    return _make("sgd", learning_rate, ("momentum",),
                 lambda g, s, lr, t: M.momentum(g, s[0], lr, _c(alpha, g), nesterov), hyper)


def adagrad(learning_rate=0.001, initial_accumulator_value=0.0, epsilon=1e-7):
    r"""GBC16 Alg. 8.4: :math:`r \leftarrow r + g \odot g`, :math:`\theta \leftarrow \theta - \epsilon g / (\delta + \sqrt{r})`.

    Args:
        learning_rate: :math:`\epsilon`, a float >= 0 or a callable of the step.
        initial_accumulator_value: :math:`r_0` >= 0 (GBC16: 0; Keras: 0.1); state slot ``accumulator``.
        epsilon: :math:`\delta` > 0.
    """
    r0 = V.finite_nonnegative("initial_accumulator_value", initial_accumulator_value)
    delta = V.finite_positive("epsilon", epsilon)
    return _make("adagrad", learning_rate, ("accumulator",), lambda g, s, lr, t: M.adagrad(g, s[0], lr, _c(delta, g)),
                 {"epsilon": (delta, "positive"), "initial_accumulator_value": (r0, "nonnegative")},
                 initial={"accumulator": r0})


def rmsprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-6, centered=False):
    r"""Eqs. (10)-(12) corrected, GBC16 Alg. 8.5 (:math:`\theta \leftarrow \theta - \epsilon g / \sqrt{\delta + r}`);
    ``centered`` Graves (2013) eqs. (38)-(40); ``momentum > 0`` Alg. 8.6 (Nesterov momentum) in
    look-ahead form, the parameters being :math:`\phi = \theta - \alpha m` (see ``keras_optreg.RMSprop``).

    Args:
        learning_rate: :math:`\epsilon`, a float >= 0 or a callable of the step.
        rho: :math:`\rho` in [0, 1); state slot ``velocity`` (:math:`r`).
        momentum: :math:`\alpha` in [0, 1); state slot ``momentum`` (:math:`m = -v`, Keras' sign).
        epsilon: :math:`\delta` > 0.
        centered: Graves' centered denominator; state slot ``average_gradient`` (:math:`b`).
    """
    rho = V.unit_interval("rho", rho)
    delta = V.finite_positive("epsilon", epsilon)
    alpha = V.unit_interval("momentum", momentum)
    centered = V.boolean("centered", centered)
    hyper = {"rho": (rho, "unit"), "epsilon": (delta, "positive"), "momentum": (alpha, "unit")}

    def hp(g):
        return _c(rho, g), _c(delta, g)

    if alpha > 0 and centered:
        return _make("rmsprop", learning_rate, ("velocity", "momentum", "average_gradient"),
                     lambda g, s, lr, t: M.rmsprop_centered_nesterov(g, *s, lr, *hp(g), _c(alpha, g)), hyper)
    if alpha > 0:
        return _make("rmsprop", learning_rate, ("velocity", "momentum"),
                     lambda g, s, lr, t: M.rmsprop_nesterov(g, *s, lr, *hp(g), _c(alpha, g)), hyper)
    if centered:
        return _make("rmsprop", learning_rate, ("velocity", "average_gradient"),
                     lambda g, s, lr, t: M.rmsprop_centered(g, *s, lr, *hp(g)), hyper)
    return _make("rmsprop", learning_rate, ("velocity",), lambda g, s, lr, t: M.rmsprop(g, s[0], lr, *hp(g)), hyper)


def adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False):
    r"""Eqs. (13)-(18) corrected, GBC16 Alg. 8.7 = Kingma & Ba Alg. 1
    (:math:`\theta \leftarrow \theta - \epsilon \hat s / (\sqrt{\hat r} + \delta)`); ``amsgrad``: AMSGrad
    (Reddi et al. 2018) in Keras' and PyTorch's form (``keras_optreg.Adam``).

    Args:
        learning_rate: :math:`\epsilon`, a float >= 0 or a callable of the step.
        beta_1: :math:`\rho_1` in [0, 1); state slot ``momentum`` (:math:`s`).
        beta_2: :math:`\rho_2` in [0, 1); state slot ``velocity`` (:math:`r`).
        epsilon: :math:`\delta` > 0.
        amsgrad: AMSGrad; state slot ``velocity_hat`` (:math:`\tilde r`).
    """
    b1 = V.unit_interval("beta_1", beta_1)
    b2 = V.unit_interval("beta_2", beta_2)
    delta = V.finite_positive("epsilon", epsilon)
    amsgrad = V.boolean("amsgrad", amsgrad)
    hyper = {"beta_1": (b1, "unit"), "beta_2": (b2, "unit"), "epsilon": (delta, "positive")}
    if amsgrad:
        return _make("adam", learning_rate, ("momentum", "velocity", "velocity_hat"),
                     lambda g, s, lr, t: M.amsgrad(g, *s, t, lr, _c(b1, g), _c(b2, g), _c(delta, g)), hyper)
    return _make("adam", learning_rate, ("momentum", "velocity"),
                 lambda g, s, lr, t: M.adam(g, *s, t, lr, _c(b1, g), _c(b2, g), _c(delta, g)), hyper)
