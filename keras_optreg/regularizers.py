r"""Regularizers of the lecture's section "Regularization" (eq. 19)."""

from __future__ import annotations

import keras

from keras_optreg import _validation
from keras_optreg._math import regularize as _reg


@keras.saving.register_keras_serializable(package="keras_optreg")
class WeightNorm(keras.regularizers.Regularizer):
    r"""Eq. (19) as printed: :math:`C_w(\theta) = \lambda_r \sum_{i=1}^{w} \lVert \mathbf W_i \rVert_2`.

    One instance contributes :math:`\lambda \lVert W \rVert_F` (unsquared Frobenius norm) per
    weight object, i.e. a group-lasso penalty. Its gradient at W = 0 is exactly 0 (a subgradient),
    also under XLA. The lecture names it Tikhonov, which is squared: see :class:`Tikhonov`.
    """

    def __init__(self, l=0.01):  # noqa: E741 (the lecture's lambda, Keras' argument name)
        self.l = _validation.finite_nonnegative("l", l)

    def __call__(self, x):
        return _reg.weight_norm_penalty(x, self.l)

    def get_config(self):
        return {"l": self.l}


@keras.saving.register_keras_serializable(package="keras_optreg")
class Tikhonov(keras.regularizers.Regularizer):
    r"""Corrected eq. (19), Tikhonov / L2 [GBC16 sec. 7.1.1, eq. 7.1]: :math:`\frac{\lambda}{2} \lVert \mathbf W \rVert_F^2`.

    ``keras.regularizers.L2(l)`` computes :math:`l \lVert W \rVert_F^2` without the 1/2, so
    ``Tikhonov(l)`` equals ``L2(l / 2)``. Its gradient is :math:`\lambda W`: with plain SGD at
    learning rate :math:`\epsilon` it is weight decay by the factor :math:`1 - \epsilon\lambda`. With
    Adam the penalty's gradient is rescaled by the moment estimates, so it is *not* weight decay;
    AdamW applies the decay :math:`\lambda W` outside the adaptive update (decoupled weight decay).
    """

    def __init__(self, l=0.01):  # noqa: E741
        self.l = _validation.finite_nonnegative("l", l)

    def __call__(self, x):
        return _reg.tikhonov_penalty(x, self.l)

    def get_config(self):
        return {"l": self.l}


def apply_to_model(model, regularizer, trainable_only=True):
    r"""Attach ``regularizer`` to every weight object of a built ``model``: the sum over i in eq. (19).

    Sets ``variable.regularizer`` on each (trainable) weight, so Keras adds one penalty per weight
    to ``model.losses`` and ``model.fit`` trains with it. Returns the number of weights affected.
    This is a training-time setting: it is not stored in the layers' configs, so re-apply it after
    ``keras.saving.load_model`` (or pass ``kernel_regularizer=`` to layers to have it saved).
    """
    if not model.built:
        raise ValueError("Argument `model` must be built (call it or `model.build`) before "
                         f"regularizers can be applied. Received: model={model.name!r}")
    if not callable(regularizer):
        raise TypeError(f"Argument `regularizer` must be callable. Received: regularizer={regularizer!r}")
    weights = model.trainable_weights if trainable_only else model.weights
    for v in weights:
        v.regularizer = regularizer
    return len(weights)
