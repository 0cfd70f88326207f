"""Other frameworks' conventions, as float64 NumPy steps: the alternative references a deviation is named by.

These are not the lecture's equations (those are in ``spec``); they transcribe what other
libraries document, so that the tool can say *which* convention an implementation follows when it
does not follow the spec. Each step has the signature of the optimizer forms in
:mod:`keras_optreg.conformance.optimizers`: ``step(theta, state, g, lr, t, h) -> theta``, with
``state`` a dict of slots (zeros on entry unless the convention starts elsewhere), ``t`` the
1-based step and ``h`` the float32-rounded hyper-parameters.
"""

from __future__ import annotations

import numpy as np

from keras_optreg_spec import algorithms as A


def momentum_lr_outside(theta, state, g, lr, t, h):
    """PyTorch ``torch.optim.SGD(momentum=mu)``: :math:`b \\leftarrow \\mu b + g`, :math:`\\theta \\leftarrow \\theta - \\epsilon b`.

    Equal to GBC16 Alg. 8.2 (v = -eps b) only while the learning rate is constant.
    """
    state["b"] = h["momentum"] * state["b"] + g
    return theta - lr * state["b"]


def nesterov_lr_outside(theta, state, g, lr, t, h):
    """PyTorch ``SGD(nesterov=True)``: :math:`b \\leftarrow \\mu b + g`, :math:`\\theta \\leftarrow \\theta - \\epsilon (g + \\mu b)`."""
    state["b"] = h["momentum"] * state["b"] + g
    return theta - lr * (g + h["momentum"] * state["b"])


KERAS_ADAGRAD_INITIAL_ACCUMULATOR = 0.1


def adagrad_keras(theta, state, g, lr, t, h):
    """``keras.optimizers.Adagrad`` defaults: :math:`r_0 = 0.1`, :math:`\\theta \\leftarrow \\theta - \\epsilon g / \\sqrt{r + \\delta}`."""
    if t == 1:
        state["r"] = state["r"] + KERAS_ADAGRAD_INITIAL_ACCUMULATOR
    state["r"] = state["r"] + g * g
    return theta - lr * g / np.sqrt(state["r"] + h["epsilon"])


def rmsprop_delta_outside(theta, state, g, lr, t, h):
    """PyTorch ``torch.optim.RMSprop``: :math:`\\theta \\leftarrow \\theta - \\epsilon g / (\\sqrt{r} + \\delta)`."""
    state["r"] = h["rho"] * state["r"] + (1.0 - h["rho"]) * g * g
    return theta - lr * g / (np.sqrt(state["r"]) + h["epsilon"])


def adam_epsilon_hat(theta, state, g, lr, t, h):
    r"""Kingma & Ba (2015) sec. 2, last paragraph ("epsilon-hat"), as ``keras.optimizers.Adam``:

    .. math:: \epsilon_t = \epsilon \frac{\sqrt{1-\rho_2^t}}{1-\rho_1^t},\qquad
              \theta \leftarrow \theta - \epsilon_t \frac{s}{\sqrt{r} + \hat\delta}

    i.e. Alg. 1 with :math:`\delta` replaced by :math:`\hat\delta / \sqrt{1-\rho_2^t}`.
    """
    b1, b2 = h["beta_1"], h["beta_2"]
    state["s"] = b1 * state["s"] + (1.0 - b1) * g
    state["r"] = b2 * state["r"] + (1.0 - b2) * g * g
    step = lr * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
    return theta - step * state["s"] / (np.sqrt(state["r"]) + h["epsilon"])


def adam_delta_inside_root(theta, state, g, lr, t, h):
    r"""``optax.adam(eps=0, eps_root=delta)``'s form: Alg. 8.7 with :math:`\delta` inside the root,
    :math:`\theta \leftarrow \theta - \epsilon \hat s / \sqrt{\hat r + \delta}`."""
    b1, b2 = h["beta_1"], h["beta_2"]
    state["s"] = b1 * state["s"] + (1.0 - b1) * g
    state["r"] = b2 * state["r"] + (1.0 - b2) * g * g
    s_hat, r_hat = state["s"] / (1.0 - b1 ** t), state["r"] / (1.0 - b2 ** t)
    return theta - lr * s_hat / np.sqrt(r_hat + h["epsilon"])


def adam_bias_correction_without_power(theta, state, g, lr, t, h):
    """Alg. 8.7 with the bias corrections of printed eqs. (16)-(17), :math:`1-\\rho` instead of :math:`1-\\rho^t`."""
    b1, b2 = h["beta_1"], h["beta_2"]
    state["s"] = b1 * state["s"] + (1.0 - b1) * g
    state["r"] = b2 * state["r"] + (1.0 - b2) * g * g
    s_hat, r_hat = state["s"] / (1.0 - b1), state["r"] / (1.0 - b2)
    return theta - lr * s_hat / (np.sqrt(r_hat) + h["epsilon"])


def rmsprop_centered_delta_outside(theta, state, g, lr, t, h):
    """PyTorch ``RMSprop(centered=True)``: :math:`\\theta \\leftarrow \\theta - \\epsilon g / (\\sqrt{r - b^2} + \\delta)`."""
    state["r"] = h["rho"] * state["r"] + (1.0 - h["rho"]) * g * g
    state["b"] = h["rho"] * state["b"] + (1.0 - h["rho"]) * g
    return theta - lr * g / (np.sqrt(np.maximum(state["r"] - state["b"] ** 2, 0.0)) + h["epsilon"])


def amsgrad_epsilon_hat(theta, state, g, lr, t, h):
    """``keras.optimizers.Adam(amsgrad=True)``: the epsilon-hat form of ``adam_epsilon_hat`` with
    :math:`\\tilde r = \\max(\\tilde r, r)` in the denominator."""
    b1, b2 = h["beta_1"], h["beta_2"]
    state["s"] = b1 * state["s"] + (1.0 - b1) * g
    state["r"] = b2 * state["r"] + (1.0 - b2) * g * g
    state["m"] = np.maximum(state["m"], state["r"])
    step = lr * np.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
    return theta - step * state["s"] / (np.sqrt(state["m"]) + h["epsilon"])


def amsgrad_max_of_corrected(theta, state, g, lr, t, h):
    """``optax.amsgrad``: the running maximum of the *bias-corrected* second moment,
    :math:`\\tilde r \\leftarrow \\max(\\tilde r, r / (1 - \\rho_2^t))`, then Alg. 8.7's step."""
    b1, b2 = h["beta_1"], h["beta_2"]
    state["s"] = b1 * state["s"] + (1.0 - b1) * g
    state["r"] = b2 * state["r"] + (1.0 - b2) * g * g
    state["m"] = np.maximum(state["m"], state["r"] / (1.0 - b2 ** t))
    return theta - lr * state["s"] / (1.0 - b1 ** t) / (np.sqrt(state["m"]) + h["epsilon"])


def adamw_epsilon_hat(theta, state, g, lr, t, h):
    """``keras.optimizers.Adam(weight_decay=wd)`` (``BaseOptimizer._apply_weight_decay``, Keras 3.15):
    :math:`\theta \\leftarrow \theta - \\epsilon\\,wd\\,\theta` before the step, then ``adam_epsilon_hat``."""
    return adam_epsilon_hat(theta - lr * h["weight_decay"] * theta, state, g, lr, t, h)


def adam_l2_coupled(theta, state, g, lr, t, h):
    """The Tikhonov penalty (lambda/2)||theta||^2 (corrected eq. 19, lambda = weight_decay) added to the loss
    under Adam: its gradient enters the moments (LH19 Alg. 2, red term; ``algorithms.alg_adam_l2_step``)."""
    theta, state["s"], state["r"], _ = A.alg_adam_l2_step(theta, state["s"], state["r"], t - 1, g, lr, h["beta_1"],
                                                          h["beta_2"], h["epsilon"], h["weight_decay"])
    return theta
