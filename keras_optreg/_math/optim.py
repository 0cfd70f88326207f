"""Optimizer update rules (lecture eqs. 4-18) as pure ``keras.ops`` functions.

Each rule takes the minibatch gradient ``g`` (eqs. 4, 7, 10, 13, corrected: the *mean* of the
per-example gradients, GBC16 Alg. 8.1) and the rule's state, and returns ``(update, *new_state)``
where the new parameters are ``theta + update``. Neither Variables nor hidden state: the Keras
optimizers (``keras_optreg.optimizers``) and the functional API (``keras_optreg.functional``)
both call these functions, so the rule is written once.
"""

from __future__ import annotations

from keras import ops


def sgd(g, lr):
    r"""Eq. (5), GBC16 Alg. 8.1: :math:`\theta \leftarrow \theta - \epsilon g`. Returns ``(update,)``."""
    return (ops.negative(lr) * g,)


def momentum(g, v, lr, alpha, nesterov=False):
    r"""Eqs. (8)-(9) corrected, GBC16 Alg. 8.2 (``nesterov=False``) and Alg. 8.3.

    .. math:: v \leftarrow \alpha v - \epsilon g, \qquad \theta \leftarrow \theta + v

    The learning rate sits inside the velocity, as in GBC16 and Keras. With ``nesterov=True`` the
    parameters are the look-ahead point :math:`\phi = \theta + \alpha v` (Bengio et al. 2013,
    eq. 7; the form Keras and PyTorch implement): the gradient is taken at :math:`\phi` and
    :math:`\phi \leftarrow \phi + \alpha v_{new} - \epsilon g`. Returns ``(update, v)``.
    """
    v = alpha * v - lr * g
    update = alpha * v - lr * g if nesterov else v
    return update, v


def adagrad(g, r, lr, delta):
    r"""GBC16 Alg. 8.4 (AdaGrad), :math:`r_0 = 0`, :math:`\delta` outside the square root.

    .. math:: r \leftarrow r + g \odot g, \qquad
              \theta \leftarrow \theta - \frac{\epsilon}{\delta + \sqrt{r}} \odot g

    Returns ``(update, r)``.
    """
    r = r + g * g
    return ops.negative(lr) / (delta + ops.sqrt(r)) * g, r


def rmsprop(g, r, lr, rho, delta):
    r"""Eqs. (11)-(12) corrected, GBC16 Alg. 8.5 (RMSProp), :math:`\delta` inside the square root.

    .. math:: r \leftarrow \rho r + (1 - \rho) g \odot g, \qquad
              \theta \leftarrow \theta - \frac{\epsilon}{\sqrt{\delta + r}} \odot g

    Returns ``(update, r)``.
    """
    r = rho * r + (1.0 - rho) * (g * g)
    return ops.negative(lr) / ops.sqrt(delta + r) * g, r


def rmsprop_nesterov(g, r, v, lr, rho, delta, alpha):
    r"""GBC16 Alg. 8.6 (RMSProp with Nesterov momentum) in look-ahead form, :math:`\delta` inside the root.

    Alg. 8.6 takes the gradient at the interim point :math:`\tilde\theta = \theta + \alpha v`:

    .. math:: r \leftarrow \rho r + (1-\rho) g \odot g, \qquad
              v \leftarrow \alpha v - \frac{\epsilon}{\sqrt{r}} \odot g, \qquad
              \theta \leftarrow \theta + v

    Here the parameters are the look-ahead point :math:`\phi = \theta + \alpha v` (the change of
    variables of Bengio et al. 2013, as ``momentum(..., nesterov=True)``), so ``g`` is the gradient
    at :math:`\phi` and, with :math:`u = \epsilon g / \sqrt{\delta + r}`,

    .. math:: v \leftarrow \alpha v - u, \qquad \phi \leftarrow \phi + \alpha v - u

    (:math:`\phi_{new} = \theta + v_{new} + \alpha v_{new} = \phi - \alpha v + v_{new} + \alpha v_{new}`).
    Alg. 8.6's box has no :math:`\delta` (it divides by :math:`\sqrt{r}`, 0 when the gradients
    so far are 0); :math:`\delta` sits inside the square root as in Alg. 8.5, and
    :math:`\delta \to 0` recovers the box. Returns ``(update, r, v)``.
    """
    r = rho * r + (1.0 - rho) * (g * g)
    u = lr / ops.sqrt(delta + r) * g
    v = alpha * v - u
    return alpha * v - u, r, v


def adam(g, s, r, t, lr, rho1, rho2, delta):
    r"""Eqs. (14)-(18) corrected, GBC16 Alg. 8.7 = Kingma & Ba (2015) Alg. 1.

    .. math:: s \leftarrow \rho_1 s + (1-\rho_1) g, \quad
              r \leftarrow \rho_2 r + (1-\rho_2) g \odot g, \quad
              \hat s = \frac{s}{1-\rho_1^t}, \quad \hat r = \frac{r}{1-\rho_2^t}, \quad
              \theta \leftarrow \theta - \epsilon \frac{\hat s}{\sqrt{\hat r} + \delta}

    ``t`` is the 1-based step number (a float tensor). The bias corrections are folded into two
    scalars, the same number up to float rounding, with one elementwise pass fewer:

    .. math:: \epsilon \frac{\hat s}{\sqrt{\hat r} + \delta}
              = \frac{\epsilon \sqrt{1-\rho_2^t}}{1-\rho_1^t} \cdot
                \frac{s}{\sqrt{r} + \delta \sqrt{1-\rho_2^t}}

    (Keras' Adam is the right-hand side with :math:`\delta\sqrt{1-\rho_2^t}` replaced by a
    constant :math:`\hat\delta`). Returns ``(update, s, r)``.
    """
    s = rho1 * s + (1.0 - rho1) * g
    r = rho2 * r + (1.0 - rho2) * (g * g)
    root = ops.sqrt(1.0 - ops.power(rho2, t))
    step = ops.negative(lr) * root / (1.0 - ops.power(rho1, t))
    return step * s / (ops.sqrt(r) + delta * root), s, r
