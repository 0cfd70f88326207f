"""Keras optimizers for lecture eqs. (4)-(18); the update rules live in ``_math/optim.py``.

Every class subclasses ``keras.optimizers.Optimizer`` and implements only ``build`` and
``update_step``, so ``clipnorm``, ``global_clipnorm``, EMA, gradient accumulation and
``LossScaleOptimizer`` keep working. On TensorFlow, outside a ``tf.distribute`` strategy, each
variable of at least ``_fused.MIN_SIZE`` elements takes its step as one XLA kernel
(``keras_optreg/_fused.py``), in eager and graph mode too; the arithmetic is the same rule.

``nonfinite`` (every optimizer):

* ``"propagate"`` (default): the update is applied as computed; a NaN/Inf gradient flows into
  the variables and slots, as in Keras and the lecture. Default because it costs nothing; "skip"
  adds one reduction over every gradient, which every variable's write must wait for, and a
  select per variable and slot: measured with ``tests/benchmarks/bench_optimizers.py`` (Adam,
  1e6-5e7 float32 parameters, eager, graph and XLA) at 1.2-2.2x the step time of "propagate"
  (README).
* ``"skip"``: when any gradient (after clipping) holds NaN or Inf, every variable and every slot
  is left bit-for-bit unchanged and ``skipped_steps`` is incremented. ``iterations`` still
  counts the step (so schedules advance with calls to ``apply``, and Adam's ``t`` is
  ``iterations + 1``); EMA of the model weights, if enabled, still runs on unchanged weights.
* ``"raise"``: ``tf.debugging.check_numerics`` on every gradient: an ``InvalidArgumentError``
  naming the variable in eager mode and inside ``tf.function``. Under ``jit_compile=True`` XLA
  has no such check: the op is dropped and the step behaves like ``"propagate"``. TensorFlow
  backend only (``ValueError`` at construction on another backend).
"""

from __future__ import annotations

import functools

import keras
import tensorflow as tf
from keras import ops

from keras_optreg import _fused
from keras_optreg import _validation as V
from keras_optreg._math import optim as M

_NESTEROV = functools.partial(M.momentum, nesterov=True)

NONFINITE = ("propagate", "skip", "raise")


def _check_learning_rate(learning_rate):
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule) or callable(learning_rate):
        return learning_rate
    return V.finite_nonnegative("learning_rate", learning_rate)


class _Optimizer(keras.optimizers.Optimizer):
    """Shared machinery: argument checks, float-only variables, the ``nonfinite`` option."""

    def __init__(self, learning_rate, nonfinite="propagate", name=None, **kwargs):
        nonfinite = V.one_of("nonfinite", nonfinite, NONFINITE)
        if nonfinite == "raise" and keras.backend.backend() != "tensorflow":
            raise ValueError("Argument `nonfinite='raise'` needs the TensorFlow backend (tf.debugging.check_numerics)"
                             f". Received: nonfinite='raise' with KERAS_BACKEND={keras.backend.backend()}")
        super().__init__(learning_rate=_check_learning_rate(learning_rate), name=name, **kwargs)
        self.nonfinite = nonfinite
        self._finite = None

    def build(self, variables):
        for v in variables:
            if not keras.backend.is_float_dtype(v.dtype):
                raise TypeError(f"{type(self).__name__} updates floating-point variables only. Received: "
                                f"variable {v.path!r} of dtype {v.dtype}")
        if self.built:
            return
        super().build(variables)
        self.skipped_steps = self.add_variable(shape=(), initializer="zeros", dtype="int64", name="skipped_steps")

    def _slots(self, variables, *names):
        return [self.add_optimizer_variables(variables, n) for n in names]

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if self.nonfinite == "raise":
            grads = [tf.debugging.check_numerics(g, f"nonfinite gradient for {v.name}")
                     for g, v in zip(grads, trainable_variables, strict=True)]
        elif self.nonfinite == "skip":
            finite = _fused.all_finite(grads)
            self._finite = finite
            self.skipped_steps.assign_add(ops.where(finite, 0, 1))
        super()._backend_update_step(grads, trainable_variables, learning_rate)
        self._finite = None

    def _apply_rule(self, rule, variable, slots, gradient, *scalars):
        """``update, *new_slots = rule(g, *slots, *scalars)``; theta <- theta + update, slots <- new_slots.

        Outside a distribution strategy, one XLA kernel per variable of at least
        ``_fused.MIN_SIZE`` elements (``keras_optreg._fused``); smaller variables, and every variable
        under a strategy, op by op. The same arithmetic either way.
        """
        dt = variable.dtype
        gradient = ops.cast(gradient, dt)
        scalars = tuple(ops.cast(x, dt) for x in scalars)
        if _fused.available(variable):
            _fused.apply(rule, variable, slots, gradient, scalars, self._finite)
            return
        update, *new_slots = rule(gradient, *slots, *scalars)
        for slot, new in zip(slots, new_slots, strict=True):
            self._put(slot, new)
        if self._finite is not None:
            self._put(variable, variable + update)
        else:
            self.assign_add(variable, update)

    def _put(self, variable, value):
        if self._finite is not None:
            value = ops.where(self._finite, value, ops.convert_to_tensor(variable))
        self.assign(variable, value)

    def get_config(self):
        config = super().get_config()
        config["nonfinite"] = self.nonfinite
        return config


@keras.saving.register_keras_serializable(package="keras_optreg")
class SGD(_Optimizer):
    r"""Minibatch SGD, lecture eqs. (4)-(5) (GBC16 Alg. 8.1), with momentum eqs. (7)-(9) (Alg. 8.2)
    and Nesterov momentum (Alg. 8.3).

    .. math:: g = \frac{1}{m}\sum_i \nabla_\theta L(f(x_i;\theta), y_i), \qquad
              \theta \leftarrow \theta - \epsilon g

    With ``momentum`` :math:`\alpha > 0`: :math:`v \leftarrow \alpha v - \epsilon g`,
    :math:`\theta \leftarrow \theta + v` (the corrected eq. 9; the lecture prints
    :math:`\theta - v`). With ``nesterov=True`` the variables hold the look-ahead point
    :math:`\phi = \theta + \alpha v`, updated by :math:`\phi \leftarrow \phi + \alpha v - \epsilon g`
    (Bengio et al. 2013, as Keras does).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, nonfinite="propagate",
                 name="keras_optreg_sgd", **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, name=name, **kwargs)
        self.momentum = V.unit_interval("momentum", momentum)
        self.nesterov = V.boolean("nesterov", nesterov)

    def build(self, variables):
        built = self.built
        super().build(variables)
        if not built and self.momentum > 0:
            (self._v,) = self._slots(variables, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        if self.momentum > 0:
            v = self._v[self._get_variable_index(variable)]
            rule = _NESTEROV if self.nesterov else M.momentum
            self._apply_rule(rule, variable, (v,), gradient, learning_rate, self.momentum)
        else:
            self._apply_rule(M.sgd, variable, (), gradient, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config


@keras.saving.register_keras_serializable(package="keras_optreg")
class Adagrad(_Optimizer):
    r"""AdaGrad, GBC16 Alg. 8.4 (the algorithm the lecture's adaptive-rate slide introduces).

    .. math:: r \leftarrow r + g \odot g, \qquad
              \theta \leftarrow \theta - \frac{\epsilon}{\delta + \sqrt{r}} \odot g

    :math:`r_0 = 0` and :math:`\delta` (``epsilon``) outside the square root, as in GBC16; Keras'
    ``Adagrad`` starts from :math:`r_0 = 0.1` and puts ``epsilon`` inside the root, :math:`\sqrt{r + \delta}`
    (``python -m keras_optreg.conformance --only adagrad``).
    """

    def __init__(self, learning_rate=0.001, epsilon=1e-7, nonfinite="propagate", name="keras_optreg_adagrad",
                 **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, name=name, **kwargs)
        self.epsilon = V.finite_positive("epsilon", epsilon)

    def build(self, variables):
        built = self.built
        super().build(variables)
        if not built:
            (self._r,) = self._slots(variables, "accumulator")

    def update_step(self, gradient, variable, learning_rate):
        r = self._r[self._get_variable_index(variable)]
        self._apply_rule(M.adagrad, variable, (r,), gradient, learning_rate, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="keras_optreg")
class RMSprop(_Optimizer):
    r"""RMSProp, lecture eqs. (10)-(12) corrected, GBC16 Alg. 8.5.

    .. math:: r \leftarrow \rho r + (1-\rho) g \odot g, \qquad
              \theta \leftarrow \theta - \frac{\epsilon}{\sqrt{\delta + r}} \odot g

    :math:`\delta` (``epsilon``) inside the square root, as in GBC16 and Keras 3 (PyTorch adds it outside).

    With ``momentum`` :math:`\alpha > 0`: GBC16 Alg. 8.6, RMSProp with Nesterov momentum,

    .. math:: \tilde\theta = \theta + \alpha v, \quad
              g = \nabla_\theta J(\tilde\theta), \quad
              r \leftarrow \rho r + (1-\rho) g \odot g, \quad
              v \leftarrow \alpha v - \frac{\epsilon}{\sqrt{r}} \odot g, \quad
              \theta \leftarrow \theta + v

    in the look-ahead form of Bengio et al. (2013), as ``SGD(nesterov=True)``: the variables hold
    :math:`\phi = \theta + \alpha v` (so Keras' gradient is taken at the interim point) and, with
    :math:`u = \epsilon g / \sqrt{\delta + r}`, :math:`v \leftarrow \alpha v - u`,
    :math:`\phi \leftarrow \phi + \alpha v - u`. :math:`\theta = \phi - \alpha v`. The
    box of Alg. 8.6 has no :math:`\delta`; it is kept inside the square root as in Alg. 8.5 (no
    division by zero), and :math:`\delta \to 0` recovers the box. A ``velocity`` slot is built
    only when ``momentum > 0``. ``keras.optimizers.RMSprop(momentum=...)`` uses classical (heavy
    ball) momentum, not Nesterov: the two differ.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-6, momentum=0.0, nonfinite="propagate",
                 name="keras_optreg_rmsprop", **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, name=name, **kwargs)
        self.rho = V.unit_interval("rho", rho)
        self.epsilon = V.finite_positive("epsilon", epsilon)
        self.momentum = V.unit_interval("momentum", momentum)

    def build(self, variables):
        built = self.built
        super().build(variables)
        if not built:
            (self._r,) = self._slots(variables, "accumulator")
            if self.momentum > 0:
                (self._v,) = self._slots(variables, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        i = self._get_variable_index(variable)
        if self.momentum > 0:
            self._apply_rule(M.rmsprop_nesterov, variable, (self._r[i], self._v[i]), gradient, learning_rate,
                             self.rho, self.epsilon, self.momentum)
        else:
            self._apply_rule(M.rmsprop, variable, (self._r[i],), gradient, learning_rate, self.rho, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(rho=self.rho, epsilon=self.epsilon, momentum=self.momentum)
        return config


@keras.saving.register_keras_serializable(package="keras_optreg")
class Adam(_Optimizer):
    r"""Adam, lecture eqs. (13)-(18) corrected, GBC16 Alg. 8.7 = Kingma & Ba (2015) Alg. 1.

    .. math:: s \leftarrow \rho_1 s + (1-\rho_1) g, \quad
              r \leftarrow \rho_2 r + (1-\rho_2) g \odot g, \quad
              \hat s = \frac{s}{1-\rho_1^t}, \quad \hat r = \frac{r}{1-\rho_2^t}, \quad
              \theta \leftarrow \theta - \epsilon \frac{\hat s}{\sqrt{\hat r} + \delta}

    with :math:`\rho_1, \rho_2, \delta` = ``beta_1, beta_2, epsilon`` and :math:`t` =
    ``iterations + 1``.

    Differences from ``keras.optimizers.Adam``: Keras uses Kingma & Ba's "epsilon-hat" form
    :math:`\theta \leftarrow \theta - \epsilon_t s / (\sqrt{r} + \hat\delta)` with
    :math:`\epsilon_t = \epsilon \sqrt{1-\rho_2^t}/(1-\rho_1^t)`, i.e.

    .. math:: \epsilon \frac{\hat s}{\sqrt{\hat r} + \hat\delta/\sqrt{1-\rho_2^t}}

    so Keras' ``epsilon`` equals this class's :math:`\delta` times :math:`\sqrt{1-\rho_2^t}`: the
    two agree only when :math:`\delta \ll \sqrt{\hat r}` or as :math:`t \to \infty`. At
    :math:`t = 1` with :math:`\rho_2 = 0.999`, Keras' effective :math:`\delta` is about 31.6 times
    larger. Keras' default ``epsilon`` is 1e-7; here it is 1e-8 (Kingma & Ba, GBC16).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, nonfinite="propagate",
                 name="keras_optreg_adam", **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, name=name, **kwargs)
        self.beta_1 = V.unit_interval("beta_1", beta_1)
        self.beta_2 = V.unit_interval("beta_2", beta_2)
        self.epsilon = V.finite_positive("epsilon", epsilon)

    def build(self, variables):
        built = self.built
        super().build(variables)
        if not built:
            self._s, self._r = self._slots(variables, "first_moment", "second_moment")

    def update_step(self, gradient, variable, learning_rate):
        i = self._get_variable_index(variable)
        self._apply_rule(M.adam, variable, (self._s[i], self._r[i]), gradient, self.iterations + 1, learning_rate,
                         self.beta_1, self.beta_2, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
