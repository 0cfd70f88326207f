r"""Regularizers of the lecture's section "Regularization" (eq. 19).

Dtypes: a float32 or float64 weight's penalty is computed in its own dtype; a float16 or bfloat16
weight's in float32 (float16's sum of squares overflows at 65504, and a typical lambda such as
1e-5 is below its smallest normal number). The penalty is returned in ``keras.config.floatx()``,
the dtype Keras sums ``model.losses`` into the training loss in (``Loss`` computes in floatx;
``Trainer.compute_loss`` adds the penalties to it). Keras' ``L2`` returns the weight's dtype, and
then ``model.fit`` fails with a TypeError for a float16, bfloat16 or float64 weight (measured with
Keras 3.15). The gradient reaches the weight in its own dtype. ``l`` must be representable in the
dtype the penalty is computed in and in floatx (finite, and 0 or a normal number: TensorFlow on CPU
flushes subnormals to 0), and finite in a float16 or bfloat16 weight's own dtype (``WeightNorm``'s gradient
:math:`\lambda W / \lVert W \rVert` reaches :math:`\lambda` in magnitude). This is checked at each
call (at trace time inside a ``tf.function``), the first point where the weight's dtype is known.
"""

from __future__ import annotations

import keras

from keras_optreg import _validation
from keras_optreg._math import regularize as _reg


def _dtypes(x):
    """``(weight dtype, compute dtype, result dtype)`` of a penalty on ``x`` (module docstring)."""
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype not in ("float16", "bfloat16", "float32", "float64"):
        raise ValueError(f"Argument `x` (the weight) must have a floating dtype. Received: x with dtype={dtype!r}")
    return dtype, ("float64" if dtype == "float64" else "float32"), keras.config.floatx()


class _Penalty(keras.regularizers.Regularizer):
    """The shared part: the ``l`` argument, the dtype policy of the module docstring, the config."""

    def __init__(self, l=0.01):  # noqa: E741 (the lecture's lambda)
        self.l = _validation.finite_nonnegative("l", l)

    def __call__(self, x):
        x = keras.ops.convert_to_tensor(x)
        dtype, compute, result = _dtypes(x)
        lam = _validation.representable("l", self.l, compute)
        if result != compute:
            _validation.representable("l", self.l, result, "the dtype the penalty is returned in (floatx)")
        if dtype != compute:  # WeightNorm's gradient lambda W / ||W|| reaches lambda in magnitude
            _validation.representable("l", self.l, dtype, "the dtype of the weight and its gradient", normal=False)
        return keras.ops.cast(self._penalty(keras.ops.cast(x, compute), lam), result)

    def get_config(self):
        return {"l": self.l}


_ARGS = """
    Args:
        l: :math:`\\lambda`, finite and >= 0 (and representable in the dtype the penalty is computed
            in, checked at the first call). The only argument: an unknown keyword (Keras L2's ``l2``)
            raises TypeError.
"""


@keras.saving.register_keras_serializable(package="keras_optreg")
class WeightNorm(_Penalty):
    __doc__ = r"""Eq. (19) as printed: :math:`C_w(\theta) = \lambda_r \sum_{i=1}^{w} \lVert \mathbf W_i \rVert_2`.

    One instance contributes :math:`\lambda \lVert W \rVert_F` (unsquared Frobenius norm) per
    weight object, i.e. a group-lasso penalty. Its gradient at W = 0 is exactly 0 (a subgradient),
    also under XLA. The lecture names it Tikhonov, which is squared: see :class:`Tikhonov`.
    No Keras twin (Keras has no unsquared-norm regularizer). Dtypes: see the module docstring.
    """ + _ARGS

    def __init__(self, l=0.01):  # noqa: E741
        super().__init__(l)

    def _penalty(self, w, lam):
        return _reg.weight_norm_penalty(w, lam)


@keras.saving.register_keras_serializable(package="keras_optreg")
class Tikhonov(_Penalty):
    __doc__ = r"""Corrected eq. (19), Tikhonov / L2 [GBC16 sec. 7.1.1, eq. 7.1]: :math:`\frac{\lambda}{2} \lVert \mathbf W \rVert_F^2`.

    ``keras.regularizers.L2(l)`` computes :math:`l \lVert W \rVert_F^2` without the 1/2, so
    ``Tikhonov(l)`` equals ``L2(l / 2)``. For that reason the argument is the lecture's ``l``
    (:math:`\lambda`), not L2's ``l2``: ``Tikhonov(l2=...)`` raises TypeError rather than silently
    halving a Keras user's penalty (a positional ``Tikhonov(x)`` is :math:`\frac{x}{2}\lVert W\rVert^2`).
    Its gradient is :math:`\lambda W`: with plain SGD at
    learning rate :math:`\epsilon` it is weight decay by the factor :math:`1 - \epsilon\lambda`. With
    Adam the penalty's gradient is rescaled by the moment estimates, so it is *not* weight decay;
    AdamW applies the decay :math:`\lambda W` outside the adaptive update (decoupled weight decay).
    Keras twin: ``keras.regularizers.L2(l / 2)``; deviations: the argument (above) and the dtype of
    the penalty (module docstring).
    """ + _ARGS

    def __init__(self, l=0.01):  # noqa: E741
        super().__init__(l)

    def _penalty(self, w, lam):
        return _reg.tikhonov_penalty(w, lam)


def apply_to_model(model, regularizer, trainable_only=True, overwrite=False):
    r"""Attach ``regularizer`` to every weight object of a built ``model``: the sum over i in eq. (19).

    Sets ``variable.regularizer`` on each weight, so Keras adds one penalty per weight to
    ``model.losses`` and ``model.fit`` trains with it. Keras evaluates the regularizers of the
    *trainable* weights only (``Layer._get_regularization_losses``): with ``trainable_only=False``
    the weights of frozen layers get the regularizer too and count once the layer is unfrozen,
    while weights that are never trainable (BatchNormalization's moving statistics) never count.
    This is a training-time setting: it is not stored in the layers' configs, so re-apply it after
    ``keras.saving.load_model`` (or pass ``kernel_regularizer=`` to layers to have it saved).

    Args:
        model: a built ``keras.Model`` (or any ``keras.Layer``).
        regularizer: a callable of one weight, e.g. :class:`Tikhonov`.
        trainable_only: bool; True: the model's trainable weights, False: all its weights.
        overwrite: bool; a weight that already has another regularizer raises ValueError unless True.

    Returns:
        The number of weights whose regularizer was set.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"Argument `model` must be a keras.Model or keras.Layer. Received: model={model!r}")
    if not model.built:
        raise ValueError("Argument `model` must be built (call it or `model.build`) before "
                         f"regularizers can be applied. Received: model={model.name!r}")
    if not callable(regularizer):
        raise TypeError(f"Argument `regularizer` must be callable. Received: regularizer={regularizer!r}")
    _validation.boolean("trainable_only", trainable_only)
    _validation.boolean("overwrite", overwrite)
    weights = model.trainable_weights if trainable_only else model.weights
    taken = [v.path for v in weights if v.regularizer is not None and v.regularizer is not regularizer]
    if taken and not overwrite:
        raise ValueError(f"Argument `model` has weights that already have a regularizer: {taken}; pass "
                         "overwrite=True to replace them. Received: overwrite=False")
    for v in weights:
        v.regularizer = regularizer
    return len(weights)
