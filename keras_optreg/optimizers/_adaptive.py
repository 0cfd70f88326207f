"""``Adagrad`` (GBC16 Alg. 8.4) and ``RMSprop`` (lecture eqs. 10-12 corrected, GBC16 Alg. 8.5-8.6, Graves 2013)."""

from __future__ import annotations

import keras
from keras import ops

from keras_optreg import _validation as V
from keras_optreg._math import optim as M
from keras_optreg.optimizers._base import _Optimizer
from keras_optreg.optimizers._sgd import COMMON_ARGS, base_kwargs


@keras.saving.register_keras_serializable(package="keras_optreg")
class Adagrad(_Optimizer):
    r"""AdaGrad, GBC16 Alg. 8.4 (the algorithm the lecture's adaptive-rate slide, eqs. 10-12, introduces).

    .. math:: r \leftarrow r + g \odot g, \qquad
              \theta \leftarrow \theta - \frac{\epsilon}{\delta + \sqrt{r}} \odot g

    :math:`r_0` = ``initial_accumulator_value``, 0 by default as in GBC16; :math:`\delta`
    (``epsilon``) outside the square root, as in GBC16. ``keras.optimizers.Adagrad`` starts from
    :math:`r_0 = 0.1` (pass ``initial_accumulator_value=0.1`` for that start) and puts ``epsilon``
    inside the root, :math:`\sqrt{r + \delta}` (``python -m keras_optreg.conformance --only adagrad``).

    Weights: as ``keras.optimizers.Adagrad`` (one ``accumulator`` slot :math:`r` per variable),
    plus ``skipped_steps`` last with ``nonfinite="skip"``; float32 slots for float16/bfloat16
    variables. Sparse gradients are applied as their dense form.

    Args:
        learning_rate: :math:`\epsilon`, a float >= 0, a ``LearningRateSchedule`` or a callable.
        initial_accumulator_value: :math:`r_0` >= 0 (Keras' default is 0.1).
        epsilon: :math:`\delta` > 0 (at least the smallest normal number of the computing dtype).
        {common}
    """

    _HYPER = {"epsilon": "positive", "initial_accumulator_value": "nonnegative"}

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.0, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None, name=None,
                 nonfinite="propagate",
                 track_gradient_norm=True, **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, track_gradient_norm=track_gradient_norm, name=name, **base_kwargs(locals()), **kwargs)
        self.epsilon = V.finite_positive("epsilon", epsilon)
        self.initial_accumulator_value = V.finite_nonnegative("initial_accumulator_value", initial_accumulator_value)

    def _build_slots(self, variables):
        # not keras.initializers.Constant: it rounds the value to float32 first, also for a float64 slot
        r0 = self.initial_accumulator_value
        self._accumulators = self.add_optimizer_variables(
            variables, "accumulator", initializer=lambda shape, dtype=None: ops.full(shape, r0, dtype))

    def _rule(self, variable, learning_rate):
        return M.adagrad, (self._accumulators[self._get_variable_index(variable)],), (learning_rate, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, initial_accumulator_value=self.initial_accumulator_value)
        return config


@keras.saving.register_keras_serializable(package="keras_optreg")
class RMSprop(_Optimizer):
    r"""RMSProp, lecture eqs. (10)-(12) corrected, GBC16 Alg. 8.5; ``centered`` Graves (2013) eqs. (38)-(40).

    .. math:: r \leftarrow \rho r + (1-\rho) g \odot g, \qquad
              \theta \leftarrow \theta - \frac{\epsilon}{\sqrt{\delta + r}} \odot g

    :math:`\delta` (``epsilon``) inside the square root, as in GBC16 and Keras 3 (PyTorch adds it outside).

    With ``centered=True`` (Graves 2013, eqs. 38-40): :math:`b \leftarrow \rho b + (1-\rho) g` and
    the denominator is :math:`\sqrt{\delta + \max(r - b \odot b, 0)}`, the gradient's variance
    estimate instead of its second moment (clamped at 0: rounding can take :math:`r - b^2` below it).

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
    division by zero), and :math:`\delta \to 0` recovers the box. ``keras.optimizers.RMSprop(momentum=...)``
    uses classical (heavy ball) momentum, not Nesterov: the two differ. ``centered`` with
    ``momentum`` combines the two: Alg. 8.6 with Graves' centered denominator (Graves' own eq. 40
    is heavy-ball momentum, Keras' form).

    Weights: as ``keras.optimizers.RMSprop``: a ``velocity`` slot (:math:`r`) per variable, then a
    ``momentum`` slot per variable when ``momentum > 0`` holding :math:`m = -v` (Keras' sign for its
    momentum buffer), then an ``average_gradient`` slot (:math:`b`) per variable when ``centered``;
    plus ``skipped_steps`` last with ``nonfinite="skip"``; float32 slots for float16/bfloat16
    variables. Keras' default ``epsilon`` is 1e-7; here it is 1e-6.

    Args:
        learning_rate: :math:`\epsilon`, a float >= 0, a ``LearningRateSchedule`` or a callable.
        rho: :math:`\rho` in [0, 1), the decay of the averages.
        momentum: :math:`\alpha` in [0, 1); > 0 selects Alg. 8.6 (Nesterov).
        epsilon: :math:`\delta` > 0.
        centered: Graves' centered denominator.
        {common}
    """

    _HYPER = {"rho": "unit", "epsilon": "positive", "momentum": "unit"}

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-6, centered=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None, name=None,
                 nonfinite="propagate",
                 track_gradient_norm=True, **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, track_gradient_norm=track_gradient_norm, name=name, **base_kwargs(locals()), **kwargs)
        self.rho = V.unit_interval("rho", rho)
        self.epsilon = V.finite_positive("epsilon", epsilon)
        self.momentum = V.unit_interval("momentum", momentum)
        self.centered = V.boolean("centered", centered)

    def _build_slots(self, variables):
        self._velocities = self.add_optimizer_variables(variables, "velocity")
        self._momentums = self.add_optimizer_variables(variables, "momentum") if self.momentum > 0 else []
        self._average_gradients = self.add_optimizer_variables(variables, "average_gradient") if self.centered \
            else []

    def _rule(self, variable, learning_rate):
        i = self._get_variable_index(variable)
        hp = (learning_rate, self.rho, self.epsilon)
        if self.momentum > 0 and self.centered:
            return (M.rmsprop_centered_nesterov, (self._velocities[i], self._momentums[i], self._average_gradients[i]),
                    hp + (self.momentum,))
        if self.momentum > 0:
            return M.rmsprop_nesterov, (self._velocities[i], self._momentums[i]), hp + (self.momentum,)
        if self.centered:
            return M.rmsprop_centered, (self._velocities[i], self._average_gradients[i]), hp
        return M.rmsprop, (self._velocities[i],), hp

    def get_config(self):
        config = super().get_config()
        config.update(rho=self.rho, epsilon=self.epsilon, momentum=self.momentum, centered=self.centered)
        return config


Adagrad.__doc__ = Adagrad.__doc__.replace("{common}", COMMON_ARGS)
RMSprop.__doc__ = RMSprop.__doc__.replace("{common}", COMMON_ARGS)
