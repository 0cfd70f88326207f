"""``keras.ops`` where an op loses precision on one backend: the same results everywhere.

Keras 3.15.1's PyTorch backend computes ``ops.maximum`` of two float64 tensors in float32 (its
``dtypes.result_type`` of two ``torch.float64`` dtypes is "float32"; measured: ``ops.maximum`` of
float64 0.1 and 0.3 has dtype torch.float32), which rounds a float64 optimizer's AMSGrad maximum and
centered RMSprop's clamp to float32. Here the maximum is taken in the first argument's dtype.
Every other backend calls ``ops.maximum`` itself (bit for bit the same op).
"""

from __future__ import annotations

import keras
from keras import ops


def maximum(x, y):
    """``ops.maximum(x, y)`` in ``x``'s dtype, NaN-propagating, on every backend."""
    if keras.backend.backend() != "torch":
        return ops.maximum(x, y)
    import torch

    x = ops.convert_to_tensor(x)
    return torch.maximum(x, ops.convert_to_tensor(y, dtype=x.dtype))
