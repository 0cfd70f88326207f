r"""Regularization math (lecture eq. 19): penalties of one weight object.

Both penalties take ``w`` already in the dtype they are computed in (the callers cast float16 and
bfloat16 weights to float32) and ``lam`` as a Python float.
"""

from __future__ import annotations

from keras import ops


def safe_norm(w):
    r""":math:`\lVert W \rVert_F` with gradient exactly 0 (a subgradient) at W = 0, also under XLA.

    Computed as ``where(s > 0, sqrt(where(s > 0, s, 1)), 0)`` with :math:`s = \sum w^2`, so no
    branch ever evaluates :math:`\sqrt 0`'s infinite derivative.
    """
    s = ops.sum(ops.square(w))
    pos = ops.greater(s, 0.0)
    return ops.where(pos, ops.sqrt(ops.where(pos, s, ops.ones_like(s))), ops.zeros_like(s))


def weight_norm_penalty(w, lam):
    r"""Eq. (19) as printed, one term: :math:`\lambda \lVert W \rVert_2` (unsquared Frobenius norm)."""
    return ops.multiply(ops.convert_to_tensor(lam, dtype=w.dtype), safe_norm(w))


def tikhonov_penalty(w, lam):
    r"""Corrected eq. (19), one term [GBC16 7.1.1]: :math:`\lambda \cdot \frac12 \lVert W \rVert_F^2`.

    Multiplied in this order so that only :math:`\lambda` itself is rounded to the dtype (the 1/2
    is exact).
    """
    return ops.multiply(ops.convert_to_tensor(lam, dtype=w.dtype), ops.multiply(ops.sum(ops.square(w)), 0.5))
