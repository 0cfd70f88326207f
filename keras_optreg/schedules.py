"""Learning-rate schedules: :class:`LinearDecay` (lecture eq. 6)."""

from __future__ import annotations

import keras
from keras import ops

from keras_optreg import _validation as V


@keras.saving.register_keras_serializable(package="keras_optreg")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    r"""Linear decay of the learning rate, lecture eq. (6) (GBC16 sec. 8.3.1, eq. 8.14).

    .. math:: \epsilon_k = (1 - \alpha)\epsilon_0 + \alpha \epsilon_\tau, \qquad
              \alpha = \frac{\bar k}{\tau}, \qquad \bar k = \min(\max(k, 0), \tau)

    (computed in this form so that both end points are exact in float32),

    constant :math:`\epsilon_\tau` after ``decay_steps`` = :math:`\tau`.

    Negative steps are clamped to 0 (the rate is :math:`\epsilon_0`); Keras' ``PolynomialDecay``
    instead extrapolates above the initial rate for negative steps.

    Args:
        initial_learning_rate: :math:`\epsilon_0`, finite and >= 0.
        final_learning_rate: :math:`\epsilon_\tau`, finite and >= 0.
        decay_steps: :math:`\tau`, an integer > 0.
    """

    def __init__(self, initial_learning_rate=0.01, final_learning_rate=0.001, decay_steps=500, name=None):
        self.initial_learning_rate = V.finite_nonnegative("initial_learning_rate", initial_learning_rate)
        self.final_learning_rate = V.finite_nonnegative("final_learning_rate", final_learning_rate)
        self.decay_steps = V.positive_int("decay_steps", decay_steps)
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        tau = float(self.decay_steps)
        alpha = ops.clip(step, 0.0, tau) / tau
        return (1.0 - alpha) * self.initial_learning_rate + alpha * self.final_learning_rate

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "final_learning_rate": self.final_learning_rate,
                "decay_steps": self.decay_steps, "name": self.name}
