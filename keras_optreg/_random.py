r"""A counter-based integer hash RNG in ``keras.ops``: the same bits on every backend and in every mode.

``bits(state, shape)`` returns the draws :math:`h(h(i \oplus k) + \varphi)` for the element index i,
where the key k mixes the layer's seed and call counter and h is the "lowbias32" integer finaliser
(C. Wellons, *Prospecting for hash functions*, 2018: xor-shift/multiply rounds with bias ~0.17%
of a random permutation's), :math:`\varphi` = 0x9E3779B9. It is stateless: the state is a
``(seed, counter)`` pair held by the layer (``keras_optreg.layers._seeded``) and advanced each call.

Portability: the 32-bit words are held as **int32** (PyTorch has no uint32 arithmetic). Signed
int32 addition and multiplication wrap modulo 2**32 on TensorFlow, JAX and PyTorch, so they give
the bit patterns of the uint32 operations; right shifts are arithmetic on signed types, so each
logical shift masks off the sign copies (:func:`_shr`). The draws built on the bits use only
integer operations and exact conversions, never a rounded floating-point operation that a compiler
may contract (XLA fuses ``a * b + c`` into one FMA: measured on TensorFlow 2.21's CPU XLA, 23% of
float32 ``a * b + c`` results differ from the unfused ones), so masks, normal draws, uniform draws
and the values derived from them by one rounding (crop offsets, rotation angles) are bit-identical
eager, in ``tf.function``, under XLA and across backends.

Statistical checks (mask mean, adjacent and successive-call correlation, the normal's moments and
quantiles) are in ``tests/test_layers_random.py``; it is a fast simulation RNG, not a cryptographic one.
"""

from __future__ import annotations

import functools
import math
import statistics

import numpy as np
from keras import ops


def _i32(v):
    """The int32 with the bit pattern of the uint32 ``v``."""
    return np.int32(v - 2 ** 32 if v >= 2 ** 31 else v)


_GOLDEN = _i32(0x9E3779B9)
_MUL1 = _i32(0x7FEB352D)
_MUL2 = _i32(0x846CA68B)
_SIGN = _i32(0x80000000)


def _shr(h, k):
    """Logical right shift of int32 ``h`` by the Python int ``k`` (1 <= k <= 31)."""
    return ops.bitwise_and(ops.right_shift(h, k), np.int32((1 << (32 - k)) - 1))


def _lowbias32(h):
    h = ops.bitwise_xor(h, _shr(h, 16))
    h = ops.multiply(h, _MUL1)
    h = ops.bitwise_xor(h, _shr(h, 15))
    h = ops.multiply(h, _MUL2)
    return ops.bitwise_xor(h, _shr(h, 16))


def key(state):
    """One 32-bit key (as int32) from a ``(seed, counter)`` pair of any integer dtype (values < 2**31)."""
    s = ops.cast(state, "int32")
    return _lowbias32(ops.bitwise_xor(s[0], _lowbias32(ops.add(s[1], _GOLDEN))))


def mix(state, salt):
    """``state`` with ``salt`` (an int32 scalar, e.g. a replica id times an odd constant) xored into the seed."""
    s = ops.cast(state, "int32")
    return ops.stack([ops.bitwise_xor(s[0], ops.cast(salt, "int32")), s[1]])


def _size(shape):
    dims = tuple(shape)
    if all(isinstance(d, int) for d in dims):
        return math.prod(dims)
    return ops.prod(ops.stack([ops.cast(d, "int32") for d in dims]))


def bits(state, shape):
    """32-bit draws (int32 bit patterns) of ``shape``, a tuple of ints or scalar tensors, independent
    across elements and states."""
    idx = ops.arange(_size(shape), dtype="int32")
    h = _lowbias32(ops.add(_lowbias32(ops.bitwise_xor(idx, key(state))), _GOLDEN))
    return ops.reshape(h, tuple(shape))


def threshold(probability):
    """The t in [0, 2**32) with P(uint32 bits < t) = probability (to 2**-32)."""
    return min(int(round(probability * 2.0 ** 32)), 2 ** 32 - 1)


def signed_threshold(probability):
    """:func:`threshold` as the int32 t - 2**31 that :func:`bits_below` compares with (a Python float in,
    so a layer can pass the result as a tensor and one compiled kernel serves every probability)."""
    return np.int32(threshold(probability) - 2 ** 31)


def bits_below(state, shape, signed_t):
    """Boolean draws: the unsigned comparison bits < t, as a signed one on both sides with the sign bit
    flipped (``signed_t`` from :func:`signed_threshold`, a scalar or a scalar tensor)."""
    return ops.less(ops.bitwise_xor(bits(state, shape), _SIGN), signed_t)


def bernoulli(state, shape, probability):
    """Boolean draws, True with ``probability`` (a Python float)."""
    return bits_below(state, shape, signed_threshold(probability))


def uniform(state, shape):
    """float32 draws :math:`(k + 1/2)\\,2^{-23}`, k = 0..2**23-1 from the top 23 bits: uniform on the grid,
    strictly inside (0, 1) and symmetric about 1/2 (each value is exact in float32)."""
    k = ops.cast(_shr(bits(state, shape), 9), "float32")
    return (k + 0.5) * (2.0 ** -23)


def symmetric(state, shape):
    """float32 draws :math:`2u - 1` for the :func:`uniform` u, computed exactly as
    :math:`(2k + 1 - 2^{23})\\,2^{-23}`: uniform on an odd grid in (-1, 1)."""
    k = _shr(bits(state, shape), 9)
    odd = ops.cast(ops.add(ops.multiply(k, 2), np.int32(1 - 2 ** 23)), "float32")
    return odd * (2.0 ** -23)


# ---- standard normal draws: the inverse CDF of a 31-bit tail probability, in fixed point ----------

_K = 9          # table knots per octave of v: 2**9
_FRAC = 21      # z in Q21 fixed point: resolution 2**-21 (|z| < 6.4: below 2**24, exact in float32)
_INTERP = 15    # interpolation weights keep at most 15 bits (D * r < 2**31)


@functools.lru_cache(maxsize=1)
def _normal_table():
    r"""Knots :math:`Z_i = \mathrm{round}(2^{21} Q((v_i + 1/2) 2^{-32}))` of the upper-tail quantile
    :math:`Q(q) = \Phi^{-1}(1 - q)` (Python's ``statistics.NormalDist.inv_cdf``: Wichura's AS241,
    ~1e-16 relative) at v_i = i for i < 2**10 and, above, 2**9 equally spaced knots per octave
    [2**e, 2**(e+1)) of v up to v = 2**31. Returns (Z, D) with D_i = Z_i - Z_{i+1} >= 0."""
    inv = statistics.NormalDist().inv_cdf
    n = (31 - _K + 1) * 2 ** _K + 1
    z = np.empty(n, np.int64)
    for i in range(n):
        shift = max(0, i // 2 ** _K - 1)
        v = (i - shift * 2 ** _K) << shift
        z[i] = round(-inv((v + 0.5) * 2.0 ** -32) * 2 ** _FRAC)
    z[-1] = max(z[-1], 0)  # v = 2**31 sits a hair past q = 1/2
    return z.astype(np.int32), (z[:-1] - z[1:]).astype(np.int32)


def _floor_log2(v):
    """floor(log2 v) for int32 v >= 1 (0 for v = 0), by a binary search on the bits."""
    e = ops.zeros_like(v)
    for s in (16, 8, 4, 2, 1):
        big = ops.greater_equal(v, np.int32(1 << s))
        e = ops.where(big, ops.add(e, np.int32(s)), e)
        v = ops.where(big, ops.right_shift(v, s), v)
    return e


def normal(state, shape):
    r"""Standard-normal float32 draws :math:`z = \pm Q(q)`: the sign from the top bit, the tail
    probability :math:`q = (v + 1/2)\,2^{-32}` from the other 31 bits v, and the quantile Q linearly
    interpolated in integers between the knots of :func:`_normal_table` (2**9 per octave of v).

    Accuracy: |z - Q(q)| <= 1e-6 for every v: the knots and the interpolated step are each rounded to
    Q21 (2 * 2**-22), the interpolation weight keeps 15 bits (< 0.1 * 2**-21) and linear interpolation
    adds :math:`\Delta q^2 \max|Q''|/8 \le` 2e-7 on a segment of relative width 2**-9 (checked over
    2**20 draws in the tests),
    and |z| <= 6.36 (q >= 2**-33). Integer arithmetic and two exact conversions only: bit-identical on
    every backend and under XLA (TensorFlow's stateless normal is not: XLA uses its own bit generator).
    """
    return normal_from_bits(bits(state, shape))


def normal_from_bits(h):
    """:func:`normal` for given 32-bit draws ``h`` (int32 bit patterns), elementwise."""
    v = ops.bitwise_and(h, np.int32(0x7FFFFFFF))
    shift = ops.subtract(ops.maximum(_floor_log2(v), np.int32(_K)), np.int32(_K))
    index = ops.add(ops.multiply(shift, np.int32(2 ** _K)), ops.right_shift(v, shift))
    rest = ops.bitwise_and(v, ops.subtract(ops.left_shift(np.int32(1), shift), np.int32(1)))
    drop = ops.maximum(ops.subtract(shift, np.int32(_INTERP)), np.int32(0))
    table, step = _normal_table()
    z_hi = ops.take(ops.convert_to_tensor(table), index, axis=0)
    d = ops.take(ops.convert_to_tensor(step), index, axis=0)
    keep = ops.minimum(shift, np.int32(_INTERP))
    half = ops.right_shift(ops.left_shift(np.int32(1), keep), 1)
    frac = ops.right_shift(ops.add(ops.multiply(d, ops.right_shift(rest, drop)), half), keep)  # rounded
    z = ops.cast(ops.subtract(z_hi, frac), "float32") * (2.0 ** -_FRAC)
    return ops.where(ops.less(h, np.int32(0)), ops.negative(z), z)
