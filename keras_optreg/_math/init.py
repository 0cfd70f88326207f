r"""Initialization math (lecture eqs. 1-3): fans, bounds, and transforms of passed-in draws.

No Variables and no randomness here: the callers draw ``u ~ U[0, 1)`` or ``z ~ N(0, 1)``
truncated to (-2, 2) and these functions map the draws onto the lecture's distributions.
"""

from __future__ import annotations

import math

from keras import ops

TRUNCNORM_STD_2 = 0.87962566103423978
"""Std of N(0, 1) truncated to (-2, 2); jax.nn.initializers' constant (flax ``lecun_normal``)."""

LAYOUTS = ("keras", "torch")


def compute_fans(shape, layout="keras", input_axes=None, output_axes=None):
    r"""``(fan_in, fan_out)`` of a kernel ``shape`` (a tuple of ints).

    With ``input_axes`` and ``output_axes`` (both, as Keras 3.15's ``VarianceScaling`` takes them;
    ``EinsumDense`` passes them for its kernel): fan_in is the product of the sizes on the input
    axes and fan_out the product on the output axes, whatever the layout. Otherwise
    ``layout="keras"``: Dense ``(in, out)``, Conv ``(*spatial, in, out)``; ``layout="torch"``:
    ``(out, in, *spatial)``. With receptive field :math:`r = \prod \text{spatial}`,
    fan_in = in * r and fan_out = out * r. A 1-D shape ``(n,)`` has fan_in = fan_out = n and a
    scalar shape ``()`` fan_in = fan_out = 1 (as Keras' ``compute_fans``). A fan is 0 only when the
    shape has a zero dimension, i.e. no elements. The axes must already be normalized (in
    ``[0, len(shape))``, no repeats).
    """
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        return math.prod(shape[a] for a in input_axes), math.prod(shape[a] for a in output_axes)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if layout == "keras":
        r = math.prod(shape[:-2])
        return shape[-2] * r, shape[-1] * r
    if layout == "torch":
        r = math.prod(shape[2:])
        return shape[1] * r, shape[0] * r
    raise ValueError(f"Argument `layout` must be one of {LAYOUTS}. Received: layout={layout!r}")


def glorot_uniform_bound(fan_in, fan_out):
    r"""Eq. (1) [GB10, eq. 16]: :math:`b = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}`."""
    return math.sqrt(6.0 / (fan_in + fan_out))


def torch_linear_bound(fan_in):
    r"""Eq. (2) as printed: :math:`b = 1/\sqrt{\text{fan\_in}}` (PyTorch nn.Linear.reset_parameters)."""
    return 1.0 / math.sqrt(fan_in)


def lecun_normal_sigma(fan, variance_corrected=True):
    r"""Eq. (3): the untruncated sigma of the truncated normal.

    ``variance_corrected=True`` (flax ``lecun_normal``, jax ``variance_scaling``):
    :math:`\sigma = \sqrt{1/\text{fan}} / 0.87962566103423978`, so the std after truncation at
    :math:`2\sigma` is :math:`\sqrt{1/\text{fan}}`. ``False``: :math:`\sigma = \sqrt{1/\text{fan}}` as printed.
    """
    sigma = math.sqrt(1.0 / fan)
    return sigma / TRUNCNORM_STD_2 if variance_corrected else sigma


def uniform_from_unit(u, bound):
    r"""Map draws ``u`` in [0, 1) onto :math:`\mathcal U(-b, b)`: :math:`b (2u - 1)`."""
    return ops.multiply(ops.subtract(ops.multiply(u, 2.0), 1.0), bound)


def scale_truncated(z, sigma):
    r"""Map standard draws ``z`` truncated to (-2, 2) onto :math:`\sigma z`."""
    return ops.multiply(z, sigma)
