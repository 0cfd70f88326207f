"""Optimizer rows (lecture eqs. 4-18, GBC16 Alg. 8.1-8.7): float32 trajectories against the float64 spec.

An example is ``(hp, theta0, grads, lr_factors)``: hyper-parameters, float32 start point, STEPS
float32 gradients (scales 1e-6 .. 1e3, or for half the examples of a rule with a delta, 1 to 1000
times delta; shrinking towards tiny gradients) and a per-step factor
on the learning rate (1, 0.5 or 0.25; shrinks to a constant rate), which separates "learning rate
inside the velocity" (GBC16, Keras) from "outside" (PyTorch). Every implementation takes the same
gradient sequence, from zero slots, and returns the parameters after each step.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import strategies as st

from keras_optreg.conformance import cases
from keras_optreg.conformance import conventions as K
from keras_optreg.conformance import engine as E
from keras_optreg.conformance import optax_runners as X
from keras_optreg.conformance import strategies as S
from keras_optreg.conformance import torch_runners as T
from keras_optreg_spec import printed as P
from keras_optreg_spec.errata import BY_ID

ULP = 2.0 ** -24
KINDS = ("sgd", "momentum", "nesterov", "adagrad", "adagrad_r0", "rmsprop", "centered_rmsprop", "adam", "amsgrad",
         "adamw")
ROWS = {
    "sgd": "eq04-05 SGD (GBC16 Alg. 8.1)",
    "momentum": "eq07-09 momentum (GBC16 Alg. 8.2)",
    "nesterov": "eq09 Nesterov, look-ahead form (GBC16 Alg. 8.3)",
    "adagrad": "AdaGrad (GBC16 Alg. 8.4)",
    "adagrad_r0": "AdaGrad from r0 = 0.1 (GBC16 Alg. 8.4, initial_accumulator_value)",
    "rmsprop": "eq10-12 RMSprop (GBC16 Alg. 8.5)",
    "centered_rmsprop": "centered RMSprop (Graves 2013 eqs. 38-40)",
    "adam": "eq13-18 Adam (GBC16 Alg. 8.7)",
    "adamw": "AdamW, decoupled weight decay (Loshchilov & Hutter 2019 Alg. 2; weight_decay scaled by the learning rate)",
    "amsgrad": "AMSGrad (Reddi et al. 2018 Alg. 2, Keras' and PyTorch's form)",
}
SPEC_IDS = {"sgd": ("eq04", "eq05"), "momentum": ("eq07", "eq08", "eq09"), "nesterov": ("eq09",),
            "adagrad": ("adagrad",), "adagrad_r0": ("adagrad",), "rmsprop": ("eq10", "eq11", "eq12"),
            "centered_rmsprop": ("centered_rmsprop",), "adam": ("eq13", "eq14", "eq15", "eq16", "eq17", "eq18"),
            "amsgrad": ("amsgrad",), "adamw": ("adamw",)}
#: the start of the AdaGrad r0 row's accumulator: Keras' default initial_accumulator_value
R0 = 0.1


# ---- examples ------------------------------------------------------------------------------------


def hyper(kind):
    """The tests' hyper-parameters (``cases.hyper``) with the tool's domains: epsilon shrinks towards 1e-10;
    centered RMSprop's rho in [0.1, 0.9] (see ``examples``); Adam's beta_2 from ``S.second_moment_decays``;
    AdaGrad's r0 fixed (the row's R0, a constructor argument)."""
    eps = S.small_epsilons
    if kind == "centered_rmsprop":
        return cases.hyper(kind, rho=st.floats(0.1, 0.9), epsilon=eps)
    return cases.hyper(kind, epsilon=eps, beta_2=S.second_moment_decays, initial_accumulator_value=None)


@st.composite
def examples(draw, kind):
    hp = draw(hyper(kind))
    shape = draw(S.shapes())
    # adamw: |theta| < 1e-15 flushed too, else lr wd theta would be a float32 subnormal (flushed by TF on CPU)
    theta0 = S.flush_subnormals(S.as_float32(draw(S.arrays(shape, -10.0, 10.0))), below=1e-15 if kind == "adamw" else None)
    scale = draw(S.small_gradient_scales)
    if "epsilon" in hp and draw(st.booleans()):
        # half the examples put |g| within three decades above delta, where delta's placement matters
        scale = float(S.as_float32(hp["epsilon"])) * draw(S.log_uniform_from_low(0, 3))
    base = draw(S.arrays((cases.STEPS, *shape), -1.0, 1.0))
    if kind == "centered_rmsprop":
        # r - b^2 (the gradient's variance estimate) cancels: on a nearly constant gradient the float32
        # denominator of every implementation is rounding noise. Alternating signs and rho in [0.1, 0.9]
        # keep it within a factor 20 of r (at t = 1 it is rho (1 - rho) g^2 whatever the gradient).
        base = np.abs(base) * (-1.0) ** np.arange(cases.STEPS).reshape((cases.STEPS,) + (1,) * len(shape))
    grads = S.flush_subnormals(S.as_float32(base * scale))
    factors = tuple(draw(st.lists(st.sampled_from((1.0, 0.5, 0.25)), min_size=cases.STEPS, max_size=cases.STEPS)))
    return hp, theta0, grads, factors


@st.composite
def coupled_examples(draw):
    r"""AdamW examples on which the Tikhonov penalty under Adam is well-conditioned: every loss gradient is
    at least :math:`10\lambda B` in magnitude, B bounding :math:`|\theta|` over the 7 steps
    (:math:`|\theta_0| + 7 \cdot 32\,\epsilon`: an Adam step is at most
    :math:`\epsilon (1-\beta_1)/\sqrt{1-\beta_2} \le 32 \epsilon` for :math:`\beta_2 \le 0.999`), so
    :math:`g + \lambda\theta` keeps g's sign and never cancels; Adam divides by it, and a sign flipped by
    rounding, not the convention, would decide the verdict."""
    hp, theta0, grads, factors = draw(examples("adamw"))
    bound = 10.0 * hp["weight_decay"] * (float(np.max(np.abs(theta0))) + 7 * 32 * hp["learning_rate"])
    grads = np.where(grads < 0, -1.0, 1.0) * (bound + np.abs(np.asarray(grads, np.float64)))
    return hp, theta0, S.flush_subnormals(S.as_float32(grads)), factors


def learning_rates(hp, factors):
    """The float32 learning rate of each step."""
    return [float(np.float32(hp["learning_rate"] * f)) for f in factors]


def _h(hp):
    return cases.rounded_hyper(hp)


def describe(example):
    hp, theta0, grads, factors = example
    hps = ", ".join(f"{k}={v:.3g}" for k, v in hp.items())
    lr = "" if len(set(factors)) == 1 else f", lr factors {list(factors)}"
    return (f"shape {theta0.shape}, |g| <= {float(np.max(np.abs(grads))):.2g}, g_1={E._short(grads[0])}, "
            f"theta0={E._short(theta0)}, {hps}{lr}")


# ---- reference forms: one step each -------------------------------------------------------------


def _corrected(kind):
    def step(theta, s, g, lr, t, h):
        if kind == "adagrad_r0" and t == 1:
            s["r"] = s["r"] + R0
        return cases.spec_step(kind, theta, s, g, lr, t, h)
    return step


def _printed(kind):
    """The lecture's equations as printed (keras_optreg_spec.printed), fed the minibatch gradient (E-sum aside)."""
    def step(theta, s, g, lr, t, h):
        if kind == "sgd":
            return P.eq05_sgd_update(theta, g, lr)
        if kind == "momentum":
            s["v"] = P.eq08_momentum_velocity(s["v"], g, h["momentum"], lr)
            return P.eq09_momentum_update(theta, s["v"])
        if kind == "rmsprop":
            s["r"] = P.eq11_rmsprop_accumulator(s["r"], g)
            return P.eq12_rmsprop_update(theta, g, s["r"], lr, h["epsilon"])
        s["s"] = P.eq14_adam_first_moment(s["s"], g, h["beta_1"])
        s["r"] = P.eq15_adam_second_moment(s["r"], g, h["beta_2"])
        s_hat = P.eq16_adam_first_moment_hat(s["s"], h["beta_1"])
        r_hat = P.eq17_adam_second_moment_hat(s["r"], h["beta_2"])
        return P.eq18_adam_update(theta, s_hat, r_hat, g, lr, h["epsilon"])
    return step


PRINTED = {"sgd": None, "momentum": "E-mom", "rmsprop": "E-rms", "adam": "E-adam"}  # kinds the lecture prints


def trajectory(step):
    """The float64 reference trajectory of a one-step form, hyper-parameters rounded to float32 first."""
    def run(example):
        hp, theta0, grads, factors = example
        h = _h(hp)
        theta = np.asarray(theta0, np.float64)
        slots = {k: np.zeros_like(theta) for k in ("v", "b", "r", "s", "m")}
        out = []
        with np.errstate(all="ignore"):
            for t, (g, lr) in enumerate(zip(np.asarray(grads, np.float64), learning_rates(hp, factors),
                                            strict=True), start=1):
                theta = step(theta, slots, g, lr, t, h)
                out.append(theta)
        return np.stack(out)
    return run


def tolerance(kind):
    """(rtol, atol) of a float32 trajectory against a float64 reference: ``cases.base_tolerance``; centered
    RMSprop's denominator cancels, r - b^2 is at least r / 20 on these examples: 20 times the relative part."""
    def tol(example, expected):
        return cases.base_tolerance(kind, _h(example[0]), example[1], expected,
                                    rel_factor=20.0 if kind == "centered_rmsprop" else 1.0)
    return tol


def _printed_convention(kind):
    e = BY_ID[PRINTED[kind]]
    return E.Convention(f"printed eqs. ({', '.join(str(int(q[2:])) for q in e.equations)}) - erratum {e.id}: {e.printed}",
                        trajectory(_printed(kind)))


CONVENTIONS = {
    "momentum": (("learning rate outside the velocity (PyTorch: b = mu b + g, theta -= lr b)",
                  K.momentum_lr_outside),),
    "nesterov": (("learning rate outside the velocity (PyTorch nesterov: theta -= lr (g + mu b))",
                  K.nesterov_lr_outside),),
    "adagrad": (("initial accumulator 0.1 and delta inside sqrt(r + delta) (Keras Adagrad)", K.adagrad_keras),),
    "adagrad_r0": (("delta inside sqrt(r + delta) (Keras Adagrad, optax.adagrad)", K.adagrad_keras),),
    "rmsprop": (("delta outside the root, sqrt(r) + delta (PyTorch RMSprop)", K.rmsprop_delta_outside),),
    "centered_rmsprop": (("delta outside the root, sqrt(r - b^2) + delta (PyTorch RMSprop(centered=True))",
                          K.rmsprop_centered_delta_outside),),
    "amsgrad": (("epsilon-hat: delta added to sqrt(max r) before the bias correction (Keras Adam(amsgrad=True))",
                 K.amsgrad_epsilon_hat),
                ("maximum of the bias-corrected second moment r / (1 - beta_2^t) (optax.amsgrad)",
                 K.amsgrad_max_of_corrected)),
    "adamw": (("decoupled decay, then epsilon-hat Adam (Keras Adam(weight_decay): _apply_weight_decay before the step)",
               K.adamw_epsilon_hat),
              ("coupled L2: the Tikhonov penalty's gradient lambda theta inside Adam's moments (eq. 19 under Adam; "
               "LH19 Alg. 2 red term), not weight decay", K.adam_l2_coupled)),
    "adam": (("epsilon-hat: delta added to sqrt(r) before the bias correction (Kingma & Ba sec. 2 end; Keras)",
              K.adam_epsilon_hat),
             ("delta inside the root, sqrt(r_hat + delta) (optax.adam(eps=0, eps_root=delta))", K.adam_delta_inside_root),
             ("bias correction 1 - beta instead of 1 - beta^t (the power of printed eqs. 16-17, erratum E-adam)",
              K.adam_bias_correction_without_power)),
}


def conventions(kind):
    named = tuple(E.Convention(name, trajectory(step)) for name, step in CONVENTIONS.get(kind, ()))
    return named + ((_printed_convention(kind),) if PRINTED.get(kind) else ())


# ---- implementations -------------------------------------------------------------------------


def keras_runner(factory):
    """Run a Keras optimizer ``factory(hp)`` on a float32 variable: apply each gradient, record the variable."""
    import keras

    def run(example):
        hp, theta0, grads, factors = example
        opt = factory(hp)
        var = keras.Variable(np.asarray(theta0, np.float32))
        out = []
        for g, lr in zip(grads, learning_rates(hp, factors), strict=True):
            opt.learning_rate = lr
            opt.apply([keras.ops.convert_to_tensor(np.asarray(g, np.float32))], [var])  # a tensor: PyTorch's Keras
            out.append(np.array(keras.ops.convert_to_numpy(var), np.float64))
        return np.stack(out)
    return run


def _gradient(fn, theta):
    """The gradient of the scalar ``fn(theta)`` at the float32 array ``theta``, by the backend's autodiff."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(np.asarray(theta, np.float32)))
    if backend == "torch":
        import torch

        t = torch.tensor(np.asarray(theta, np.float32), requires_grad=True)
        fn(t).backward()
        return t.grad.numpy()
    import tensorflow as tf

    t = tf.Variable(np.asarray(theta, np.float32))
    with tf.GradientTape() as tape:
        loss = fn(t)
    return tape.gradient(loss, t).numpy()


def tikhonov_runner():
    """``keras_optreg.Adam`` (no weight_decay) on the loss gradient plus the gradient of
    ``regularizers.Tikhonov(weight_decay)``, (lambda/2)||theta||^2: the corrected eq. (19) as a penalty."""
    import keras

    import keras_optreg
    from keras_optreg import regularizers as R

    def run(example):
        hp, theta0, grads, factors = example
        opt = keras_optreg.Adam(**{k: v for k, v in hp.items() if k != "weight_decay"})
        penalty = R.Tikhonov(hp["weight_decay"])
        var = keras.Variable(np.asarray(theta0, np.float32))
        out = []
        for g, lr in zip(grads, learning_rates(hp, factors), strict=True):
            opt.learning_rate = lr
            theta = keras.ops.convert_to_numpy(var)
            opt.apply([keras.ops.convert_to_tensor(np.asarray(g, np.float32) + _gradient(penalty, theta))], [var])
            out.append(np.array(keras.ops.convert_to_numpy(var), np.float64))
        return np.stack(out)
    return run


def _ours(kind):
    import keras_optreg

    cls = {"sgd": keras_optreg.SGD, "momentum": keras_optreg.SGD, "nesterov": keras_optreg.SGD,
           "adagrad": keras_optreg.Adagrad, "adagrad_r0": keras_optreg.Adagrad, "rmsprop": keras_optreg.RMSprop,
           "centered_rmsprop": keras_optreg.RMSprop, "adam": keras_optreg.Adam, "amsgrad": keras_optreg.Adam,
           "adamw": keras_optreg.Adam}[kind]
    extra = {"nesterov": {"nesterov": True}, "adagrad_r0": {"initial_accumulator_value": R0},
             "centered_rmsprop": {"centered": True}, "amsgrad": {"amsgrad": True}}.get(kind, {})
    name = f"keras_optreg.{cls.__name__}" + (f"({', '.join(f'{k}={v}' for k, v in extra.items())})" if extra else "")
    if kind == "adamw":
        name += "(weight_decay)"
    return name, lambda hp: cls(**hp, **extra)


def _keras(kind):
    import keras

    o = keras.optimizers
    if kind == "sgd":
        return "keras.optimizers.SGD", lambda hp: o.SGD(hp["learning_rate"])
    if kind in ("momentum", "nesterov"):
        nest = kind == "nesterov"
        return (f"keras.optimizers.SGD(momentum{', nesterov=True' if nest else ''})",
                lambda hp: o.SGD(hp["learning_rate"], momentum=hp["momentum"], nesterov=nest))
    if kind == "adagrad":
        return "keras.optimizers.Adagrad", lambda hp: o.Adagrad(hp["learning_rate"], epsilon=hp["epsilon"])
    if kind == "adagrad_r0":
        return (f"keras.optimizers.Adagrad(initial_accumulator_value={R0})",
                lambda hp: o.Adagrad(hp["learning_rate"], initial_accumulator_value=R0, epsilon=hp["epsilon"]))
    if kind in ("rmsprop", "centered_rmsprop"):
        centered = kind == "centered_rmsprop"
        return (f"keras.optimizers.RMSprop{'(centered=True)' if centered else ''}",
                lambda hp: o.RMSprop(hp["learning_rate"], rho=hp["rho"], epsilon=hp["epsilon"], centered=centered))
    if kind == "amsgrad":
        return "keras.optimizers.Adam(amsgrad=True)", lambda hp: o.Adam(
            hp["learning_rate"], beta_1=hp["beta_1"], beta_2=hp["beta_2"], epsilon=hp["epsilon"], amsgrad=True)
    decay = kind == "adamw"
    return ("keras.optimizers.Adam" + ("(weight_decay)" if decay else ""),
            lambda hp: o.Adam(hp["learning_rate"], beta_1=hp["beta_1"], beta_2=hp["beta_2"], epsilon=hp["epsilon"],
                              weight_decay=hp["weight_decay"] if decay else None))


def make_check(kind, column, component, run, ours=False):
    """The check of any optimizer ``run(example) -> (STEPS, *shape)`` against row ``kind``'s corrected form."""
    return E.Check(row=ROWS[kind], column=column, component=component, strategy=lambda: examples(kind), run=run,
                   reference=trajectory(_corrected(kind)), tolerance=tolerance(kind), describe=describe,
                   conventions=conventions(kind), ours=ours, method=f"{cases.STEPS}-step float32 trajectory")


def user_check(kind, factory, component):
    """Row ``kind``'s check of a user's Keras optimizer ``factory(**hp)``: a class or callable taking the row's
    hyper-parameters as keywords (``learning_rate`` and those of ``cases.hyper``; a variant's flag, e.g.
    ``nesterov=True``, is the factory's own)."""
    return make_check(kind, "user", component, keras_runner(lambda hp: factory(**hp)))


def checks(kind):
    """The cells of row ``kind``: (check or ready verdict) per column."""
    name, factory = _ours(kind)
    yield make_check(kind, "keras_optreg", name, keras_runner(factory), ours=True)
    name, factory = _keras(kind)
    yield make_check(kind, "keras", name, keras_runner(factory))
    if kind in PRINTED:
        yield make_check(kind, "spec (as printed)", "keras_optreg_spec.printed", trajectory(_printed(kind)))
    else:
        reason = {"nesterov": "the lecture prints no Nesterov step",
                  "adagrad": "the lecture prints AdaGrad's accumulator on the RMSprop slide (see that row)",
                  "adagrad_r0": "the lecture prints no initial accumulator",
                  "centered_rmsprop": "the lecture prints no centered RMSprop",
                  "amsgrad": "the lecture prints no AMSGrad",
                  "adamw": "the lecture prints no weight decay, only the penalty of eq. 19 (see the Tikhonov cell)"}[kind]
        yield E.na(ROWS[kind], "spec (as printed)", "keras_optreg_spec.printed", reason)
    if kind == "adamw":  # the lecture's penalty under Adam, beside the decay: not ours to conform (a contrast)
        penalty = make_check(kind, "keras_optreg", "keras_optreg.Adam + regularizers.Tikhonov(weight_decay) in the loss",
                             tikhonov_runner())
        yield dataclasses.replace(penalty, strategy=coupled_examples, method=penalty.method + " (|g| >> lambda |theta|)")
    if T.installed():
        name, factory = T.optimizer(kind)
        yield make_check(kind, "torch", name, T.optimizer_runner(factory, learning_rates))
    else:
        yield E.na(ROWS[kind], "torch", "torch", "", status=E.NOT_INSTALLED)
    if X.installed():
        name, factory = X.optimizer(kind)
        yield make_check(kind, "optax", name, X.optimizer_runner(factory, learning_rates))
    else:
        yield E.na(ROWS[kind], "optax", "optax", "", status=E.NOT_INSTALLED)
