"""Layer rows: batch normalization (eq. 20) by value; the random layers structurally.

Random layers cannot be fed the spec's randomness, so their checks are *structural* and
labelled so: the reference reads the layer's draws from its output (the dropout mask is where the
output is 0, a flip is where the image equals its mirror, a crop offset is where the window
matches) and recomputes the spec's output for those draws; a count of the draws is compared with
its law within 6 standard errors (binomial for masks and flips; mean and variance for noise).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
from hypothesis import strategies as st

from keras_optreg.conformance import engine as E
from keras_optreg.conformance import strategies as S
from keras_optreg.conformance import torch_runners as T
from keras_optreg_spec import corrected as C
from keras_optreg_spec import printed as P
from keras_optreg_spec import unnumbered as U

ULP = 2.0 ** -24
ROWS = {
    "batchnorm": "eq20 batch normalization, training output (Ioffe & Szegedy Alg. 1)",
    "batchnorm_moving": "eq20 moving statistics, unbiased variance (Ioffe & Szegedy Alg. 2, Keras momentum direction)",
    "dropout": "dropout, inverted (Srivastava et al. 2014)",
    "input_noise": "input noise x + sigma z (GBC16 sec. 7.5)",
    "random_flip": "random left-right flip",
    "random_crop": "random crop (training)",
    "random_rotation": "random rotation (bilinear, constant fill)",
}
SPEC_IDS = {"batchnorm": ("eq20",), "batchnorm_moving": ("eq20",), "dropout": ("dropout",),
            "input_noise": ("input_noise",), "random_flip": ("random_flip",), "random_crop": ("random_crop",),
            "random_rotation": ("random_rotation",)}
KINDS = tuple(ROWS)
STRUCTURAL = "structural: output given the draws read from it, plus a 6-sigma count of the draws"


def _na_libs(kind):
    for lib in ("torch", "optax"):
        if importlib.util.find_spec(lib) is None:
            yield E.na(ROWS[kind], lib, lib, "", status=E.NOT_INSTALLED)
        elif lib == "optax":
            yield E.na(ROWS[kind], lib, lib, "optax has no layers")
        elif kind not in ("batchnorm", "batchnorm_moving"):
            yield E.na(ROWS[kind], lib, lib, "torch is installed but its runner for this row is not written yet")


# ---- eq. (20): batch normalization -----------------------------------------------------------------


@st.composite
def bn_examples(draw):
    n = draw(st.integers(2, 8))
    shape = draw(st.sampled_from(((n, 3), (n, 7), (n, 4, 4, 2))))
    x = S.flush_subnormals(S.as_float32(draw(S.arrays(shape, -10.0, 10.0))), below=1e-6)
    c = shape[-1]
    gamma = S.as_float32(draw(S.arrays((c,), 0.1, 3.0))).astype(np.float32)
    beta = S.as_float32(draw(S.arrays((c,), -3.0, 3.0))).astype(np.float32)
    eps = float(np.float32(draw(S.log_uniform(-5, -1))))
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
        return np.asarray(layer(x, training=True), np.float64)
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
    """EMA from (0, 1) of the batch mean and variance; ``unbiased``: m/(m-1) sigma_B^2 (IS15 Alg. 2 step 10)."""
    def ref(example):
        batches, momentum = example
        a = 1.0 - momentum if reverse else momentum
        mean, var = np.zeros(batches.shape[-1]), np.ones(batches.shape[-1])
        for x in np.asarray(batches, np.float64):
            with np.errstate(all="ignore"):  # x_hat of a constant feature is 0/0; only mu and s2 are used
                _, mu, s2 = C.eq20_batchnorm_normalize(x, axis=-1, epsilon=0.0)
            m = x.shape[0]
            s2 = s2.ravel() * (m / (m - 1.0) if unbiased else 1.0)
            mean = a * mean + (1.0 - a) * mu.ravel()
            var = a * var + (1.0 - a) * s2
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
        return np.concatenate([np.asarray(layer.moving_mean, np.float64), np.asarray(layer.moving_variance, np.float64)])
    return run


def _bn_checks(kind):
    import keras

    from keras_optreg import layers as L

    row = ROWS[kind]
    if kind == "batchnorm":
        convs = (E.Convention("printed eq. (20): per position, no epsilon (erratum E-bn)", bn_printed),)

        def check(column, component, run, ours=False):
            return E.Check(row=row, column=column, component=component, strategy=bn_examples, run=run,
                           reference=bn_reference, tolerance=bn_tolerance, describe=describe_bn, conventions=convs,
                           ours=ours, method="values (training=True)")

        yield check("keras_optreg", "keras_optreg.layers.BatchNormalization",
                    bn_runner(lambda eps: L.BatchNormalization(epsilon=eps)), ours=True)
        yield check("keras", "keras.layers.BatchNormalization",
                    bn_runner(lambda eps: keras.layers.BatchNormalization(epsilon=eps)))
        yield check("spec (as printed)", "keras_optreg_spec.printed", bn_printed)
        if T.installed():
            yield check("torch", "torch.nn.BatchNorm1d/2d(eps) (training)", T.batchnorm_runner())
    else:
        convs = (E.Convention("biased moving variance, sigma_B^2 without m/(m-1) (Keras)",
                              moving_reference(unbiased=False)),
                 E.Convention("momentum direction reversed (PyTorch: moving = (1 - m) moving + m batch)",
                              moving_reference(reverse=True)))

        def check(column, component, run, ours=False):
            return E.Check(row=row, column=column, component=component, strategy=bn_moving_examples, run=run,
                           reference=moving_reference(), tolerance=moving_tolerance, describe=describe_moving,
                           conventions=convs, ours=ours, method="moving mean and variance after k training batches")

        yield check("keras_optreg", "keras_optreg.layers.BatchNormalization",
                    moving_runner(lambda m: L.BatchNormalization(momentum=m)), ours=True)
        yield check("keras", "keras.layers.BatchNormalization",
                    moving_runner(lambda m: keras.layers.BatchNormalization(momentum=m)))
        yield E.na(row, "spec (as printed)", "keras_optreg_spec.printed", "the lecture prints no inference statistics")
        if T.installed():
            yield check("torch", "torch.nn.BatchNorm1d/2d(momentum=m)", T.batchnorm_moving_runner())


# ---- dropout, input noise -------------------------------------------------------------------------------


@st.composite
def nonzero_inputs(draw, shapes=((64,), (16, 32), (8, 8, 8))):
    shape = draw(st.sampled_from(shapes))
    mag = draw(S.arrays(shape, 0.1, 10.0))
    sign = np.where(draw(S.arrays(shape, -1.0, 1.0)) < 0, -1.0, 1.0)
    return S.as_float32(sign * mag).astype(np.float32)


@st.composite
def dropout_examples(draw):
    return draw(nonzero_inputs()), float(np.float32(draw(st.floats(0.0, 0.9)))), draw(st.integers(0, 2**30))


def describe_rate(example):
    x, rate, seed = example
    return f"x shape {x.shape}, x={E._short(x)}, rate={rate:.3g}, seed {seed}"


def _binomial_z(count, n, p):
    sd = math.sqrt(n * p * (1.0 - p))
    return 0.0 if sd == 0.0 and count == n * p else (count - n * p) / sd if sd > 0 else math.inf


def dropout_runner(factory):
    """[y (training), y (inference), z of the kept count against Binomial(n, 1 - rate)]."""
    def run(example):
        x, rate, seed = example
        layer = factory(rate, seed)
        y = np.asarray(layer(x, training=True), np.float64).ravel()
        y_inf = np.asarray(layer(x, training=False), np.float64).ravel()
        z = _binomial_z(int(np.count_nonzero(y)), y.size, 1.0 - rate)
        return np.concatenate([y, y_inf, [z]])
    return run


def dropout_reference(form):
    def ref(example, got):
        x, rate, _ = example
        n = x.size
        keep = got[:n] != 0.0
        xs = np.asarray(x, np.float64).ravel()
        if form == "inverted":
            train, infer = U.dropout_inverted(xs, keep, rate, True), U.dropout_inverted(xs, keep, rate, False)
        else:
            train, infer = U.dropout_srivastava(xs, keep, 1 - rate, True), U.dropout_srivastava(xs, keep, 1 - rate, False)
        return np.concatenate([train, infer, [0.0]])
    return ref


def sigma_tolerance(example, expected):
    """8 ULP relative on the values; 6 standard errors on the last entry (a z-score)."""
    atol = np.zeros(len(expected))
    atol[-1] = 6.0
    rtol = np.full(len(expected), 8 * ULP)
    rtol[-1] = 0.0
    return rtol, atol


def _dropout_checks():
    import keras

    from keras_optreg import layers as L

    row = ROWS["dropout"]
    convs = (E.Convention("Srivastava et al.'s form: no 1/(1 - rate) in training, times (1 - rate) at inference",
                          dropout_reference("srivastava")),)

    def check(column, component, run, ours=False):
        return E.Check(row=row, column=column, component=component, strategy=dropout_examples, run=run,
                       reference=dropout_reference("inverted"), tolerance=sigma_tolerance, describe=describe_rate,
                       conventions=convs, ours=ours, method=STRUCTURAL, conditional=True)

    yield check("keras_optreg", "keras_optreg.layers.Dropout", dropout_runner(lambda r, s: L.Dropout(r, seed=s)),
                ours=True)
    yield check("keras", "keras.layers.Dropout", dropout_runner(lambda r, s: keras.layers.Dropout(r, seed=s)))
    yield E.na(row, "spec (as printed)", "keras_optreg_spec.printed", "unnumbered: the lecture prints no dropout equation")


@st.composite
def noise_examples(draw):
    x = draw(nonzero_inputs(((4096,), (64, 64))))
    return x, float(np.float32(draw(S.log_uniform(-2, 0)))), draw(st.integers(0, 2**30))  # Keras: stddev <= 1


def describe_noise(example):
    x, sd, seed = example
    return f"x shape {x.shape}, stddev={sd:.3g}, seed {seed}"


def noise_runner(factory):
    """[z-score of mean((y - x)/sd), z-score of its variance against 1, max |y_inference - x|]."""
    def run(example):
        x, sd, seed = example
        layer = factory(sd, seed)
        x64 = np.asarray(x, np.float64)
        z = (np.asarray(layer(x, training=True), np.float64) - x64) / sd
        n = z.size
        return np.array([z.mean() * math.sqrt(n), (z.var() - 1.0) / math.sqrt(2.0 / n),
                         float(np.max(np.abs(np.asarray(layer(x, training=False), np.float64) - x64)))])
    return run


def noise_reference(noise_std=lambda sd: sd):
    def ref(example):
        x, sd, _ = example
        n = x.size
        return np.array([0.0, ((noise_std(sd) / sd) ** 2 - 1.0) / math.sqrt(2.0 / n), 0.0])
    return ref


def noise_tolerance(example, expected):
    x, sd, _ = example
    # float32 rounding of x + sd z relative to sd: ULP |x| / sd per element, on the scale of the z-scores
    r = ULP * float(np.max(np.abs(x))) / sd * math.sqrt(x.size) * 4
    return 0.0, np.array([6.0 + r, 6.0 + r * 4, 0.0])


def _noise_checks():
    import keras

    from keras_optreg import layers as L

    row = ROWS["input_noise"]
    convs = (E.Convention("variance stddev instead of standard deviation stddev", noise_reference(math.sqrt)),)

    def check(column, component, run, ours=False):
        return E.Check(row=row, column=column, component=component, strategy=noise_examples, run=run,
                       reference=noise_reference(), tolerance=noise_tolerance, describe=describe_noise,
                       conventions=convs, ours=ours, method="statistical: 6-sigma mean and variance of (y - x)/sigma")

    yield check("keras_optreg", "keras_optreg.layers.InputNoise", noise_runner(lambda s, d: L.InputNoise(s, seed=d)),
                ours=True)
    yield check("keras", "keras.layers.GaussianNoise", noise_runner(lambda s, d: keras.layers.GaussianNoise(s, seed=d)))
    yield E.na(row, "spec (as printed)", "keras_optreg_spec.printed", "unnumbered: the lecture prints no noise equation")


# ---- images -------------------------------------------------------------------------------------------


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
        y = np.asarray(layer(x, training=True), np.float64)
        y_inf = np.asarray(layer(x, training=False), np.float64)
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


def _flip_checks():
    import keras

    from keras_optreg import layers as L

    row = ROWS["random_flip"]
    convs = (E.Convention("up-down flip instead of left-right", flip_reference(axis=1)),)

    def check(column, component, run, ours=False):
        return E.Check(row=row, column=column, component=component, strategy=image_examples, run=run,
                       reference=flip_reference(), tolerance=sigma_tolerance, describe=describe_images,
                       conventions=convs, ours=ours, method=STRUCTURAL, conditional=True)

    yield check("keras_optreg", "keras_optreg.layers.RandomFlip", flip_runner(lambda s: L.RandomFlip(seed=s)),
                ours=True)
    yield check("keras", "keras.layers.RandomFlip('horizontal')",
                flip_runner(lambda s: keras.layers.RandomFlip("horizontal", seed=s)))
    yield E.na(row, "spec (as printed)", "keras_optreg_spec.printed", "unnumbered: the lecture prints no flip equation")


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
        y = np.asarray(factory(h, w, seed)(x, training=True), np.float64)
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


def _crop_checks():
    import keras

    from keras_optreg import layers as L

    row = ROWS["random_crop"]

    def check(column, component, run, ours=False):
        return E.Check(row=row, column=column, component=component, strategy=crop_examples, run=run,
                       reference=crop_reference, tolerance=sigma_tolerance, describe=describe_crop, ours=ours,
                       method=STRUCTURAL, conditional=True, conventions=(E.Convention(
                           "one crop window per batch, not per image (Keras RandomCrop)", crop_one_window_per_batch),))

    yield check("keras_optreg", "keras_optreg.layers.RandomCrop",
                crop_runner(lambda h, w, s: L.RandomCrop(h, w, seed=s)), ours=True)
    yield check("keras", "keras.layers.RandomCrop", crop_runner(lambda h, w, s: keras.layers.RandomCrop(h, w, seed=s)))
    yield E.na(row, "spec (as printed)", "keras_optreg_spec.printed", "unnumbered: the lecture prints no crop equation")


def checks(kind):
    if kind in ("batchnorm", "batchnorm_moving"):
        yield from _bn_checks(kind)
    elif kind == "dropout":
        yield from _dropout_checks()
    elif kind == "input_noise":
        yield from _noise_checks()
    elif kind == "random_flip":
        yield from _flip_checks()
    elif kind == "random_crop":
        yield from _crop_checks()
    else:
        yield from _rotation_checks()
    yield from _na_libs(kind)


# ---- rotation: the angle is read from the output by a search ---------------------------------------


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
        return np.concatenate([np.asarray(factory(max_angle, seed)(x, training=True), np.float64).ravel(), [0.0]])
    return run


def rotation_reference(example, got):
    x, max_angle, _ = example
    x = np.asarray(x, np.float64)
    y = got[:-1].reshape(x.shape)
    angles = [_fit_angle(a, b, max_angle) for a, b in zip(x, y, strict=True)]
    return np.concatenate([U.random_rotation_bilinear(x, angles).ravel(), [0.0]])


def rotation_tolerance(example, expected):
    return 0.0, np.concatenate([np.full(len(expected) - 1, 1e-4), [0.0]])


def _rotation_checks():
    import keras

    from keras_optreg import layers as L

    row = ROWS["random_rotation"]

    def check(column, component, run, ours=False):
        return E.Check(row=row, column=column, component=component, strategy=rotation_examples, run=run,
                       reference=rotation_reference, tolerance=rotation_tolerance, describe=describe_rotation,
                       ours=ours, method="structural: output against the spec's rotation by the best-fitting angle "
                       "(1e-4 absolute on pixels in [0, 1])", conditional=True)

    yield check("keras_optreg", "keras_optreg.layers.RandomRotation",
                rotation_runner(lambda m, s: L.RandomRotation(max_angle_radians=m, fill_mode="constant", seed=s)),
                ours=True)
    yield check("keras", "keras.layers.RandomRotation(fill_mode='constant')", rotation_runner(
        lambda m, s: keras.layers.RandomRotation(m / (2 * math.pi), fill_mode="constant", interpolation="bilinear",
                                                 fill_value=0.0, seed=s)))
    yield E.na(row, "spec (as printed)", "keras_optreg_spec.printed", "unnumbered: the lecture prints no rotation equation")
