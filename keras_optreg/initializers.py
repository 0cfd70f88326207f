r"""Initializers of the lecture's section "Initialization" (eqs. 1-3).

Fans follow Keras' kernel layout (Dense ``(in, out)``, Conv ``(*spatial, in, out)``,
fan_in = in * prod(spatial)); ``layout="torch"`` reads PyTorch's ``(out, in, *spatial)``.
``input_axes`` / ``output_axes`` name the axes whose sizes multiply into fan_in / fan_out, as
Keras 3.15's ``VarianceScaling`` takes them; they override ``layout``. :class:`GlorotUniform`,
:class:`TorchDefault` and :class:`FlaxDefault` are ``keras.initializers.VarianceScaling``
instances, so ``keras.layers.EinsumDense`` (and ``MultiHeadAttention``, whose projections are
EinsumDense layers) passes its kernel's axes to them when they have none, as it does for Keras'
own (``keras/src/layers/core/einsum_dense.py``, ``EinsumDense.build``).

Seeds, as Keras' initializers take them: an ``int`` (in the int64 range, as TensorFlow's
stateless random ops take it) draws the same values on every call; a
``keras.random.SeedGenerator`` advances on every call, so each call draws new values; both as
Keras. ``seed=None`` draws a fresh seed on every call from Python's ``random`` module, the source
``keras.utils.set_random_seed`` seeds, so after ``set_random_seed(s)`` a program draws the same
values in every process (Keras' own source of default seeds:
``keras.src.random.seed_generator.make_default_seed``). Deviation from Keras, deliberate: an
unseeded Keras initializer draws its one seed at construction and repeats its values on every call,
so one unseeded instance passed to several layers of the same shape gives them identical kernels;
here each call (each layer) draws independently. The configured seed (``None`` included) survives
serialization; a ``SeedGenerator`` is serialized as Keras serializes it (its initial seed: a loaded
initializer restarts the generator's sequence). The fresh seed of ``seed=None`` is a Python int
drawn when the initializer is called, so inside one traced ``tf.function`` an unseeded instance is
fixed at trace time (layers build eagerly, where every call differs). Under ``jit_compile=True`` a
fixed seed reproduces, but XLA's stateless RNG gives other values than the eager kernel for the
same seed.

Dtypes: float16, bfloat16, float32, float64 (integer, bool and other dtypes raise ValueError: Keras'
initializers return integer noise for an integer dtype). float64 is honoured where the backend has it:
TensorFlow, PyTorch, and JAX with ``jax_enable_x64``; on JAX without it a float64 request returns
float32 values (JAX truncates, with its UserWarning), exactly as Keras' own initializers do there. float16 and bfloat16 draws are made and
scaled in float32 and rounded once to the requested dtype. Shapes: a tuple, list or
``tf.TensorShape`` of non-negative ints; a shape with a zero dimension gives an empty tensor and a
scalar shape ``()`` has fans (1, 1), as in Keras.

Stricter than Keras, where Keras accepts an input and then computes something else or fails later:
``input_axes`` without ``output_axes`` (or the reverse) raises ValueError (Keras ignores a lone
one), as do repeated, shared or out-of-range axes (Keras counts a repeated axis twice, raises
IndexError for one out of range), an integer dtype (above), a seed beyond int64 (Keras fails at the
first call) and a shape with an unknown dimension.
"""

from __future__ import annotations

import math
import numbers
import operator
import random as _pyrandom

import keras

from keras_optreg import _validation
from keras_optreg._math import init as _init

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_SEED_LIMITS = (-(2 ** 63), 2 ** 63 - 1)  # int64: TensorFlow's stateless seeds (keras random_seed_dtype)


def _float_dtype(dtype):
    """``(dtype, draw_dtype)``: the requested floating dtype and the one the draw is computed in."""
    name = keras.backend.standardize_dtype(dtype or keras.backend.floatx())
    if name not in FLOAT_DTYPES:
        raise ValueError(f"Argument `dtype` must be one of {FLOAT_DTYPES}. Received: dtype={dtype!r}")
    return name, ("float64" if name == "float64" else "float32")


def _static_shape(shape):
    """``shape`` as a tuple of non-negative Python ints; ValueError for unknown or negative dimensions."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    if dims is not None:
        try:
            dims = tuple(operator.index(d) for d in dims)
        except TypeError:
            dims = None
    if dims is None or any(d < 0 for d in dims):
        raise ValueError("Argument `shape` must be a static shape of non-negative ints (the fans are computed "
                         f"from it). Received: shape={shape!r}")
    return dims


def _seed_arg(seed):
    """None, an int in the int64 range, or a ``keras.random.SeedGenerator`` (a serialized one is rebuilt)."""
    if isinstance(seed, dict):
        seed = keras.saving.deserialize_keras_object(seed)
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError("Argument `seed` must be an int, a keras.random.SeedGenerator or None. "
                        f"Received: seed={seed!r}")
    return _validation.int_in_range("seed", seed, *_SEED_LIMITS, " (int64)")


def _call_seed(seed):
    """The seed of one call: the configured one, or a fresh draw from Python's ``random`` for None. An int
    seed is taken modulo 2**32 on JAX, whose Keras seeds are uint32 (an int64 one would overflow there)."""
    if seed is None:
        return _pyrandom.randint(1, 10 ** 9)
    if isinstance(seed, numbers.Integral) and keras.backend.backend() == "jax":
        return int(seed) % 2 ** 32
    return seed


def _axes_arg(name, axes):
    """None, or a list of Python ints from a list or tuple of ints."""
    if axes is None:
        return None
    if not isinstance(axes, (list, tuple)) or any(isinstance(a, bool) or not isinstance(a, numbers.Integral)
                                                  for a in axes):
        raise TypeError(f"Argument `{name}` must be a list of ints or None. Received: {name}={axes!r}")
    return [int(a) for a in axes]


def _normalized_axes(name, axes, rank):
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(f"Argument `{name}` must hold axes in [{-rank}, {rank}) for a shape of rank {rank}. "
                             f"Received: {name}={axes!r}")
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise ValueError(f"Argument `{name}` must not repeat an axis. Received: {name}={axes!r}")
    return out


def _draw(kind, shape, dtype, scale, seed):
    """``scale`` times a draw ``u ~ U[0, 1)`` mapped to ``U(-1, 1)`` (kind "uniform") or ``z ~ N(0, 1)``
    truncated to (-2, 2) (kind "truncated"), computed in the draw dtype and cast once to ``dtype``."""
    dtype, draw_dtype = _float_dtype(dtype)
    if math.prod(shape) == 0:
        return keras.ops.zeros(shape, dtype)
    scale = keras.ops.cast(scale, draw_dtype)
    if kind == "uniform":
        u = keras.random.uniform(shape, 0.0, 1.0, dtype=draw_dtype, seed=_call_seed(seed))
        w = _init.uniform_from_unit(u, scale)
    else:
        z = keras.random.truncated_normal(shape, 0.0, 1.0, dtype=draw_dtype, seed=_call_seed(seed))
        w = _init.scale_truncated(z, scale)
    return w if dtype == draw_dtype else keras.ops.cast(w, dtype)


class _FanScaled(keras.initializers.VarianceScaling):
    """The shared part of the fan-scaled initializers: seed, layout, axes and the fans of a shape.

    A ``keras.initializers.VarianceScaling`` subclass so that ``EinsumDense`` passes its kernel's
    axes (it tests ``isinstance(kernel_initializer, VarianceScaling)``); ``scale``, ``mode`` and
    ``distribution`` hold the equivalent VarianceScaling parameters. ``VarianceScaling.__init__``
    is not called: it would draw a default seed at construction and fix an unseeded instance's
    values (see the module docstring); the attributes it sets are set here.
    """

    def __init__(self, *, scale, mode, distribution, seed=None, layout="keras", input_axes=None, output_axes=None):
        self.scale, self.mode, self.distribution = scale, mode, distribution
        self.seed = _seed_arg(seed)
        self.layout = _validation.one_of("layout", layout, _init.LAYOUTS)
        self.input_axes = _axes_arg("input_axes", input_axes)
        self.output_axes = _axes_arg("output_axes", output_axes)
        if (self.input_axes is None) != (self.output_axes is None):
            raise ValueError("Arguments `input_axes` and `output_axes` must be given together (Keras ignores one "
                             f"alone). Received: input_axes={input_axes!r}, output_axes={output_axes!r}")

    def _fans(self, shape):
        if self.input_axes is None:
            return _init.compute_fans(shape, self.layout)
        ins = _normalized_axes("input_axes", self.input_axes, len(shape))
        outs = _normalized_axes("output_axes", self.output_axes, len(shape))
        if set(ins) & set(outs):
            raise ValueError("Arguments `input_axes` and `output_axes` must not share an axis. Received: "
                             f"input_axes={self.input_axes!r}, output_axes={self.output_axes!r}")
        return _init.compute_fans(shape, input_axes=ins, output_axes=outs)

    def get_config(self):
        return {"seed": keras.saving.serialize_keras_object(self.seed), "layout": self.layout,
                "input_axes": self.input_axes, "output_axes": self.output_axes}


_COMMON_ARGS = """
    Args:
        seed: an int (the same values on every call), a ``keras.random.SeedGenerator`` (new values
            on every call) or None (a fresh seed from Python's ``random`` on every call; see the
            module docstring for how this differs from Keras).
        layout: ``"keras"`` (kernel ``(*spatial, in, out)``) or ``"torch"`` (``(out, in, *spatial)``).
        input_axes: list of ints, the axes whose sizes multiply into fan_in (with ``output_axes``;
            overrides ``layout``). ``EinsumDense`` fills both in for its kernel when they are None.
        output_axes: list of ints, the axes whose sizes multiply into fan_out (with ``input_axes``).
"""


@keras.saving.register_keras_serializable(package="keras_optreg")
class GlorotUniform(_FanScaled):
    __doc__ = r"""Eq. (1): Glorot / Xavier uniform [Glorot & Bengio 2010, eq. 16].

    .. math:: w_{ij} \sim \mathcal{U}\left(-\sqrt{\frac{6}{\text{fan\_in}+\text{fan\_out}}},
              \sqrt{\frac{6}{\text{fan\_in}+\text{fan\_out}}}\right)

    Keras twin: ``keras.initializers.GlorotUniform`` (= ``VarianceScaling(1, "fan_avg", "uniform")``),
    same law; adds ``layout``; seeds as in the module docstring.
    """ + _COMMON_ARGS

    def __init__(self, seed=None, layout="keras", input_axes=None, output_axes=None):
        super().__init__(scale=1.0, mode="fan_avg", distribution="uniform", seed=seed, layout=layout,
                         input_axes=input_axes, output_axes=output_axes)

    def __call__(self, shape, dtype=None):
        shape = _static_shape(shape)
        fan_in, fan_out = self._fans(shape)
        bound = _init.glorot_uniform_bound(fan_in, fan_out) if fan_in + fan_out else 0.0
        return _draw("uniform", shape, dtype, bound, self.seed)


@keras.saving.register_keras_serializable(package="keras_optreg")
class TorchDefault(_FanScaled):
    __doc__ = r"""Eq. (2) as printed: PyTorch's ``nn.Linear`` / ``nn.ConvNd`` default weight initializer.

    .. math:: w_{ij} \sim \mathcal{U}\left(-\frac{1}{\sqrt{\text{fan\_in}}}, \frac{1}{\sqrt{\text{fan\_in}}}\right)

    Source: PyTorch ``nn.Linear.reset_parameters`` (``kaiming_uniform_(w, a=sqrt(5))``).
    The lecture calls this "He-uniform"; it is not: He-uniform [He et al. 2015] is
    :math:`\mathcal{U}(\pm\sqrt{6/\text{fan\_in}})` (variance 2/fan_in, Keras ``HeUniform``),
    while this law has variance 1/(3 fan_in). The bias initializer that PyTorch pairs with it is
    :class:`TorchDefaultBias` (same bound, needs the layer's fan_in); see :func:`torch_default_pair`.
    Keras twin: ``keras.initializers.VarianceScaling(1/3, "fan_in", "uniform")``, same law; the
    signature has no ``scale``/``mode``/``distribution`` (they are fixed) and adds ``layout``.
    """ + _COMMON_ARGS

    def __init__(self, seed=None, layout="keras", input_axes=None, output_axes=None):
        super().__init__(scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed, layout=layout,
                         input_axes=input_axes, output_axes=output_axes)

    def __call__(self, shape, dtype=None):
        shape = _static_shape(shape)
        fan_in, _ = self._fans(shape)
        return _draw("uniform", shape, dtype, _init.torch_linear_bound(fan_in) if fan_in else 0.0, self.seed)


@keras.saving.register_keras_serializable(package="keras_optreg")
class FlaxDefault(_FanScaled):
    __doc__ = r"""Corrected eq. (3): Flax's default kernel init ``lecun_normal`` (jax ``variance_scaling(1, mode, "truncated_normal")``).

    .. math:: w_{ij} = \sigma z,\quad z \sim \mathcal N(0, 1) \text{ truncated to } (-2, 2),\quad
              \sigma = \frac{\sqrt{1/\text{fan}}}{0.87962566103423978}

    so that the std after truncation is :math:`\sqrt{1/\text{fan}}`; ``fan`` is fan_in by default.
    The lecture prints eq. (3) as :math:`\mathcal N(0, \sqrt{1/n})` with n the *output* dimension and
    redraws beyond 2 sigma, without the variance correction: ``mode="fan_out",
    variance_corrected=False`` reproduces the printed equation exactly (erratum E-init3).
    Keras twin: ``keras.initializers.LecunNormal`` = ``VarianceScaling(1, "fan_in", "truncated_normal")``,
    the same law by default; adds ``mode`` (fan_in or fan_out), ``variance_corrected`` and ``layout``.
    """ + _COMMON_ARGS + r"""        mode: ``"fan_in"`` (Flax, corrected) or ``"fan_out"`` (the lecture's n).
        variance_corrected: divide sigma by 0.8796 so the truncated law's std is sqrt(1/fan) (True,
            Flax); False is the printed eq. (3).
    """

    def __init__(self, seed=None, mode="fan_in", variance_corrected=True, layout="keras", input_axes=None,
                 output_axes=None):
        variance_corrected = _validation.boolean("variance_corrected", variance_corrected)
        # VarianceScaling's scale is the variance after truncation: 0.8796^2 / fan for the printed form
        super().__init__(scale=1.0 if variance_corrected else _init.TRUNCNORM_STD_2 ** 2,
                         mode=_validation.one_of("mode", mode, ("fan_in", "fan_out")),
                         distribution="truncated_normal", seed=seed, layout=layout, input_axes=input_axes,
                         output_axes=output_axes)
        self.variance_corrected = variance_corrected

    def __call__(self, shape, dtype=None):
        shape = _static_shape(shape)
        fan_in, fan_out = self._fans(shape)
        fan = fan_in if self.mode == "fan_in" else fan_out
        sigma = _init.lecun_normal_sigma(fan, self.variance_corrected) if fan else 0.0
        return _draw("truncated", shape, dtype, sigma, self.seed)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "variance_corrected": self.variance_corrected}


@keras.saving.register_keras_serializable(package="keras_optreg")
class TorchDefaultBias(keras.initializers.Initializer):
    r"""PyTorch's default bias: :math:`b_j \sim \mathcal U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})`.

    Eq. (2)'s companion (PyTorch ``nn.Linear.reset_parameters``). The bias shape carries no fan,
    so the layer's ``fan_in`` is an explicit argument; hence no ``layout`` and no axes. No Keras twin.

    Args:
        fan_in: the layer's fan_in, a positive int.
        seed: as for :class:`TorchDefault`.
    """

    def __init__(self, fan_in, seed=None):
        self.fan_in = _validation.positive_int("fan_in", fan_in)
        self.seed = _seed_arg(seed)

    def __call__(self, shape, dtype=None):
        return _draw("uniform", _static_shape(shape), dtype, _init.torch_linear_bound(self.fan_in), self.seed)

    def get_config(self):
        return {"fan_in": self.fan_in, "seed": keras.saving.serialize_keras_object(self.seed)}


def torch_default_pair(kernel_shape, seed=None, layout="keras"):
    """``(kernel_initializer, bias_initializer)`` as PyTorch initializes a layer with this kernel.

    Pass them as ``Dense(..., kernel_initializer=k, bias_initializer=b)``. With an int seed the
    bias uses ``seed + 1`` so kernel and bias draws differ; a ``SeedGenerator`` is shared (it
    advances between the two draws); None leaves both unseeded.
    """
    layout = _validation.one_of("layout", layout, _init.LAYOUTS)
    fan_in, _ = _init.compute_fans(_static_shape(kernel_shape), layout)
    seed = _seed_arg(seed)
    bias_seed = seed + 1 if isinstance(seed, int) else seed
    return TorchDefault(seed=seed, layout=layout), TorchDefaultBias(fan_in, seed=bias_seed)
