r"""A counter-based integer hash RNG, cheap enough to fuse into one XLA elementwise kernel.

``bits(state, shape)`` returns uint32 draws :math:`h(i \oplus k)` for the element index i, where the
key k mixes the layer's seed and call counter and h is the "lowbias32" integer finaliser
(C. Wellons, *Prospecting for hash functions*, 2018: xor-shift/multiply rounds with bias ~0.17%
of a random permutation's). It is stateless: the state is a ``(seed, counter)`` int32 pair held
in a Variable that the layer advances each call, so it survives ``.keras`` save/load and compiles
under XLA. Statistical checks (mask mean, adjacent and successive-call correlation) are in
``tests/test_layers_dropout.py``; it is a fast simulation RNG, not a cryptographic one.
"""

from __future__ import annotations

import tensorflow as tf

_GOLDEN = 0x9E3779B9


def _lowbias32(h):
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))
    h = h * tf.constant(0x7FEB352D, tf.uint32)
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 15))
    h = h * tf.constant(0x846CA68B, tf.uint32)
    return tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, 16))


def key(state):
    """One uint32 key from an int32 ``(seed, counter)`` pair."""
    s = tf.bitcast(tf.cast(state, tf.int32), tf.uint32)
    return _lowbias32(s[0] ^ _lowbias32(s[1] + tf.constant(_GOLDEN, tf.uint32)))


def bits(state, shape):
    """uint32 draws of ``shape`` (a 1-D int32 tensor or tuple), independent across elements and states."""
    shape = tf.convert_to_tensor(shape, tf.int32)
    n = tf.reduce_prod(shape)
    idx = tf.bitcast(tf.range(n, dtype=tf.int32), tf.uint32)
    h = _lowbias32(_lowbias32(idx ^ key(state)) + tf.constant(_GOLDEN, tf.uint32))
    return tf.reshape(h, shape)


def threshold(probability):
    """The uint32 t with P(bits < t) = probability (to 2**-32)."""
    return min(int(round(probability * 2.0 ** 32)), 2 ** 32 - 1)


def bernoulli(state, shape, probability):
    """Boolean draws, True with ``probability``."""
    return bits(state, shape) < tf.constant(threshold(probability), tf.uint32)


def uniform(state, shape):
    """float32 draws on the grid (k + 1/2) 2**-24, k = 0..2**24-1: uniform on (0, 1), never 0 or 1."""
    top = tf.cast(tf.bitwise.right_shift(bits(state, shape), 8), tf.float32)
    return (top + 0.5) * (2.0 ** -24)


def normal(state, shape):
    r"""Standard-normal float32 draws by Box-Muller: :math:`z = \sqrt{-2\ln u_1}\cos(2\pi u_2)`.

    Built on :func:`bits`, so eager, ``tf.function`` and XLA give the same draws (TF's stateless
    normal does not: XLA uses its own bit generator).
    """
    shape = tf.convert_to_tensor(shape, tf.int32)
    u = uniform(state, tf.concat([[2], shape], 0))
    return tf.sqrt(-2.0 * tf.math.log(u[0])) * tf.cos((2.0 * 3.141592653589793) * u[1])
