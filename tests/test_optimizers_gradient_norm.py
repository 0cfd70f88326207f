"""``optimizer.gradient_norm``: the global norm of the gradient each optimizer step applied (issue 14).

The value is compared with the float64 norm of the gradient the test handed over. Tolerance: the
float32 sum of n squares has a relative error of at most n u (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2002, eq. 4.4; u = 2^-24), the squares and the root add 2u, and the float32
inputs are exact: ``rtol = (n + 2) u``.

Every backend, the step in each of the backend's modes (``tests.backend.MODES``/``stepper``: eager,
graph and XLA on TensorFlow, eager and ``jax.jit`` of ``stateless_apply`` on JAX, eager on PyTorch);
``tf.train.Checkpoint`` and ``IndexedSlices`` are TensorFlow's (marked).
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from keras import ops

import keras_optreg
from keras_optreg._math import optim as M
from tests.backend import JAX, MODES, TENSORFLOW, TORCH, jit, stepper, value_and_grad

U = 2.0 ** -24
# keras_optreg._fused.MIN_SIZE: the fused kernel's threshold (TensorFlow only; elsewhere every variable is op by op)
MIN_SIZE = 4096
if TENSORFLOW:
    from keras_optreg import _fused

    assert _fused.MIN_SIZE == MIN_SIZE
MAKERS = {
    "sgd": lambda **k: keras_optreg.SGD(0.05, **k),
    "momentum": lambda **k: keras_optreg.SGD(0.05, momentum=0.9, **k),
    "nesterov": lambda **k: keras_optreg.SGD(0.05, momentum=0.9, nesterov=True, **k),
    "adagrad": lambda **k: keras_optreg.Adagrad(0.1, **k),
    "rmsprop": lambda **k: keras_optreg.RMSprop(0.01, **k),
    "rmsprop_momentum": lambda **k: keras_optreg.RMSprop(0.01, momentum=0.9, **k),
    "adam": lambda **k: keras_optreg.Adam(0.01, **k),
}
RNG = np.random.default_rng(14)
# one variable below _fused.MIN_SIZE (op by op), one above (the fused kernel)
SHAPES = [(3, 5), (64, 80)]
assert np.prod(SHAPES[0]) < MIN_SIZE <= np.prod(SHAPES[1])
STEPS = [[RNG.normal(size=s).astype(np.float32) * 10.0 ** k for s in SHAPES] for k in (-2, 0, 1, 3)]


def norm64(grads):
    return float(np.sqrt(sum(np.sum(np.asarray(g, np.float64) ** 2) for g in grads)))


def assert_norm(opt, grads):
    n = sum(np.size(g) for g in grads)
    np.testing.assert_allclose(float(numpy(opt.gradient_norm)), norm64(grads), rtol=(n + 2) * U)


def numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def _tensors(grads):
    return [ops.convert_to_tensor(g) for g in grads]


COMPILED = MODES[-1]  # XLA on TensorFlow, jax.jit on JAX, eager on PyTorch


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(MAKERS))
def test_gradient_norm_is_the_global_norm_of_each_step(kind, mode):
    opt = MAKERS[kind]()
    variables = [keras.Variable(np.zeros(s, np.float32)) for s in SHAPES]
    assert np.isnan(numpy(opt.gradient_norm))  # before the first step
    step = stepper(opt, variables, mode)
    for grads in STEPS:
        step(_tensors(grads))
        assert_norm(opt, grads)
    assert opt.gradient_norm.dtype == "float32" and opt.gradient_norm.shape == ()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("options", [{}, {"clipnorm": 1.0}, {"nonfinite": "skip"}], ids=["plain", "clipnorm", "skip"])
def test_without_tracking_the_norm_stays_nan_and_the_step_is_the_same(options, mode):
    """``track_gradient_norm=False``: no step writes ``gradient_norm`` (it stays NaN) and the variables
    follow the tracked optimizer's trajectory bit for bit (the norm never enters the update)."""
    runs = []
    for track in (True, False):
        opt = MAKERS["adam"](track_gradient_norm=track, **options)
        variables = [keras.Variable(np.zeros(s, np.float32)) for s in SHAPES]
        step = stepper(opt, variables, mode)
        for grads in STEPS:
            step(_tensors(grads))
        runs.append([numpy(v) for v in variables])
        assert np.isnan(numpy(opt.gradient_norm)) != track
        assert opt.get_config()["track_gradient_norm"] is track
        assert type(opt).from_config(opt.get_config()).track_gradient_norm is track
    for tracked, untracked in zip(*runs, strict=True):
        np.testing.assert_array_equal(tracked, untracked)


def _layout(variables):
    return [(v.path.split("/", 1)[1], tuple(v.shape), keras.backend.standardize_dtype(v.dtype)) for v in variables]


@pytest.mark.parametrize("track", [True, False])
def test_gradient_norm_is_read_only_and_outside_the_saved_layout(track):
    """``variables`` is the Keras twin's layout; on JAX (tracked) ``gradient_norm`` comes last in it, because Keras'
    JAX trainer steps ``variables`` only; on every backend ``save_own_variables`` writes the twin's layout."""
    opt = keras_optreg.Adam(track_gradient_norm=track)
    twin = keras.optimizers.Adam()
    variables = [keras.Variable(np.zeros(s, np.float32)) for s in SHAPES]
    opt.build(variables)
    twin.build(variables)
    extra = [("gradient_norm", (), "float32")] if JAX and track else []
    assert _layout(opt.variables) == _layout(twin.variables) + extra
    assert (opt.variables[-1] is opt.gradient_norm) == bool(extra)
    with pytest.raises(AttributeError):
        opt.gradient_norm = 0.0
    opt.apply(_tensors(STEPS[0]), variables)
    assert np.isfinite(numpy(opt.gradient_norm)) == track
    ours, theirs = {}, {}
    opt.save_own_variables(ours)
    twin.save_own_variables(theirs)
    assert sorted(ours) == sorted(theirs)
    assert [np.shape(ours[k]) for k in sorted(ours)] == [np.shape(theirs[k]) for k in sorted(theirs)]


def test_under_a_loss_scale_optimizer_only_jax_files_hold_the_norm():
    """The documented deviation: Keras' LossScaleOptimizer saves its inner optimizer's ``variables`` in its own
    store, so on JAX (where the norm is among them) that store holds one entry more than the twin's."""
    variables = [keras.Variable(np.zeros(s, np.float32)) for s in SHAPES]
    stores = []
    for inner in (keras_optreg.SGD(0.1), keras.optimizers.SGD(0.1)):
        outer = keras.optimizers.LossScaleOptimizer(inner)
        outer.build(variables)
        stores.append({})
        outer.save_own_variables(stores[-1])
    assert len(stores[0]) == len(stores[1]) + (1 if JAX else 0)


@pytest.mark.tensorflow_only("tf.train.Checkpoint is TensorFlow's")
def test_gradient_norm_is_not_in_a_tensorflow_checkpoint(tmp_path):
    import tensorflow as tf

    opt = keras_optreg.Adam()
    variables = [keras.Variable(np.zeros(s, np.float32)) for s in SHAPES]
    opt.apply([tf.constant(g) for g in STEPS[0]], variables)
    assert np.isfinite(opt.gradient_norm.numpy())
    path = tf.train.Checkpoint(optimizer=opt).write(str(tmp_path / "ckpt"))
    assert not [name for name, _ in tf.train.list_variables(path) if "gradient_norm" in name or "_gradient" in name]


def test_gradient_norm_is_not_saved_in_keras_files(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(keras_optreg.Adam(0.01), loss="mse")
    x, y = RNG.normal(size=(8, 4)).astype(np.float32), RNG.normal(size=(8, 2)).astype(np.float32)
    model.fit(x, y, verbose=0)
    assert np.isfinite(numpy(model.optimizer.gradient_norm))  # written by fit (on JAX: its stateless, jitted step)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    loaded.optimizer.build(loaded.trainable_variables)
    assert np.isnan(numpy(loaded.optimizer.gradient_norm))  # a fresh optimizer: no step applied yet
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        if b is not model.optimizer.gradient_norm:
            np.testing.assert_array_equal(numpy(a), numpy(b), err_msg=b.path)  # every saved variable restored
    # the file's optimizer state is the Keras twin's layout: a Keras Adam loads it without a warning
    twin = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    twin.compile(keras.optimizers.Adam(0.01), loss="mse")
    twin.optimizer.build(twin.trainable_variables)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin.load_weights(tmp_path / "m.keras")
    np.testing.assert_array_equal(numpy(twin.optimizer.iterations), numpy(model.optimizer.iterations))


@pytest.mark.parametrize("clip", [{"clipnorm": 0.1}, {"global_clipnorm": 0.1}, {"clipvalue": 0.01}])
@pytest.mark.parametrize("mode", sorted({"eager", COMPILED}))
def test_gradient_norm_is_taken_before_clipping(clip, mode):
    opt = keras_optreg.SGD(1.0, **clip)
    variables = [keras.Variable(np.zeros(s, np.float32)) for s in SHAPES]
    step = stepper(opt, variables, mode)
    grads = STEPS[1]
    step(_tensors(grads))
    assert_norm(opt, grads)
    # the step itself was clipped: the variables moved by far less than the gradient
    moved = norm64([numpy(v) for v in variables])
    assert moved < 0.2 * norm64(grads)


@pytest.mark.parametrize("mode", MODES)
def test_gradient_norm_under_accumulation_is_the_averaged_gradient_of_the_real_step(mode):
    opt = keras_optreg.Adam(0.01, gradient_accumulation_steps=2)
    variables = [keras.Variable(np.zeros(s, np.float32)) for s in SHAPES]
    step = stepper(opt, variables, mode)
    step(_tensors(STEPS[0]))
    assert np.isnan(numpy(opt.gradient_norm))  # a micro-batch: no optimizer step yet
    step(_tensors(STEPS[1]))
    mean = [(a + b) / 2 for a, b in zip(STEPS[0], STEPS[1], strict=True)]
    # (a + b) / 2 in float32 rounds each element once more (u): 2 more u in the norm
    np.testing.assert_allclose(float(numpy(opt.gradient_norm)), norm64(mean),
                               rtol=(sum(np.size(g) for g in mean) + 4) * U)
    before = float(numpy(opt.gradient_norm))
    step(_tensors(STEPS[3]))
    assert float(numpy(opt.gradient_norm)) == before  # the next micro-batch leaves it unchanged


def test_gradient_norm_is_unscaled_under_loss_scaling():
    """On JAX through ``stateless_apply`` (Keras' JAX fit's path): Keras' LossScaleOptimizer's stateful ``apply``
    leaks tracers out of its ``ops.cond`` there (jax.errors.UnexpectedTracerError, Keras' own, any inner optimizer)."""
    grads = STEPS[1]
    for opt, scale in ((keras_optreg.Adam(0.01, loss_scale_factor=1024.0), 1024.0), (None, 4096.0)):
        inner = keras_optreg.Adam(0.01)
        outer = opt if opt is not None else keras.optimizers.LossScaleOptimizer(inner, initial_scale=scale)
        reporter = opt if opt is not None else inner
        variables = [keras.Variable(np.zeros(s, np.float32)) for s in SHAPES]
        step = stepper(outer, variables, "jit" if JAX else "eager")
        step(_tensors([g * np.float32(scale) for g in grads]))
        # scaling by a power of two is exact: the unscaled norm is that of the given gradients
        assert_norm(reporter, grads)


@pytest.mark.tensorflow_only("IndexedSlices: an Embedding's sparse gradient is TensorFlow's")
def test_gradient_norm_of_a_sparse_gradient_with_repeated_rows_is_the_dense_norm():
    import tensorflow as tf

    for rows in (6, 1000):  # a table below and one above _fused.MIN_SIZE (16 columns)
        table = keras.Variable(np.zeros((rows, 16), np.float32))
        values = RNG.normal(size=(4, 16)).astype(np.float32)
        sparse = tf.IndexedSlices(tf.constant(values), tf.constant([3, 5, 5, 1]), tf.constant([rows, 16]))
        opt = keras_optreg.SGD(0.1)
        opt.apply([sparse], [table])
        dense = tf.convert_to_tensor(sparse).numpy()
        assert norm64(dense) != pytest.approx(norm64(values))  # row 5 twice: the norms of the two forms differ
        assert_norm(opt, [dense])


def test_gradient_norm_of_float16_gradients_does_not_overflow():
    """300^2 overflows float16 (max 65504): the squares are summed in float32."""
    var = keras.Variable(np.zeros(4, np.float16))
    opt = keras_optreg.SGD(1e-3)
    opt.apply([ops.convert_to_tensor(np.array([300.0, -300.0, 1.0, 0.0], np.float16))], [var])
    np.testing.assert_allclose(float(numpy(opt.gradient_norm)), np.sqrt(2 * 300.0**2 + 1.0), rtol=4 * U)


@pytest.mark.parametrize("nonfinite", ["propagate", "skip"])
def test_gradient_norm_of_a_nonfinite_gradient_is_nan(nonfinite):
    opt = keras_optreg.Adam(nonfinite=nonfinite)
    var = keras.Variable(np.zeros(3, np.float32))
    opt.apply(_tensors([np.array([1.0, np.nan, 0.0], np.float32)]), [var])
    assert np.isnan(numpy(opt.gradient_norm))
    opt.apply(_tensors([np.array([3.0, 4.0, 0.0], np.float32)]), [var])
    assert float(numpy(opt.gradient_norm)) == 5.0


@pytest.mark.parametrize("jit_compile", [False, not TORCH])  # True on PyTorch would be torch.compile (Dynamo)
def test_gradient_norm_in_model_fit_is_the_last_batch_gradient(jit_compile):
    """Issue 16: under JAX's fit (stateless_apply, jitted or not) the norm stayed NaN: it was outside `variables`."""
    x = RNG.normal(size=(16, 4)).astype(np.float32)
    y = RNG.normal(size=(16, 1)).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras_optreg.SGD(0.01), loss="mse", jit_compile=jit_compile)
    model.fit(x[:8], y[:8], batch_size=8, verbose=0)
    # the gradient of the next (last) batch, at the weights it starts from
    _, grads = value_and_grad(lambda: keras.losses.MeanSquaredError()(y[8:], model(x[8:])), model.trainable_variables)
    grads = [numpy(g) for g in grads]
    model.fit(x[8:], y[8:], batch_size=8, verbose=0)
    # the model's forward pass in fit and here differ by float32 rounding of the matmul (4 terms): 8 u per element
    np.testing.assert_allclose(float(numpy(model.optimizer.gradient_norm)), norm64(grads), rtol=16 * U * 5)


@pytest.mark.parametrize("n", [1, 4095, 8192, 8193, 16 * 8192 + 5, 300_007])
@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_sum_of_squares_equals_the_float64_sum_within_its_derived_bound(n, mode):
    """``_math.optim.sum_of_squares`` (blocked pairwise summation): every term is positive, so each
    element's path of additions bounds the relative error (Higham 2002 sec. 4.2): L levels of 16 terms,
    a last sum of at most SUM_STOP + 16 L terms, plus the square: (16 L + SUM_STOP + 16 L + 1) u."""
    g = RNG.normal(size=n).astype(np.float32)
    f = M.sum_of_squares if mode == "eager" else jit(M.sum_of_squares)
    levels = int(np.ceil(np.log(max(n / M.SUM_STOP, 1.0)) / np.log(M.SUM_BLOCK)))
    bound = (32 * levels + M.SUM_STOP + 1) * U
    want = float(np.sum(g.astype(np.float64) ** 2))
    np.testing.assert_allclose(float(numpy(f(ops.convert_to_tensor(g)))), want, rtol=bound)
    # the blocked form sums every element once: dropping the leftover of a level would miss this
    g[-1] = 1e3
    np.testing.assert_allclose(float(numpy(f(ops.convert_to_tensor(g)))), float(np.sum(g.astype(np.float64) ** 2)),
                               rtol=bound)


@pytest.mark.parametrize("sizes", [[3, 1], [5, 8192, 8193], [16 * 8192 + 5, 17, 300_007], [7] * 40 + [2 ** 17]],
                         ids=["small", "at-the-stop", "leftovers", "many"])
@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_pooled_sum_of_squares_equals_the_float64_sum_within_its_derived_bound(sizes, mode):
    """``_math.optim.pooled_sum_of_squares``: a tensor above SUM_STOP passes one level of 16 terms (its column sums)
    before the blocked sum of the concatenation (N terms: L levels, a last sum of at most SUM_STOP + 16 L), so the
    relative error is at most (16 + 32 L + SUM_STOP + 1) u (Higham 2002 sec. 4.2, every term positive)."""
    tensors = [RNG.normal(size=n).astype(np.float32) for n in sizes]
    tensors[-1] = tensors[-1].reshape(-1, 1) if sizes[-1] % 2 else tensors[-1].reshape(2, -1)  # any shape: flattened
    f = M.pooled_sum_of_squares if mode == "eager" else jit(M.pooled_sum_of_squares)
    pooled = sum(n if n <= M.SUM_STOP else n // M.SUM_BLOCK + n % M.SUM_BLOCK for n in sizes)
    levels = int(np.ceil(np.log(max(pooled / M.SUM_STOP, 1.0)) / np.log(M.SUM_BLOCK)))
    bound = (M.SUM_BLOCK + 32 * levels + M.SUM_STOP + 1) * U

    def want(ts):
        return float(sum(np.sum(t.astype(np.float64) ** 2) for t in ts))

    np.testing.assert_allclose(float(numpy(f([ops.convert_to_tensor(t) for t in tensors]))), want(tensors), rtol=bound)
    # every element counted once: a large tensor's first column or leftover (a small one's first or last element)
    # left out would miss this
    for t in tensors:
        t.reshape(-1)[[0, -1]] = 1e3
    np.testing.assert_allclose(float(numpy(f([ops.convert_to_tensor(t) for t in tensors]))), want(tensors), rtol=bound)


@pytest.mark.tensorflow_only("the fused kernels' norm under an outer XLA step (keras_optreg._fused) is TensorFlow's")
@pytest.mark.parametrize("nonfinite", ["propagate", "skip"])
def test_under_xla_float32_gradients_are_summed_together_and_others_in_their_kernels(nonfinite):
    """Issue 17: under ``jit_compile=True`` the float32 gradients (of static sizes) have their squares summed in one
    ``_math.optim.pooled_sum_of_squares`` (``_fused.norm_pool``): small ones whole, a large one by its column sums
    and leftover; a float64 one keeps its own sum. Each gradient is scaled to a comparable share of the norm, so
    one left out or counted twice moves the norm by far more than the tolerance."""
    import tensorflow as tf

    shapes = [((3, 5), "float32"), ((64, 80), "float32"), ((5,), "float16"), ((2, 3), "float64"),
              ((16 * M.SUM_STOP + 3,), "float32")]  # a large one, with a leftover after its 16 rows
    variables = [keras.Variable(np.zeros(s, dt)) for s, dt in shapes]
    rng = np.random.default_rng(17)
    grads = [(lambda g: (g / np.linalg.norm(g)).astype(dt))(rng.normal(size=s)) for s, dt in shapes]  # norm 1 each
    opt = keras_optreg.Adam(0.01, nonfinite=nonfinite)
    step = tf.function(lambda gs: opt.apply(gs, variables), jit_compile=True)
    step(_tensors(grads))
    assert_norm(opt, grads)
    shares = np.array([np.sum(np.asarray(g, np.float64) ** 2) for g in grads]) / norm64(grads) ** 2
    assert shares.min() > 0.05  # each share moves the norm by > 2.5 %, against a tolerance of (n + 2) u < 1 %

    pools = []
    probe = tf.function(lambda gs: pools.append(_fused.norm_pool(gs)) or gs[0], jit_compile=True)
    as_computed = [tf.cast(g, tf.float32) if g.dtype == np.float16 else tf.constant(g) for g in grads]
    probe(as_computed)
    assert pools == [frozenset({0, 1, 2, 4})]  # float32 (a float16 gradient is computed in float32), any size
    assert _fused.norm_pool(as_computed) == frozenset()  # outside XLA each kernel sums its own gradient's squares
