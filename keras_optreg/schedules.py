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

    Keras twin: ``keras.optimizers.schedules.PolynomialDecay(initial_learning_rate, decay_steps,
    end_learning_rate, power=1.0)``, a different class with its own signature: the arguments are
    GBC16's :math:`(\epsilon_0, \epsilon_\tau, \tau)` in that order, an unknown keyword
    (``end_learning_rate``, ``power``, ``cycle``) raises TypeError, and ``decay_steps`` must be an
    integer. The rate is computed in float32 for a step of any integer or float dtype (as Keras'
    schedules), so both rates are checked at construction after rounding to float32.

    Args:
        initial_learning_rate: :math:`\epsilon_0`, finite and >= 0, and finite and 0 or normal in float32.
        final_learning_rate: :math:`\epsilon_\tau`, the same constraints.
        decay_steps: :math:`\tau`, an integer in [1, 2**63 - 1] (the optimizer's step counter is int64).
        name: None or a str.
    """

    def __init__(self, initial_learning_rate=0.01, final_learning_rate=0.001, decay_steps=500, name=None):
        self.initial_learning_rate = V.representable(
            "initial_learning_rate", V.finite_nonnegative("initial_learning_rate", initial_learning_rate), "float32")
        self.final_learning_rate = V.representable(
            "final_learning_rate", V.finite_nonnegative("final_learning_rate", final_learning_rate), "float32")
        self.decay_steps = V.int_in_range("decay_steps", V.positive_int("decay_steps", decay_steps), 1, 2 ** 63 - 1,
                                          " (the optimizer's step counter is int64)")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Argument `name` must be a str or None. Received: name={name!r}")
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
