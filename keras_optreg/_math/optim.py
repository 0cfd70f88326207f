"""Optimizer update rules (lecture eqs. 4-18) as pure ``keras.ops`` functions.

Each rule takes the minibatch gradient ``g`` (eqs. 4, 7, 10, 13, corrected: the *mean* of the
per-example gradients, GBC16 Alg. 8.1) and the rule's state, and returns ``(update, *new_state)``
where the new parameters are ``theta + update``. Neither Variables nor hidden state: the Keras
optimizers (``keras_optreg.optimizers``) and the functional API (``keras_optreg.functional``)
both call these functions, so the rule is written once.
"""

from __future__ import annotations

import functools

from keras import ops

from keras_optreg._math import _compat


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


#: ``momentum(..., nesterov=True)``, one object: ``SGD(nesterov=True)``'s rule, recognised by identity
#: (``keras_optreg._fused`` gives it TensorFlow's training kernel)
nesterov_momentum = functools.partial(momentum, nesterov=True)


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


def rmsprop_centered(g, r, b, lr, rho, delta):
    r"""Graves (2013) eqs. (38)-(40) without momentum: centered RMSProp, :math:`\delta` inside the root.

    .. math:: r \leftarrow \rho r + (1-\rho) g \odot g, \qquad
              b \leftarrow \rho b + (1-\rho) g, \qquad
              \theta \leftarrow \theta - \frac{\epsilon}{\sqrt{\max(r - b \odot b, 0) + \delta}} \odot g

    :math:`r - b^2` is an estimate of the gradient's variance, :math:`\ge 0` in exact arithmetic
    (Jensen: :math:`b` and :math:`r` average :math:`g` and :math:`g^2` with the same weights);
    float rounding can take it below 0, where a small :math:`\delta` would give NaN, so it is
    clamped at 0. Returns ``(update, r, b)``.
    """
    r = rho * r + (1.0 - rho) * (g * g)
    b = rho * b + (1.0 - rho) * g
    return ops.negative(lr) / ops.sqrt(delta + _compat.maximum(r - b * b, 0.0)) * g, r, b


def rmsprop_nesterov(g, r, m, lr, rho, delta, alpha):
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
    The slot holds :math:`m = -v` (``keras.optimizers.RMSprop``'s sign for its momentum slot, so a
    state saved from Keras' twin loads with its meaning): :math:`m \leftarrow \alpha m + u`,
    :math:`\phi \leftarrow \phi - (\alpha m + u)`. Alg. 8.6's box has no :math:`\delta` (it divides
    by :math:`\sqrt{r}`, 0 when the gradients so far are 0); :math:`\delta` sits inside the square root
    as in Alg. 8.5, and :math:`\delta \to 0` recovers the box. Returns ``(update, r, m)``.
    """
    r = rho * r + (1.0 - rho) * (g * g)
    u = lr / ops.sqrt(delta + r) * g
    m = alpha * m + u
    return ops.negative(alpha * m + u), r, m


def rmsprop_centered_nesterov(g, r, m, b, lr, rho, delta, alpha):
    r"""``rmsprop_nesterov`` with Graves' (2013) centered denominator :math:`\sqrt{\max(r - b \odot b, 0) + \delta}`.

    :math:`b \leftarrow \rho b + (1-\rho) g` (Graves eq. 39); the momentum is this library's
    Nesterov look-ahead form (GBC16 Alg. 8.6), not Graves' heavy-ball eq. (40). Returns ``(update, r, m, b)``.
    """
    r = rho * r + (1.0 - rho) * (g * g)
    b = rho * b + (1.0 - rho) * g
    u = lr / ops.sqrt(delta + _compat.maximum(r - b * b, 0.0)) * g
    m = alpha * m + u
    return ops.negative(alpha * m + u), r, m, b


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


def amsgrad(g, s, r, r_max, t, lr, rho1, rho2, delta):
    r"""AMSGrad (Reddi et al. 2018, Alg. 2) in the form Keras and PyTorch use: ``adam`` with the running maximum
    :math:`\tilde r \leftarrow \max(\tilde r, r)` of the (uncorrected) second moment in the denominator.

    .. math:: \tilde r \leftarrow \max(\tilde r, r), \qquad
              \theta \leftarrow \theta - \epsilon \frac{\hat s}{\sqrt{\tilde r / (1-\rho_2^t)} + \delta}

    Reddi et al.'s Alg. 2 has no bias correction, no :math:`\delta` and a decaying
    :math:`\beta_{1t}`, :math:`\alpha_t`; Keras keeps Adam's bias corrections and takes the maximum of
    the uncorrected :math:`r` (with its epsilon-hat, see ``adam``), PyTorch the same with
    :math:`\delta` outside :math:`\sqrt{\hat r}`, as here. Returns ``(update, s, r, r_max)``.
    """
    s = rho1 * s + (1.0 - rho1) * g
    r = rho2 * r + (1.0 - rho2) * (g * g)
    r_max = _compat.maximum(r_max, r)
    root = ops.sqrt(1.0 - ops.power(rho2, t))
    step = ops.negative(lr) * root / (1.0 - ops.power(rho1, t))
    return step * s / (ops.sqrt(r_max) + delta * root), s, r, r_max

#: ``sum_of_squares`` adds this many contiguous slices elementwise per level.
SUM_BLOCK = 16
#: ``sum_of_squares`` sums a remainder of at most this many elements directly.
SUM_STOP = 8192


def sum_of_squares(g):
    r""":math:`\sum_i g_i^2` of one tensor, in float32 (float64 for a float64 ``g``), by blocked pairwise summation.

    With a static size :math:`n` above ``SUM_STOP``, the squares of the ``SUM_BLOCK`` contiguous
    slices of length :math:`m = \lfloor n / 16 \rfloor` are added elementwise (one pass over ``g``,
    :math:`m` outputs), then the same on those sums, until at most ``SUM_STOP`` remain, which are
    summed directly; each level's leftover :math:`n - 16 m` elements are summed directly too. The
    value is the running sum's up to rounding: each element passes through
    :math:`L = \lceil \log_{16}(n / 8192) \rceil` levels of 16 terms before a last sum of at most
    8192 + 16 L terms, a relative error of at most :math:`(16 L + 8192 + 16 L) u` (Higham 2002,
    sec. 4.2; the running sum's bound is :math:`n u`). Why not ``ops.sum(ops.square(g))``: XLA on CPU
    runs a reduction over millions of elements as a scalar loop (no reassociation), several times
    an Adam step, and does not fuse it with the update that reads ``g`` too; the slices are an
    elementwise loop at memory speed. A dynamic size sums directly.
    """
    wide = "float64" if ops.dtype(g) == "float64" else "float32"
    return _blocked_sum(ops.reshape(ops.cast(g, wide), (-1,)), squared=False)


def _blocked_sum(x, squared):
    """``sum_of_squares``' blocked summation of the 1-D ``x`` (of ``x ** 2`` unless ``squared``)."""
    n = x.shape[0]
    if n is None or n <= SUM_STOP:
        return ops.sum(x if squared else ops.square(x))
    total = ops.zeros((), ops.dtype(x))
    while n > SUM_STOP:
        m = n // SUM_BLOCK
        parts = [x[i * m:(i + 1) * m] for i in range(SUM_BLOCK)]
        rest = x[SUM_BLOCK * m:]
        if not squared:
            parts, rest = [p * p for p in parts], rest * rest
        if n > SUM_BLOCK * m:
            total = total + ops.sum(rest)
        x = functools.reduce(ops.add, parts)
        n, squared = m, True
    return total + ops.sum(x)


def pooled_sum_of_squares(grads):
    r""":math:`\sum_v \sum_i g_{v,i}^2` over the float32 tensors ``grads`` of static sizes, in one blocked sum.

    A tensor of at most ``SUM_STOP`` elements enters with its squares; a larger one of :math:`n` elements
    with the :math:`m = \lfloor n / 16 \rfloor` column sums of its first :math:`16 m` squares laid out as
    16 rows of :math:`m` (row :math:`k` is the contiguous slice :math:`k`, as in ``sum_of_squares``' first
    level) and its :math:`n - 16 m` leftover squares; the concatenation is summed as ``sum_of_squares``
    sums the squares of a tensor. Each element so passes through one level of 16 terms more than the
    concatenation's own levels: the bound of ``sum_of_squares`` with :math:`L` counted on the
    concatenation, plus :math:`16 u`. The same value as ``sum(sum_of_squares(g) for g in grads)`` up to
    rounding. Why: under XLA on CPU every reduction is its own LLVM kernel, compiled once per
    variable; the column sums are one reduction per tensor, a vectorised loop over its :math:`m`
    outputs (issue 17: ResNet50's 214 gradient norms compiled in about 1 s against 3-4 s, and ran
    as fast; README).
    """
    squares = []
    for g in grads:
        x = ops.reshape(g, (-1,))
        n = x.shape[0]
        if n <= SUM_STOP:
            squares.append(ops.square(x))
            continue
        m = n // SUM_BLOCK
        squares.append(ops.sum(ops.square(ops.reshape(x[:SUM_BLOCK * m], (SUM_BLOCK, m))), axis=0))
        if n > SUM_BLOCK * m:
            squares.append(ops.square(x[SUM_BLOCK * m:]))
    return _blocked_sum(ops.concatenate(squares), squared=True)


def sums_of_squares(grads):
    """``sum_of_squares`` of each tensor of the list ``grads``, in order."""
    return [sum_of_squares(g) for g in grads]


def all_finite(grads):
    """A boolean scalar: whether every element of every tensor of ``grads`` is finite (no NaN, no infinity)."""
    return ops.all(ops.stack([ops.all(ops.isfinite(g)) for g in grads]))


def global_norm(grads):
    r"""The global norm :math:`\|g\|_2 = \sqrt{\sum_v \sum_i g_{v,i}^2}` of a list of tensors, as float32.

    Each tensor's ``sum_of_squares`` (float32, float64 when a tensor is float64, so a float16 or
    bfloat16 gradient does not overflow at :math:`|g| > 256`); the result is cast to float32.
    """
    wide = "float64" if any(ops.dtype(g) == "float64" for g in grads) else "float32"
    squares = [ops.cast(sum_of_squares(g), wide) for g in grads]
    return ops.cast(ops.sqrt(ops.sum(ops.stack(squares))), "float32")
