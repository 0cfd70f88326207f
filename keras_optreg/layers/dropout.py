r"""Dropout (Srivastava et al. 2014) and InputNoise (GBC16 sec. 7.4-7.5): elementwise random layers."""

from __future__ import annotations

import keras
from keras import ops

from keras_optreg import _random, _validation
from keras_optreg._math import layers as _m
from keras_optreg.layers._seeded import SeededLayer, compiled, finite_in

_register = keras.saving.register_keras_serializable(package="keras_optreg")


def _mask_shape(shape, noise_shape):
    return shape if noise_shape is None else tuple(shape[i] if d is None else d for i, d in enumerate(noise_shape))


def _dropout_train(x, state, signed_t, scale, noise_shape):
    keep = ops.logical_not(_random.bits_below(state, _mask_shape(ops.shape(x), noise_shape), signed_t))
    return _m.dropout_scaled(x, keep, scale)


def _noise_train(x, state, stddev):
    return _m.input_noise(x, _random.normal(state, ops.shape(x)), stddev)


_dropout_train_xla = compiled(_dropout_train)
_noise_train_xla = compiled(_noise_train)


def _noise_shape(noise_shape):
    if noise_shape is None:
        return None
    if isinstance(noise_shape, (str, bytes)) or not hasattr(noise_shape, "__iter__"):
        _validation._fail("noise_shape", noise_shape, "None or a tuple of positive ints / None", TypeError)
    dims = tuple(noise_shape)
    if not all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in dims):
        _validation._fail("noise_shape", noise_shape, "None or a tuple of positive ints / None", TypeError)
    if not all(d is None or d > 0 for d in dims):
        _validation._fail("noise_shape", noise_shape, "a tuple of positive ints / None")
    return dims


@_register
class Dropout(SeededLayer):
    r"""Inverted dropout (Srivastava et al. 2014, JMLR 15(56), sec. 4; lecture: "Randomly remove
    connections during training"). Drop-in for ``keras.layers.Dropout``.

    .. math:: y = \frac{r \odot x}{1-\text{rate}},\quad r \sim \text{Bernoulli}(1-\text{rate})
              \ \text{(training)},\qquad y = x\ \text{(inference)}

    ``rate`` is the *drop* probability; Srivastava et al.'s retain probability is p = 1 - rate, and
    their test-time scaling by p is moved into training (division by p), so inference is the
    identity. The mask comes from a counter-based integer hash (``keras_optreg._random``) that XLA
    fuses into one elementwise kernel; the output is in the layer's compute dtype (an integer input
    is cast to it in both modes, so declared and actual dtypes agree). Masks pass through.

    Deviations from ``keras.layers.Dropout``: ``rate=1`` is rejected (the equation divides by
    1 - rate); an integer input comes out in the compute dtype at inference too (Keras returns it
    unchanged there, though it declares the compute dtype); ``seed`` must be in [0, 2**31); the
    random state is saved with the layer (``keras_optreg.layers._seeded``), and a layer with
    ``rate=0`` has one too (Keras' has none).

    Args:
        rate: float in [0, 1), the fraction of units dropped in training.
        noise_shape: None or a tuple of positive ints / None, the shape of the mask broadcast against
            the input (None entries take the input's size), e.g. ``(batch, 1, features)`` to drop
            the same features at every time step. Each entry must be 1 or the input's size.
        seed: None or an int in [0, 2**31); None draws one from Python's ``random``
            (``keras.utils.set_random_seed`` seeds it).
        **kwargs: base layer arguments (``name``, ``dtype``).
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _validation.unit_interval("rate", rate)
        self.noise_shape = _noise_shape(noise_shape)
        self.supports_masking = True

    def _check_noise_shape(self, shape):
        if self.noise_shape is None:
            return
        if len(self.noise_shape) != len(shape):
            raise ValueError(f"Argument `noise_shape` must have the input's rank {len(shape)}. "
                             f"Received: noise_shape={self.noise_shape} for an input of shape {tuple(shape)}")
        for d, s in zip(self.noise_shape, shape, strict=True):
            if d is not None and d != 1 and s is not None and d != s:
                raise ValueError(f"Argument `noise_shape` must broadcast against the input: each entry None, 1 "
                                 f"or the input's size. Received: noise_shape={self.noise_shape} for an input of "
                                 f"shape {tuple(shape)}")

    def call(self, inputs, training=False):
        self._check_noise_shape(inputs.shape)
        x = ops.cast(inputs, self.compute_dtype)
        if not training or self.rate == 0.0:
            return x
        # the rate as tensors (threshold and rounded 1/(1 - rate)): one kernel per shape serves every rate
        return _dropout_train_xla(x, self.next_state(), ops.convert_to_tensor(_random.signed_threshold(self.rate)),
                                  ops.convert_to_tensor(1.0 / (1.0 - self.rate), x.dtype), self.noise_shape)

    def compute_output_shape(self, input_shape):
        self._check_noise_shape(input_shape)
        return input_shape

    def get_config(self):
        noise = None if self.noise_shape is None else list(self.noise_shape)
        return {**super().get_config(), "rate": self.rate, "noise_shape": noise}


@_register
class InputNoise(SeededLayer):
    r"""Additive Gaussian input noise in training (lecture, "Overfitting": "Input-noise";
    Goodfellow et al. 2016 sec. 7.4-7.5). Drop-in for ``keras.layers.GaussianNoise``.

    .. math:: \tilde x = x + \sigma z,\qquad z \sim \mathcal N(0, 1)

    z is the standard-normal quantile of a 32-bit hash draw, computed in integers
    (``keras_optreg._random.normal``): the same values eager, in ``tf.function`` and under XLA.
    Identity at inference. The output is in the layer's compute dtype (an integer image gets its
    noise instead of losing it to truncation). Masks pass through.

    Deviations from ``keras.layers.GaussianNoise``: any ``stddev`` that is finite in the compute
    dtype is accepted (Keras requires stddev <= 1; the lecture sets no bound); an integer input comes
    out in the compute dtype at inference too; ``seed`` in [0, 2**31); the random state is saved with
    the layer.

    Args:
        stddev: float >= 0, the standard deviation sigma of the noise; it must stay finite in the
            layer's compute dtype (``InputNoise(1e39)`` is rejected: float32 holds at most 3.4e38).
        seed: None or an int in [0, 2**31); None draws one from Python's ``random``.
        **kwargs: base layer arguments (``name``, ``dtype``).
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stddev = finite_in("stddev", _validation.finite_nonnegative("stddev", stddev), self.compute_dtype)
        self.supports_masking = True

    def call(self, inputs, training=False):
        x = ops.cast(inputs, self.compute_dtype)
        if not training or self.stddev == 0.0:
            return x
        return _noise_train_xla(x, self.next_state(), ops.convert_to_tensor(self.stddev, x.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}
