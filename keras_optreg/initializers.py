r"""Initializers of the lecture's section "Initialization" (eqs. 1-3).

Fans follow Keras' kernel layout (Dense ``(in, out)``, Conv ``(*spatial, in, out)``,
fan_in = in * prod(spatial)); ``layout="torch"`` reads PyTorch's ``(out, in, *spatial)``.

Seeds: an integer seed reproduces exactly; ``seed=None`` draws a fresh seed on every call, so an
unseeded instance gives different values each call (Keras' unseeded built-ins repeat themselves).
The configured seed (``None`` included) survives serialization. The fresh seed is a Python int
drawn when the initializer is called, so inside one traced ``tf.function`` an unseeded instance is
fixed at trace time (layers build eagerly, where every call differs). Under ``jit_compile=True`` a fixed seed
reproduces, but XLA's stateless RNG gives other values than the eager kernel for the same seed.
"""

from __future__ import annotations

import random as _pyrandom

import keras

from keras_optreg import _validation
from keras_optreg._math import init as _init

_SYSRAND = _pyrandom.SystemRandom()


def _float_dtype(dtype):
    dtype = keras.backend.standardize_dtype(dtype or keras.backend.floatx())
    if "float" not in dtype:
        raise ValueError(f"Argument `dtype` must be a floating dtype. Received: dtype={dtype!r}")
    return dtype


class _Seeded(keras.initializers.Initializer):
    def __init__(self, seed=None, layout="keras"):
        self.seed = _validation.seed("seed", seed)
        self.layout = _validation.one_of("layout", layout, _init.LAYOUTS)

    def _call_seed(self):
        return self.seed if self.seed is not None else _SYSRAND.randrange(2**31 - 1)

    def _uniform(self, shape, dtype, bound):
        u = keras.random.uniform(shape, 0.0, 1.0, dtype=dtype, seed=self._call_seed())
        return _init.uniform_from_unit(u, keras.ops.cast(bound, dtype))

    def get_config(self):
        return {"seed": self.seed, "layout": self.layout}


@keras.saving.register_keras_serializable(package="keras_optreg")
class GlorotUniform(_Seeded):
    r"""Eq. (1): Glorot / Xavier uniform [Glorot & Bengio 2010, eq. 16].

    .. math:: w_{ij} \sim \mathcal{U}\left(-\sqrt{\frac{6}{\text{fan\_in}+\text{fan\_out}}},
              \sqrt{\frac{6}{\text{fan\_in}+\text{fan\_out}}}\right)
    """

    def __call__(self, shape, dtype=None):
        dtype = _float_dtype(dtype)
        fan_in, fan_out = _init.compute_fans(shape, self.layout)
        return self._uniform(shape, dtype, _init.glorot_uniform_bound(fan_in, fan_out))


@keras.saving.register_keras_serializable(package="keras_optreg")
class TorchDefault(_Seeded):
    r"""Eq. (2) as printed: PyTorch's ``nn.Linear`` / ``nn.ConvNd`` default weight initializer.

    .. math:: w_{ij} \sim \mathcal{U}\left(-\frac{1}{\sqrt{\text{fan\_in}}}, \frac{1}{\sqrt{\text{fan\_in}}}\right)

    Source: PyTorch ``nn.Linear.reset_parameters`` (``kaiming_uniform_(w, a=sqrt(5))``).
    The lecture calls this "He-uniform"; it is not: He-uniform [He et al. 2015] is
    :math:`\mathcal{U}(\pm\sqrt{6/\text{fan\_in}})` (variance 2/fan_in, Keras ``HeUniform``),
    while this law has variance 1/(3 fan_in). The bias initializer that PyTorch pairs with it is
    :class:`TorchDefaultBias` (same bound, needs the layer's fan_in); see :func:`torch_default_pair`.
    """

    def __call__(self, shape, dtype=None):
        dtype = _float_dtype(dtype)
        fan_in, _ = _init.compute_fans(shape, self.layout)
        return self._uniform(shape, dtype, _init.torch_linear_bound(fan_in))


@keras.saving.register_keras_serializable(package="keras_optreg")
class TorchDefaultBias(_Seeded):
    r"""PyTorch's default bias: :math:`b_j \sim \mathcal U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})`.

    Eq. (2)'s companion (PyTorch ``nn.Linear.reset_parameters``). The bias shape carries no fan,
    so the layer's ``fan_in`` is an explicit argument (a positive int).
    """

    def __init__(self, fan_in, seed=None):
        super().__init__(seed=seed)
        self.fan_in = _validation.positive_int("fan_in", fan_in)

    def __call__(self, shape, dtype=None):
        dtype = _float_dtype(dtype)
        return self._uniform(shape, dtype, _init.torch_linear_bound(self.fan_in))

    def get_config(self):
        return {"fan_in": self.fan_in, "seed": self.seed}


def torch_default_pair(kernel_shape, seed=None, layout="keras"):
    """``(kernel_initializer, bias_initializer)`` as PyTorch initializes a layer with this kernel.

    Pass them as ``Dense(..., kernel_initializer=k, bias_initializer=b)``. With an int seed the
    bias uses ``seed + 1`` so kernel and bias draws differ.
    """
    fan_in, _ = _init.compute_fans(kernel_shape, layout)
    bias_seed = None if seed is None else _validation.seed("seed", seed) + 1
    return TorchDefault(seed=seed, layout=layout), TorchDefaultBias(fan_in, seed=bias_seed)


@keras.saving.register_keras_serializable(package="keras_optreg")
class FlaxDefault(_Seeded):
    r"""Corrected eq. (3): Flax's default kernel init ``lecun_normal`` (jax ``variance_scaling(1, mode, "truncated_normal")``).

    .. math:: w_{ij} = \sigma z,\quad z \sim \mathcal N(0, 1) \text{ truncated to } (-2, 2),\quad
              \sigma = \frac{\sqrt{1/\text{fan}}}{0.87962566103423978}

    so that the std after truncation is :math:`\sqrt{1/\text{fan}}`; ``fan`` is fan_in by default.
    The lecture prints eq. (3) as :math:`\mathcal N(0, \sqrt{1/n})` with n the *output* dimension and
    redraws beyond 2 sigma, without the variance correction: ``mode="fan_out",
    variance_corrected=False`` reproduces the printed equation exactly.
    """

    def __init__(self, seed=None, mode="fan_in", variance_corrected=True, layout="keras"):
        super().__init__(seed=seed, layout=layout)
        self.mode = _validation.one_of("mode", mode, ("fan_in", "fan_out"))
        self.variance_corrected = _validation.boolean("variance_corrected", variance_corrected)

    def __call__(self, shape, dtype=None):
        dtype = _float_dtype(dtype)
        fan_in, fan_out = _init.compute_fans(shape, self.layout)
        fan = fan_in if self.mode == "fan_in" else fan_out
        sigma = _init.lecun_normal_sigma(fan, self.variance_corrected)
        z = keras.random.truncated_normal(shape, 0.0, 1.0, dtype=dtype, seed=self._call_seed())
        return _init.scale_truncated(z, keras.ops.cast(sigma, dtype))

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "variance_corrected": self.variance_corrected}
