"""PyTorch's optimizers and initializers as conformance implementations (used when ``torch`` imports).

PyTorch is not a dependency: :func:`installed` decides whether the torch column holds checks or a
``not installed`` cell. Each runner takes the same examples as the Keras runners of its family.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np


def installed():
    return importlib.util.find_spec("torch") is not None


# ---- optimizers: example (hp, theta0, grads, factors) -> (STEPS, *shape) ------------------------------


def optimizer(kind):
    """``(component name, factory(params, hp))`` for row ``kind``; ``None`` where PyTorch has no such rule."""
    import torch

    o = torch.optim
    if kind == "sgd":
        return "torch.optim.SGD", lambda p, hp: o.SGD(p, lr=hp["learning_rate"])
    if kind == "momentum":
        return "torch.optim.SGD(momentum)", lambda p, hp: o.SGD(p, lr=hp["learning_rate"], momentum=hp["momentum"])
    if kind == "nesterov":
        # PyTorch refuses nesterov=True with momentum 0, where Nesterov is plain SGD
        return ("torch.optim.SGD(momentum, nesterov=True)",
                lambda p, hp: o.SGD(p, lr=hp["learning_rate"], momentum=hp["momentum"],
                                    nesterov=hp["momentum"] > 0))
    if kind == "adagrad":
        return ("torch.optim.Adagrad", lambda p, hp: o.Adagrad(p, lr=hp["learning_rate"], eps=hp["epsilon"]))
    if kind == "adagrad_r0":
        from keras_optreg.conformance.optimizers import R0

        return (f"torch.optim.Adagrad(initial_accumulator_value={R0})",
                lambda p, hp: o.Adagrad(p, lr=hp["learning_rate"], eps=hp["epsilon"], initial_accumulator_value=R0))
    if kind in ("rmsprop", "centered_rmsprop"):
        centered = kind == "centered_rmsprop"
        return (f"torch.optim.RMSprop(alpha=rho{', centered=True' if centered else ''})",
                lambda p, hp: o.RMSprop(p, lr=hp["learning_rate"], alpha=hp["rho"], eps=hp["epsilon"],
                                        centered=centered))
    if kind == "amsgrad":
        return ("torch.optim.Adam(amsgrad=True)",
                lambda p, hp: o.Adam(p, lr=hp["learning_rate"], betas=(hp["beta_1"], hp["beta_2"]), eps=hp["epsilon"],
                                     amsgrad=True))
    if kind == "adamw":
        return ("torch.optim.AdamW(weight_decay)",
                lambda p, hp: o.AdamW(p, lr=hp["learning_rate"], betas=(hp["beta_1"], hp["beta_2"]), eps=hp["epsilon"],
                                      weight_decay=hp["weight_decay"]))
    if kind != "adam":
        raise ValueError(f"no PyTorch runner for optimizer row {kind!r}")
    return ("torch.optim.Adam", lambda p, hp: o.Adam(p, lr=hp["learning_rate"], betas=(hp["beta_1"], hp["beta_2"]),
                                                    eps=hp["epsilon"]))


def optimizer_runner(factory, learning_rates):
    """Run ``factory([param], hp)`` on a float32 tensor; the learning rate of each step is set in its group."""
    import torch

    def run(example):
        hp, theta0, grads, factors = example
        param = torch.nn.Parameter(torch.tensor(np.asarray(theta0, np.float32)))
        opt = factory([param], hp)
        out = []
        for g, lr in zip(grads, learning_rates(hp, factors), strict=True):
            for group in opt.param_groups:
                group["lr"] = lr
            param.grad = torch.tensor(np.asarray(g, np.float32))
            opt.step()
            out.append(param.detach().numpy().astype(np.float64))
        return np.stack(out)
    return run


# ---- initializers: example (shape, seed) -> weights in Keras' layout ----------------------------------


def _torch_layout(shape):
    """Keras kernels are (..., in, out); PyTorch weights are (out, in, ...): the permutation between them."""
    n = len(shape)
    return (shape[-1], shape[-2], *shape[:-2]), (*range(2, n), 1, 0)


def initializer(kind):
    """``(component name, fill(tensor, generator))`` for row ``kind``, or ``(None, reason)``."""
    import torch

    init = torch.nn.init
    if kind == "glorot":
        return "torch.nn.init.xavier_uniform_", lambda w, gen: init.xavier_uniform_(w, generator=gen)
    if kind == "torch_uniform":
        return ("torch.nn.init.kaiming_uniform_(a=sqrt(5)) (nn.Linear's default)",
                lambda w, gen: init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen))
    return None, ("PyTorch has no fan-scaled truncated normal (nn.init.trunc_normal_ takes std and bounds "
                  "directly)")


def initializer_runner(fill, stats):
    import torch

    def run(example):
        shape, seed = example
        torch_shape, back = _torch_layout(shape)
        w = torch.empty(torch_shape)
        fill(w, torch.Generator().manual_seed(seed))
        return stats(w.permute(*back).numpy())
    return run


# ---- BatchNormalization: channels-last examples, PyTorch's channels-first layers -----------------------


def _batchnorm(x_shape, **kwargs):
    import torch

    c, nd = x_shape[-1], len(x_shape)
    cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d, 5: torch.nn.BatchNorm3d}[nd]
    return cls(c, **kwargs)


def _channels_first(x):
    import torch

    t = torch.tensor(np.asarray(x, np.float32))
    return t if t.ndim == 2 else t.movedim(-1, 1)


def batchnorm_runner():
    """``torch.nn.BatchNorm{1,2}d(eps=epsilon)`` in training mode, weight and bias set to gamma and beta."""
    import torch

    def run(example):
        x, gamma, beta, eps = example
        layer = _batchnorm(x.shape, eps=eps).train()
        with torch.no_grad():
            layer.weight.copy_(torch.tensor(gamma))
            layer.bias.copy_(torch.tensor(beta))
            y = layer(_channels_first(x))
        y = y if y.ndim == 2 else y.movedim(1, -1)
        return y.numpy().astype(np.float64)
    return run


def batchnorm_moving_runner():
    """``torch.nn.BatchNorm1d(momentum=m)`` given the row's momentum m as is (what a port from Keras does)."""
    import torch

    def run(example):
        batches, momentum = example
        layer = _batchnorm(batches.shape[1:], momentum=momentum).train()
        with torch.no_grad():
            for x in batches:
                layer(_channels_first(x))
        return np.concatenate([layer.running_mean.numpy(), layer.running_var.numpy()]).astype(np.float64)
    return run
