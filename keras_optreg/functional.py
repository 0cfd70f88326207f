"""Functional (optax-style) optimizers over the same update rules as ``keras_optreg.optimizers``.

The lecture's snippet, line for line::

    opt = keras_optreg.functional.adam(learning_rate=0.001)
    opt_state = opt.init(weights)
    updates, opt_state = opt.update(grads, opt_state, weights)
    weights = keras_optreg.functional.apply_updates(weights, updates)

``weights`` and ``grads`` are any nested structure (lists, tuples, dicts) of float tensors.
Everything is pure: the state is a dict of tensors (``count`` = steps taken, plus one slot tree
per state variable), nothing is hidden, so ``update`` compiles with
``tf.function(jit_compile=True)``. ``learning_rate`` is a float or a callable of the step
(``count`` before the step, as Keras passes ``iterations``), e.g. ``keras_optreg.LinearDecay``.
The rules are ``keras_optreg._math.optim`` (eqs. 4-18, GBC16 Alg. 8.1-8.7); see there for the
equations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from keras import ops, tree

from keras_optreg import _validation as V
from keras_optreg._math import optim as M
from keras_optreg.optimizers import _check_learning_rate

__all__ = ["GradientTransformation", "sgd", "adagrad", "rmsprop", "adam", "apply_updates"]


class GradientTransformation(NamedTuple):
    """``init(params) -> state`` and ``update(grads, state, params=None) -> (updates, state)``."""

    init: Callable
    update: Callable


def apply_updates(params, updates):
    r""":math:`\theta \leftarrow \theta + \Delta\theta`, leaf by leaf."""
    return tree.map_structure(lambda p, u: p + ops.cast(u, p.dtype), params, updates)


def _make(learning_rate, slots, rule):
    learning_rate = _check_learning_rate(learning_rate)

    def init(params):
        state = {"count": ops.zeros((), "int64")}
        for name in slots:
            state[name] = tree.map_structure(ops.zeros_like, params)
        return state

    def update(grads, state, params=None):
        count = state["count"]
        lr = learning_rate(count) if callable(learning_rate) else learning_rate
        flat_g = tree.flatten(grads)
        flat_slots = [tree.flatten(state[n]) for n in slots]
        updates, new_slots = [], [[] for _ in slots]
        for i, g in enumerate(flat_g):
            dt = g.dtype
            out = rule(g, [s[i] for s in flat_slots], ops.cast(lr, dt), ops.cast(count + 1, dt))
            updates.append(out[0])
            for j, value in enumerate(out[1:]):
                new_slots[j].append(value)
        new_state = {"count": count + 1}
        for name, values in zip(slots, new_slots, strict=True):
            new_state[name] = tree.pack_sequence_as(state[name], values)
        return tree.pack_sequence_as(grads, updates), new_state

    return GradientTransformation(init, update)


def sgd(learning_rate=0.01, momentum=0.0, nesterov=False):
    """Eqs. (4)-(5), GBC16 Alg. 8.1; with momentum Alg. 8.2 (eqs. 7-9), ``nesterov=True`` Alg. 8.3."""
    alpha = V.unit_interval("momentum", momentum)
    V.boolean("nesterov", nesterov)
    if alpha == 0.0:
        return _make(learning_rate, (), lambda g, s, lr, t: M.sgd(g, lr))
    return _make(learning_rate, ("velocity",),
                 lambda g, s, lr, t: M.momentum(g, s[0], lr, ops.cast(alpha, g.dtype), nesterov))


def adagrad(learning_rate=0.001, epsilon=1e-7):
    """GBC16 Alg. 8.4."""
    delta = V.finite_positive("epsilon", epsilon)
    return _make(learning_rate, ("accumulator",),
                 lambda g, s, lr, t: M.adagrad(g, s[0], lr, ops.cast(delta, g.dtype)))


def rmsprop(learning_rate=0.001, rho=0.9, epsilon=1e-6, momentum=0.0):
    """Eqs. (10)-(12) corrected, GBC16 Alg. 8.5; with ``momentum > 0`` Alg. 8.6 (Nesterov momentum) in
    look-ahead form, the parameters being phi = theta + momentum * velocity (see
    ``keras_optreg.RMSprop``)."""
    rho = V.unit_interval("rho", rho)
    delta = V.finite_positive("epsilon", epsilon)
    alpha = V.unit_interval("momentum", momentum)
    if alpha == 0.0:
        return _make(learning_rate, ("accumulator",),
                     lambda g, s, lr, t: M.rmsprop(g, s[0], lr, ops.cast(rho, g.dtype), ops.cast(delta, g.dtype)))
    return _make(learning_rate, ("accumulator", "velocity"),
                 lambda g, s, lr, t: M.rmsprop_nesterov(g, s[0], s[1], lr, ops.cast(rho, g.dtype),
                                                        ops.cast(delta, g.dtype), ops.cast(alpha, g.dtype)))


def adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    """Eqs. (13)-(18) corrected, GBC16 Alg. 8.7 = Kingma & Ba Alg. 1."""
    b1 = V.unit_interval("beta_1", beta_1)
    b2 = V.unit_interval("beta_2", beta_2)
    delta = V.finite_positive("epsilon", epsilon)
    return _make(learning_rate, ("first_moment", "second_moment"),
                 lambda g, s, lr, t: M.adam(g, s[0], s[1], t, lr, ops.cast(b1, g.dtype), ops.cast(b2, g.dtype),
                                            ops.cast(delta, g.dtype)))
