"""optax's optimizers as conformance implementations (used when ``optax`` imports; it needs JAX).

Each optimizer is built with ``optax.inject_hyperparams`` so that the learning rate of every step
can be set in its state, as the examples' per-step learning-rate factors require.
"""

from __future__ import annotations

import importlib.util

import numpy as np


def installed():
    return importlib.util.find_spec("optax") is not None


def optimizer(kind):
    """``(component name, factory(hp) -> GradientTransformation with an injected learning rate)``."""
    import optax

    inject = optax.inject_hyperparams
    if kind == "sgd":
        return "optax.sgd", lambda hp: inject(optax.sgd)(learning_rate=hp["learning_rate"])
    if kind in ("momentum", "nesterov"):
        nest = kind == "nesterov"
        return (f"optax.sgd(momentum{', nesterov=True' if nest else ''})",
                lambda hp: inject(optax.sgd)(learning_rate=hp["learning_rate"], momentum=hp["momentum"],
                                             nesterov=nest))
    if kind == "adagrad":
        return ("optax.adagrad", lambda hp: inject(optax.adagrad)(learning_rate=hp["learning_rate"], eps=hp["epsilon"]))
    if kind == "adagrad_r0":
        from keras_optreg.conformance.optimizers import R0

        return (f"optax.adagrad(initial_accumulator_value={R0})",
                lambda hp: inject(optax.adagrad)(learning_rate=hp["learning_rate"], eps=hp["epsilon"],
                                                 initial_accumulator_value=R0))
    if kind in ("rmsprop", "centered_rmsprop"):
        centered = kind == "centered_rmsprop"
        return (f"optax.rmsprop(decay=rho{', centered=True' if centered else ''})",
                lambda hp: inject(optax.rmsprop)(learning_rate=hp["learning_rate"], decay=hp["rho"], eps=hp["epsilon"],
                                                 centered=centered))
    if kind == "amsgrad":
        return ("optax.amsgrad", lambda hp: inject(optax.amsgrad)(learning_rate=hp["learning_rate"], b1=hp["beta_1"],
                                                                  b2=hp["beta_2"], eps=hp["epsilon"]))
    if kind == "adamw":
        return ("optax.adamw(weight_decay)", lambda hp: inject(optax.adamw)(
            learning_rate=hp["learning_rate"], b1=hp["beta_1"], b2=hp["beta_2"], eps=hp["epsilon"],
            weight_decay=hp["weight_decay"]))
    if kind != "adam":
        raise ValueError(f"no optax runner for optimizer row {kind!r}")
    return ("optax.adam", lambda hp: inject(optax.adam)(learning_rate=hp["learning_rate"], b1=hp["beta_1"],
                                                        b2=hp["beta_2"], eps=hp["epsilon"]))


def optimizer_runner(factory, learning_rates):
    """``opt.init`` / ``opt.update`` / ``optax.apply_updates`` on a float32 array, step by step."""
    import jax.numpy as jnp
    import optax

    def run(example):
        hp, theta0, grads, factors = example
        opt = factory(hp)
        params = jnp.asarray(np.asarray(theta0, np.float32))
        state = opt.init(params)
        out = []
        for g, lr in zip(grads, learning_rates(hp, factors), strict=True):
            state.hyperparams["learning_rate"] = jnp.asarray(lr, jnp.float32)
            updates, state = opt.update(jnp.asarray(np.asarray(g, np.float32)), state, params)
            params = optax.apply_updates(params, updates)
            out.append(np.asarray(params, np.float64))
        return np.stack(out)
    return run
