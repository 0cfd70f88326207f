"""``Adam``: lecture eqs. (13)-(18) corrected (GBC16 Alg. 8.7 = Kingma & Ba 2015 Alg. 1); ``amsgrad`` (Reddi et al. 2018)."""

from __future__ import annotations

import keras

from keras_optreg import _validation as V
from keras_optreg._math import optim as M
from keras_optreg.optimizers._base import _Optimizer
from keras_optreg.optimizers._sgd import COMMON_ARGS, base_kwargs


@keras.saving.register_keras_serializable(package="keras_optreg")
class Adam(_Optimizer):
    r"""Adam, lecture eqs. (13)-(18) corrected, GBC16 Alg. 8.7 = Kingma & Ba (2015) Alg. 1.

    .. math:: s \leftarrow \rho_1 s + (1-\rho_1) g, \quad
              r \leftarrow \rho_2 r + (1-\rho_2) g \odot g, \quad
              \hat s = \frac{s}{1-\rho_1^t}, \quad \hat r = \frac{r}{1-\rho_2^t}, \quad
              \theta \leftarrow \theta - \epsilon \frac{\hat s}{\sqrt{\hat r} + \delta}

    with :math:`\rho_1, \rho_2, \delta` = ``beta_1, beta_2, epsilon`` and :math:`t` =
    ``iterations + 1``.

    With ``amsgrad=True``, AMSGrad (Reddi et al. 2018, Alg. 2) in the form Keras and PyTorch use:
    :math:`\tilde r \leftarrow \max(\tilde r, r)` (the running maximum of the uncorrected second
    moment) replaces :math:`r` in :math:`\hat r = \tilde r / (1-\rho_2^t)`. Reddi et al.'s Alg. 2
    itself has no bias corrections, no :math:`\delta` and a decaying :math:`\beta_{1t}` and
    :math:`\alpha_t`; Keras and PyTorch keep Adam's bias corrections, as here.

    Differences from ``keras.optimizers.Adam``: Keras uses Kingma & Ba's "epsilon-hat" form
    :math:`\theta \leftarrow \theta - \epsilon_t s / (\sqrt{r} + \hat\delta)` with
    :math:`\epsilon_t = \epsilon \sqrt{1-\rho_2^t}/(1-\rho_1^t)`, i.e.

    .. math:: \epsilon \frac{\hat s}{\sqrt{\hat r} + \hat\delta/\sqrt{1-\rho_2^t}}

    so Keras' ``epsilon`` equals this class's :math:`\delta` times :math:`\sqrt{1-\rho_2^t}`: the
    two agree only when :math:`\delta \ll \sqrt{\hat r}` or as :math:`t \to \infty` (the same holds
    with ``amsgrad``). At :math:`t = 1` with :math:`\rho_2 = 0.999`, Keras' effective :math:`\delta`
    is about 31.6 times larger. Keras' default ``epsilon`` is 1e-7; here it is 1e-8 (Kingma & Ba, GBC16).

    Weights: as ``keras.optimizers.Adam``: ``momentum`` (:math:`s`) and ``velocity`` (:math:`r`)
    slots, interleaved per variable, then a ``velocity_hat`` slot (:math:`\tilde r`) per variable
    with ``amsgrad``; plus ``skipped_steps`` last with ``nonfinite="skip"``; float32 slots for
    float16/bfloat16 variables. Sparse gradients are applied as their dense form.

    Args:
        learning_rate: :math:`\epsilon`, a float >= 0, a ``LearningRateSchedule`` or a callable.
        beta_1: :math:`\rho_1` in [0, 1).
        beta_2: :math:`\rho_2` in [0, 1).
        epsilon: :math:`\delta` > 0.
        amsgrad: AMSGrad's running maximum of the second moment.
        {common}
    """

    _HYPER = {"beta_1": "unit", "beta_2": "unit", "epsilon": "positive"}

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, amsgrad=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None, gradient_accumulation_steps=None, name=None,
                 nonfinite="propagate",
                 track_gradient_norm=True, **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, track_gradient_norm=track_gradient_norm, name=name, **base_kwargs(locals()), **kwargs)
        self.beta_1 = V.unit_interval("beta_1", beta_1)
        self.beta_2 = V.unit_interval("beta_2", beta_2)
        self.epsilon = V.finite_positive("epsilon", epsilon)
        self.amsgrad = V.boolean("amsgrad", amsgrad)

    def _build_slots(self, variables):
        self._momentums, self._velocities = self.add_optimizer_variables(variables, ["momentum", "velocity"])
        self._velocity_hats = self.add_optimizer_variables(variables, "velocity_hat") if self.amsgrad else []

    def _rule(self, variable, learning_rate):
        i = self._get_variable_index(variable)
        scalars = (self.iterations + 1, learning_rate, self.beta_1, self.beta_2, self.epsilon)
        if self.amsgrad:
            return M.amsgrad, (self._momentums[i], self._velocities[i], self._velocity_hats[i]), scalars
        return M.adam, (self._momentums[i], self._velocities[i]), scalars

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, amsgrad=self.amsgrad)
        return config


Adam.__doc__ = Adam.__doc__.replace("{common}", COMMON_ARGS)
