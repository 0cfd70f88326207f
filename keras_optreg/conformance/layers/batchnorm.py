"""Batch normalization rows (eq. 20): the training output and the moving statistics, by value."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from keras_optreg.conformance import engine as E
from keras_optreg.conformance import strategies as S
from keras_optreg.conformance import torch_runners as T
from keras_optreg.conformance.compare import as_float64
from keras_optreg_spec import corrected as C
from keras_optreg_spec import printed as P

ULP = 2.0 ** -24


@st.composite
def bn_examples(draw):
    n = draw(st.integers(2, 8))
    shape = draw(st.sampled_from(((n, 3), (n, 7), (n, 4, 4, 2))))
    x = S.flush_subnormals(S.as_float32(draw(S.arrays(shape, -10.0, 10.0))), below=1e-6)
    c = shape[-1]
    gamma = S.as_float32(draw(S.arrays((c,), 0.1, 3.0))).astype(np.float32)
    beta = S.as_float32(draw(S.arrays((c,), -3.0, 3.0))).astype(np.float32)
    eps = float(np.float32(draw(S.log_uniform_from_low(-5, -1))))
    return x, gamma, beta, eps


def describe_bn(example):
    x, gamma, beta, eps = example
    return f"x shape {x.shape}, x={E._short(x)}, gamma={E._short(gamma)}, beta={E._short(beta)}, epsilon={eps:.3g}"


def bn_reference(example):
    x, gamma, beta, eps = example
    x_hat, _, _ = C.eq20_batchnorm_normalize(x, axis=-1, epsilon=eps)
    return C.eq20_batchnorm_affine(x_hat, gamma, beta)


def bn_printed(example):
    x, gamma, beta, _ = example
    with np.errstate(all="ignore"):
        return P.eq20_batchnorm_affine(P.eq20_batchnorm_normalize(x), gamma, beta)


def bn_tolerance(example, expected):
    """Float32 normalisation: ~ULP |x|^2 / (var + eps) relative in the scale, times gamma.

    The |x|^2 term admits a one-pass variance E[x^2] - E[x]^2 (Keras' ``ops.moments`` on TensorFlow),
    whose float32 cancellation is real rounding, not a convention. Inputs below 1e-6 are flushed
    to 0 (their squares would be subnormal).
    """
    x, gamma, beta, eps = example
    axes = tuple(range(x.ndim - 1))
    x64 = np.asarray(x, np.float64)
    var = x64.var(axis=axes) + eps
    big = np.max(np.abs(x64), axis=axes)
    atol = 64 * ULP * (np.abs(gamma) * (big ** 2 / var + big / np.sqrt(var) + 1.0) + np.abs(beta))
    return 0.0, np.broadcast_to(atol, np.shape(expected))


def bn_runner(factory):
    def run(example):
        x, gamma, beta, eps = example
        layer = factory(eps)
        layer.build(x.shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
        return as_float64(layer(x, training=True))
    return run


@st.composite
def bn_moving_examples(draw):
    n, c = draw(st.integers(2, 8)), draw(st.sampled_from((1, 3)))
    k = draw(st.integers(1, 4))
    batches = S.flush_subnormals(S.as_float32(draw(S.arrays((k, n, c), -10.0, 10.0))), below=1e-6)
    return batches, float(np.float32(draw(st.floats(0.0, 0.99))))


def describe_moving(example):
    batches, momentum = example
    return f"{batches.shape[0]} batches of shape {batches.shape[1:]}, x_1={E._short(batches[0])}, momentum={momentum:.3g}"


def moving_reference(unbiased=True, reverse=False):
    """The moving statistics from (0, 1) after each batch: ``C.batchnorm_moving_update`` (IS15 Alg. 2, Keras'
    momentum); the conventions: ``unbiased=False`` the biased sigma_B^2 enters (the update's variance increment
    times (m-1)/m), ``reverse`` PyTorch's momentum direction (momentum weighs the batch)."""
    def ref(example):
        batches, momentum = example
        a = 1.0 - momentum if reverse else momentum
        mean, var = np.zeros(batches.shape[-1]), np.ones(batches.shape[-1])
        for x in np.asarray(batches, np.float64):
            new_mean, new_var = C.batchnorm_moving_update(mean, var, x, momentum=a)
            if not unbiased:
                m = x.shape[0]
                new_var = a * var + (new_var - a * var) * (m - 1.0) / m
            mean, var = new_mean, new_var
        return np.concatenate([mean, var])
    return ref


def moving_tolerance(example, expected):
    return 64 * ULP * example[0].shape[0], 64 * ULP * float(np.max(np.abs(example[0]))) ** 2


def moving_runner(factory):
    def run(example):
        batches, momentum = example
        layer = factory(momentum)
        layer.build(batches.shape[1:])
        for x in batches:
            layer(x, training=True)
        return np.concatenate([as_float64(layer.moving_mean), as_float64(layer.moving_variance)])
    return run


def spec(kind):
    """The Check fields of row ``kind`` ("batchnorm" or "batchnorm_moving") but its column, component and run."""
    if kind == "batchnorm":
        return dict(strategy=bn_examples, reference=bn_reference, tolerance=bn_tolerance, describe=describe_bn,
                    conventions=(E.Convention("printed eq. (20): per position, no epsilon (erratum E-bn)", bn_printed),),
                    method="values (training=True)")
    convs = (E.Convention("biased moving variance, sigma_B^2 without m/(m-1) (Keras)", moving_reference(unbiased=False)),
             E.Convention("momentum direction reversed (PyTorch: moving = (1 - m) moving + m batch)",
                          moving_reference(reverse=True)))
    return dict(strategy=bn_moving_examples, reference=moving_reference(), tolerance=moving_tolerance,
                describe=describe_moving, conventions=convs, method="moving mean and variance after k training batches")


def user_runner(kind, factory):
    """A layer class or factory called as ``factory(epsilon=...)`` ("batchnorm") or ``factory(momentum=...)``."""
    if kind == "batchnorm":
        return bn_runner(lambda eps: factory(epsilon=eps))
    return moving_runner(lambda m: factory(momentum=m))


def columns(kind, check):
    import keras

    from keras_optreg import layers as L

    yield check("keras_optreg", "keras_optreg.layers.BatchNormalization", user_runner(kind, L.BatchNormalization),
                ours=True)
    yield check("keras", "keras.layers.BatchNormalization", user_runner(kind, keras.layers.BatchNormalization))
    if kind == "batchnorm":
        yield check("spec (as printed)", "keras_optreg_spec.printed", bn_printed)
        if T.installed():
            yield check("torch", "torch.nn.BatchNorm1d/2d(eps) (training)", T.batchnorm_runner())
    else:
        yield E.na(check.row, "spec (as printed)", "keras_optreg_spec.printed", "the lecture prints no inference statistics")
        if T.installed():
            yield check("torch", "torch.nn.BatchNorm1d/2d(momentum=m)", T.batchnorm_moving_runner())
