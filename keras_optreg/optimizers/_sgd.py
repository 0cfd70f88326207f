"""``SGD``: lecture eqs. (4)-(5), momentum eqs. (7)-(9), Nesterov momentum (GBC16 Alg. 8.1-8.3)."""

from __future__ import annotations

import keras

from keras_optreg import _validation as V
from keras_optreg._math import optim as M
from keras_optreg.optimizers._base import _Optimizer

COMMON_ARGS = """weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum, ema_overwrite_frequency,
            loss_scale_factor, gradient_accumulation_steps: Keras' base-class options, in its order and with its
            meaning (``keras.optimizers.Optimizer``), checked like the others (NaN-safe, after rounding
            to the computing dtype at build).
        name: the optimizer's name; by default Keras' unique name of the class (``adam``, ``adam_1``, ...).
        nonfinite: ``"propagate"`` (default), ``"skip"`` or ``"raise"``: what a step with a NaN/Inf
            gradient, or a non-finite or negative learning rate, does (``keras_optreg.optimizers``).
        track_gradient_norm: record ``gradient_norm`` at every step (default True). The norm costs one
            more read of every gradient (under XLA about 1.15x Keras' optimizer step at 1e7 parameters,
            README); False leaves ``gradient_norm`` NaN, and ``OptimizerMonitor`` refuses the optimizer.
        **kwargs: passed to ``keras.optimizers.Optimizer`` (which rejects unknown names)."""

#: Keras' base-class arguments, in the order of its optimizers' signatures
BASE_ARGS = ("weight_decay", "clipnorm", "clipvalue", "global_clipnorm", "use_ema", "ema_momentum",
             "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps")


def base_kwargs(scope):
    """The base-class arguments out of a constructor's ``locals()``."""
    return {k: scope[k] for k in BASE_ARGS}


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

    Weights: as ``keras.optimizers.SGD`` (``iteration``, ``learning_rate``, one ``momentum`` slot
    :math:`v` per variable when ``momentum > 0``), plus ``skipped_steps`` last with
    ``nonfinite="skip"``; a float16/bfloat16 variable's slot is float32. Sparse gradients are
    applied as their dense form (Keras scatters the rows; the result is the same).

    Args:
        learning_rate: :math:`\epsilon`, a float >= 0, a ``LearningRateSchedule`` (e.g.
            ``keras_optreg.LinearDecay``, eq. 6) or a callable returning the rate.
        momentum: :math:`\alpha` in [0, 1); 0 is plain SGD.
        nesterov: Nesterov momentum (Alg. 8.3, look-ahead form).
        {common}
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None, nonfinite="propagate",
                 track_gradient_norm=True, **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, track_gradient_norm=track_gradient_norm, name=name, **base_kwargs(locals()), **kwargs)
        self.momentum = V.unit_interval("momentum", momentum)
        self.nesterov = V.boolean("nesterov", nesterov)

    _HYPER = {"momentum": "unit"}

    def _build_slots(self, variables):
        self.momentums = []
        if self.momentum > 0:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def _rule(self, variable, learning_rate):
        if self.momentum > 0:
            v = self.momentums[self._get_variable_index(variable)]
            return (M.nesterov_momentum if self.nesterov else M.momentum), (v,), (learning_rate, self.momentum)
        return M.sgd, (), (learning_rate,)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config


SGD.__doc__ = SGD.__doc__.replace("{common}", COMMON_ARGS)
