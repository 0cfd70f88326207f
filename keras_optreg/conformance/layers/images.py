"""Image rows: random flip and crop structurally (the draws read from the output), rotation by the fitted angle."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from keras_optreg.conformance import engine as E
from keras_optreg.conformance.compare import as_float64
from keras_optreg.conformance.layers.noise import STRUCTURAL, _binomial_z, sigma_tolerance
from keras_optreg_spec import unnumbered as U

IMAGE_SHAPES = ((16, 8, 8, 1), (8, 9, 7, 2), (4, 16, 16, 3))


def _random_images(draw, shapes):
    """Images of uniform pixels from a drawn NumPy seed: almost surely asymmetric, every window distinct."""
    shape = draw(st.sampled_from(shapes))
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random(shape).astype(np.float32)


@st.composite
def image_examples(draw, shapes=IMAGE_SHAPES):
    return _random_images(draw, shapes), draw(st.integers(0, 2**30))


def describe_images(example):
    return f"images shape {example[0].shape}, seed {example[1]}"


def flip_runner(factory):
    """[y (training), y (inference), z of the flipped count against Binomial(asymmetric images, 1/2)]."""
    def run(example):
        x, seed = example
        layer = factory(seed)
        y = as_float64(layer(x, training=True))
        y_inf = as_float64(layer(x, training=False))
        asym = np.array([not np.array_equal(b, b[:, ::-1]) for b in x])  # a symmetric image shows no flip
        mirrored = np.array([np.array_equal(a, b[:, ::-1]) for a, b in zip(y, x, strict=True)]) & asym
        return np.concatenate([y.ravel(), y_inf.ravel(), [_binomial_z(int(mirrored.sum()), int(asym.sum()), 0.5)]])
    return run


def flip_reference(axis=2):
    """The spec's flip for the flips read from the output; ``axis=1``: an up-down flip (a convention to name)."""
    def ref(example, got):
        x = np.asarray(example[0], np.float64)
        y = got[:x.size].reshape(x.shape)
        mirror = x[:, ::-1] if axis == 1 else x[:, :, ::-1]
        flip = np.array([np.array_equal(a, b) for a, b in zip(y, mirror, strict=True)])
        want = np.where(flip.reshape(-1, 1, 1, 1), mirror, x) if axis == 1 else U.random_flip_left_right(x, flip)
        return np.concatenate([want.ravel(), x.ravel(), [0.0 if axis == 2 else got[-1]]])
    return ref


CROP_SHAPES = ((64, 8, 8, 1), (32, 9, 7, 2), (16, 16, 16, 3))


@st.composite
def crop_examples(draw):
    """Crops at most half the image: spans >= H/2, so that 6 standard errors of the mean offset
    separate a uniform placement from a fixed corner (e.g. 64 images, span 4: the corner is 11 sigma off)."""
    images, seed = draw(image_examples(CROP_SHAPES))
    _, h, w, _ = images.shape
    return images, draw(st.integers(1, h // 2)), draw(st.integers(1, w // 2)), seed


def describe_crop(example):
    return f"images shape {example[0].shape}, crop {example[1]}x{example[2]}, seed {example[3]}"


def _windows(image, out):
    """Offsets (oh, ow) of every window of ``image`` equal to ``out``."""
    h, w = out.shape[:2]
    return [(oh, ow) for oh in range(image.shape[0] - h + 1) for ow in range(image.shape[1] - w + 1)
            if np.array_equal(image[oh:oh + h, ow:ow + w], out)]


def crop_runner(factory):
    """[y (training), the larger |z| of the mean offsets against the uniform law, over unambiguous images]."""
    def run(example):
        x, h, w, seed = example
        y = as_float64(factory(h, w, seed)(x, training=True))
        if y.shape != (x.shape[0], h, w, x.shape[3]):
            raise ValueError(f"output shape {y.shape}, expected {(x.shape[0], h, w, x.shape[3])}")
        found = [_windows(np.asarray(a, np.float64), b) for a, b in zip(x, y, strict=True)]
        offs = np.array([f[0] for f in found if len(f) == 1], np.float64).reshape(-1, 2)
        z = 0.0
        for axis, span in ((0, x.shape[1] - h), (1, x.shape[2] - w)):
            if len(offs) and span > 0:
                sd = math.sqrt(((span + 1) ** 2 - 1) / 12.0 / len(offs))
                z = max(z, abs(offs[:, axis].mean() - span / 2.0) / sd)
        return np.concatenate([y.ravel(), [z]])
    return run


def crop_reference(example, got):
    x, h, w, _ = example
    x = np.asarray(x, np.float64)
    y = got[:-1].reshape(x.shape[0], h, w, x.shape[3])
    found = [_windows(a, b) or [(0, 0)] for a, b in zip(x, y, strict=True)]  # no window: compare with (0, 0)
    want = U.random_crop(x, h, w, [f[0][0] for f in found], [f[0][1] for f in found])
    return np.concatenate([want.ravel(), [0.0]])


def crop_one_window_per_batch(example, got):
    """Keras' RandomCrop: "crop all the images in the same batch to the same cropping location"."""
    x, h, w, _ = example
    x = np.asarray(x, np.float64)
    y = got[:-1].reshape(x.shape[0], h, w, x.shape[3])
    first = (_windows(x[0], y[0]) or [(0, 0)])[0]
    want = U.random_crop(x, h, w, [first[0]] * len(x), [first[1]] * len(x))
    return np.concatenate([want.ravel(), [got[-1]]])  # one draw per batch: no per-image count to check


ROTATION_SHAPES = ((2, 8, 8, 1), (3, 9, 7, 2), (2, 16, 16, 3))


@st.composite
def rotation_examples(draw):
    images = _random_images(draw, ROTATION_SHAPES)
    return images, float(np.float32(draw(st.floats(0.01, 0.5)))), draw(st.integers(0, 2**30))


def describe_rotation(example):
    return f"images shape {example[0].shape}, max angle {example[1]:.3g} rad, seed {example[2]}"


def _fit_angle(image, out, max_angle):
    """The angle in [-max, max] whose spec rotation is closest to ``out``: a 65-point grid, then golden section."""
    def loss(a):
        return float(np.sum((U.random_rotation_bilinear(image[None], [a])[0] - out) ** 2))

    grid = np.linspace(-max_angle, max_angle, 65)
    i = int(np.argmin([loss(a) for a in grid]))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    g = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(40):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if loss(a) < loss(b):
            hi = b
        else:
            lo = a
    return 0.5 * (lo + hi)


def rotation_runner(factory):
    def run(example):
        x, max_angle, seed = example
        return np.concatenate([as_float64(factory(max_angle, seed)(x, training=True)).ravel(), [0.0]])
    return run


def rotation_reference(example, got):
    x, max_angle, _ = example
    x = np.asarray(x, np.float64)
    y = got[:-1].reshape(x.shape)
    angles = [_fit_angle(a, b, max_angle) for a, b in zip(x, y, strict=True)]
    return np.concatenate([U.random_rotation_bilinear(x, angles).ravel(), [0.0]])


def rotation_tolerance(example, expected):
    return 0.0, np.concatenate([np.full(len(expected) - 1, 1e-4), [0.0]])


ROTATION_METHOD = "structural: output against the spec's rotation by the best-fitting angle (1e-4 absolute on pixels in [0, 1])"


def spec(kind):
    """The Check fields of row ``kind`` ("random_flip", "random_crop", "random_rotation") but column, component, run."""
    if kind == "random_flip":
        return dict(strategy=image_examples, reference=flip_reference(), tolerance=sigma_tolerance,
                    describe=describe_images, method=STRUCTURAL, conditional=True,
                    conventions=(E.Convention("up-down flip instead of left-right", flip_reference(axis=1)),))
    if kind == "random_crop":
        return dict(strategy=crop_examples, reference=crop_reference, tolerance=sigma_tolerance, describe=describe_crop,
                    method=STRUCTURAL, conditional=True, conventions=(E.Convention(
                        "one crop window per batch, not per image (Keras RandomCrop)", crop_one_window_per_batch),))
    return dict(strategy=rotation_examples, reference=rotation_reference, tolerance=rotation_tolerance,
                describe=describe_rotation, method=ROTATION_METHOD, conditional=True)


def user_runner(kind, factory):
    """A layer factory called as ``factory(seed=...)`` (flip, left-right), ``factory(height, width, seed=...)``
    (crop) or ``factory(max_angle_radians, seed=...)`` (rotation: bilinear, constant fill 0)."""
    if kind == "random_flip":
        return flip_runner(lambda seed: factory(seed=seed))
    if kind == "random_crop":
        return crop_runner(lambda h, w, seed: factory(h, w, seed=seed))
    return rotation_runner(lambda angle, seed: factory(angle, seed=seed))


def columns(kind, check):
    import keras

    from keras_optreg import layers as L

    if kind == "random_flip":
        yield check("keras_optreg", "keras_optreg.layers.RandomFlip", user_runner(kind, L.RandomFlip), ours=True)
        yield check("keras", "keras.layers.RandomFlip('horizontal')",
                    user_runner(kind, lambda seed: keras.layers.RandomFlip("horizontal", seed=seed)))
        what = "flip"
    elif kind == "random_crop":
        yield check("keras_optreg", "keras_optreg.layers.RandomCrop", user_runner(kind, L.RandomCrop), ours=True)
        yield check("keras", "keras.layers.RandomCrop", user_runner(kind, keras.layers.RandomCrop))
        what = "crop"
    else:
        yield check("keras_optreg", "keras_optreg.layers.RandomRotation", user_runner(
            kind, lambda m, seed: L.RandomRotation(max_angle_radians=m, fill_mode="constant", seed=seed)), ours=True)
        yield check("keras", "keras.layers.RandomRotation(fill_mode='constant')", user_runner(
            kind, lambda m, seed: keras.layers.RandomRotation(m / (2 * math.pi), fill_mode="constant",
                                                              interpolation="bilinear", fill_value=0.0, seed=seed)))
        what = "rotation"
    yield E.na(check.row, "spec (as printed)", "keras_optreg_spec.printed",
               f"unnumbered: the lecture prints no {what} equation")
