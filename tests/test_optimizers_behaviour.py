"""keras_optreg optimizers: compile modes, serialization, Keras integration, bad input, nonfinite."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import keras_optreg
from tests import backend as B

ALL = [
    ("sgd", lambda **k: keras_optreg.SGD(0.05, **k)),
    ("momentum", lambda **k: keras_optreg.SGD(0.05, momentum=0.9, **k)),
    ("nesterov", lambda **k: keras_optreg.SGD(0.05, momentum=0.9, nesterov=True, **k)),
    ("adagrad", lambda **k: keras_optreg.Adagrad(0.1, **k)),
    ("rmsprop", lambda **k: keras_optreg.RMSprop(0.01, **k)),
    ("rmsprop_momentum", lambda **k: keras_optreg.RMSprop(0.01, momentum=0.9, **k)),
    ("adam", lambda **k: keras_optreg.Adam(0.01, **k)),
]
IDS = [a for a, _ in ALL]
MAKERS = [m for _, m in ALL]
RNG = np.random.default_rng(0)
X0 = [RNG.normal(size=(3, 5)).astype(np.float32), RNG.normal(size=(7,)).astype(np.float32)]
GRADS = [[RNG.normal(size=x.shape).astype(np.float32) for x in X0] for _ in range(8)]


def _run(opt, mode, steps=8, lr_change=None):
    vs = [keras.Variable(x) for x in X0]
    opt.build(vs)
    fn = B.stepper(opt, vs, mode)
    for k in range(steps):
        if lr_change is not None and k == steps // 2:
            opt.learning_rate.assign(lr_change)
        fn([keras.ops.convert_to_tensor(g) for g in GRADS[k]])
    return [v.numpy() for v in vs], fn


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_eager_equals_every_compiled_mode_with_one_trace(make):
    """Eager equals tf.function and XLA on TensorFlow, jax.jit on JAX; a changed learning rate retraces nothing."""
    eager, _ = _run(make(), "eager", lr_change=0.02)
    for mode in B.MODES[1:]:
        got, fn = _run(make(), mode, lr_change=0.02)
        if B.TENSORFLOW:
            assert fn.experimental_get_tracing_count() == 1, mode
        for a, b in zip(got, eager, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=mode)
    # the learning-rate change took effect: without it the result differs
    unchanged, _ = _run(make(), "eager")
    assert not np.allclose(unchanged[0], eager[0])


def _rosenbrock(p):
    return (1.0 - p[0]) ** 2 + 100.0 * (p[1] - p[0] ** 2) ** 2


def _quadratic(p):
    return 0.5 * keras.ops.sum(keras.ops.convert_to_tensor([1.0, 10.0]) * p * p)


@pytest.mark.parametrize("make", [
    lambda: keras_optreg.SGD(1e-3, momentum=0.9), lambda: keras_optreg.SGD(1e-3, momentum=0.9, nesterov=True),
    lambda: keras_optreg.Adagrad(0.1), lambda: keras_optreg.RMSprop(1e-3), lambda: keras_optreg.Adam(1e-2),
    lambda: keras_optreg.SGD(1e-3), lambda: keras_optreg.RMSprop(1e-3, momentum=0.9)],
    ids=["momentum", "nesterov", "adagrad", "rmsprop", "adam", "sgd", "rmsprop_momentum"])
@pytest.mark.parametrize("f", [_quadratic, _rosenbrock], ids=["quadratic", "rosenbrock"])
def test_quadratic_and_rosenbrock_descend(make, f):
    opt = make()
    p = keras.Variable(np.array([-1.2, 1.0], np.float32))
    step = B.trainer(lambda: f(p), opt, [p])

    first = float(step())
    for _ in range(300):
        last = float(step())
    assert last < 0.5 * first, (first, last)


def _model(opt):
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    m.compile(opt, loss="mse")
    return m


DATA = (RNG.normal(size=(32, 4)).astype(np.float32), RNG.normal(size=(32, 1)).astype(np.float32))


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_keras_save_load_mid_training_continues_bit_for_bit(make, tmp_path):
    x, y = DATA
    a = _model(make())
    a.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    a.save(tmp_path / "m.keras")
    b = keras.saving.load_model(tmp_path / "m.keras")
    assert type(b.optimizer) is type(a.optimizer)
    a.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    b.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    for va, vb in zip(a.optimizer.variables, b.optimizer.variables, strict=True):
        np.testing.assert_array_equal(va.numpy(), vb.numpy())


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_get_config_round_trip_behaves_the_same(make):
    opt = make(nonfinite="skip")
    clone = type(opt).from_config(opt.get_config())
    assert clone.get_config() == opt.get_config()
    a, _ = _run(opt, "eager", steps=3)
    b, _ = _run(clone, "eager", steps=3)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    with pytest.raises(ValueError, match="not recognized"):
        type(opt).from_config({**opt.get_config(), "bogus": 1})


def test_schedule_inside_optimizer_serializes():
    opt = keras_optreg.Adam(keras_optreg.LinearDecay(0.1, 0.01, 10))
    clone = keras_optreg.Adam.from_config(opt.get_config())
    assert isinstance(clone._learning_rate, keras_optreg.LinearDecay)
    assert clone._learning_rate.get_config() == opt._learning_rate.get_config()
    assert clone.get_config() == opt.get_config()


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_model_fit_jit_compile_on_a_small_mlp(make):
    x, y = DATA
    m = _model(make())
    m.compile(m.optimizer, loss="mse", jit_compile=B.JIT_COMPILE)
    h = m.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert int(m.optimizer.iterations.numpy()) == 20


def test_custom_training_loop_with_clipnorm():
    """The backend's own autodiff (tf.GradientTape, jax.value_and_grad, torch.autograd), eagerly."""
    x, y = (keras.ops.convert_to_tensor(a) for a in DATA)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    opt = keras_optreg.Adam(0.05, global_clipnorm=1.0)
    losses = []
    for _ in range(30):
        loss, grads = B.value_and_grad(lambda: keras.ops.mean((m(x) - y) ** 2), m.trainable_variables)
        opt.apply(grads, m.trainable_variables)
        losses.append(float(keras.ops.convert_to_numpy(loss)))
    assert losses[-1] < losses[0]


BAD = [
    (lambda: keras_optreg.SGD(learning_rate=math.nan), ValueError,
     "`learning_rate` must be finite and >= 0. Received: learning_rate=nan"),
    (lambda: keras_optreg.SGD(learning_rate=-1.0), ValueError,
     "`learning_rate` must be finite and >= 0. Received: learning_rate=-1.0"),
    (lambda: keras_optreg.Adam(learning_rate=math.inf), ValueError, "Received: learning_rate=inf"),
    (lambda: keras_optreg.SGD(momentum=1.0), ValueError, "`momentum` must be in [0, 1). Received: momentum=1.0"),
    (lambda: keras_optreg.SGD(momentum=math.nan), ValueError, "Received: momentum=nan"),
    (lambda: keras_optreg.SGD(nesterov="yes"), TypeError, "`nesterov` must be a bool"),
    (lambda: keras_optreg.Adam(beta_1=-0.1), ValueError, "`beta_1` must be in [0, 1). Received: beta_1=-0.1"),
    (lambda: keras_optreg.Adam(beta_2=math.nan), ValueError, "`beta_2` must be in [0, 1). Received: beta_2=nan"),
    (lambda: keras_optreg.Adam(epsilon=0.0), ValueError, "`epsilon` must be finite and > 0. Received: epsilon=0.0"),
    (lambda: keras_optreg.Adagrad(epsilon=math.inf), ValueError, "Received: epsilon=inf"),
    (lambda: keras_optreg.RMSprop(rho=1.0), ValueError, "`rho` must be in [0, 1). Received: rho=1.0"),
    (lambda: keras_optreg.RMSprop(epsilon=-1e-6), ValueError, "Received: epsilon=-1e-06"),
    (lambda: keras_optreg.RMSprop(momentum=math.nan), ValueError, "must be in [0, 1). Received: momentum=nan"),
    (lambda: keras_optreg.RMSprop(momentum=1.0), ValueError, "`momentum` must be in [0, 1). Received: momentum=1.0"),
    (lambda: keras_optreg.RMSprop(momentum=-0.1), ValueError, "`momentum` must be in [0, 1). Received: momentum=-0.1"),
    (lambda: keras_optreg.functional.rmsprop(momentum=math.nan), ValueError, "Received: momentum=nan"),
    (lambda: keras_optreg.functional.rmsprop(momentum=1.0), ValueError, "Received: momentum=1.0"),
    (lambda: keras_optreg.functional.rmsprop(momentum=-0.1), ValueError, "Received: momentum=-0.1"),
    (lambda: keras_optreg.Adam(nonfinite="ignore"), ValueError, "`nonfinite` must be one of"),
    (lambda: keras_optreg.LinearDecay(decay_steps=0), ValueError, "`decay_steps` must be > 0. Received: decay_steps=0"),
    (lambda: keras_optreg.LinearDecay(decay_steps=2.5), TypeError, "`decay_steps` must be an integer"),
    (lambda: keras_optreg.LinearDecay(final_learning_rate=-0.1), ValueError, "Received: final_learning_rate=-0.1"),
    (lambda: keras_optreg.LinearDecay(initial_learning_rate=math.nan), ValueError,
     "Received: initial_learning_rate=nan"),
    (lambda: keras_optreg.functional.adam(beta_1=1.0), ValueError, "Received: beta_1=1.0"),
    (lambda: keras_optreg.functional.sgd(learning_rate=math.nan), ValueError, "Received: learning_rate=nan"),
]


@pytest.mark.parametrize("make, error, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments_fail_at_construction(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_integer_variables_are_rejected_at_build(make):
    with pytest.raises(TypeError, match="floating-point variables only.*int32"):
        make().build([keras.Variable(np.zeros(3, np.int32), trainable=not B.TORCH)])  # torch: no int grads


def _nonfinite_state(opt, vs):
    return [v.numpy().copy() for v in vs] + [v.numpy().copy() for v in opt.variables if "iteration" not in v.path]


def _nonfinite_setup(opt, mode):
    """One finite step in ``mode``; returns the variables, ``fn``, the state before the bad step and the
    bad gradients (a NaN in the second gradient, an Inf in the first)."""
    vs = [keras.Variable(x) for x in X0]
    opt.build(vs)
    fn = B.stepper(opt, vs, mode)
    fn([keras.ops.convert_to_tensor(g) for g in GRADS[0]])
    bad = [g.copy() for g in GRADS[1]]
    bad[1][3] = np.nan
    bad[0][0, 0] = np.inf
    return vs, fn, _nonfinite_state(opt, vs), [keras.ops.convert_to_tensor(g) for g in bad]


def _nonfinite_run(opt, mode):
    vs, fn, before, bad = _nonfinite_setup(opt, mode)
    fn(bad)
    return vs, before, _nonfinite_state(opt, vs), fn


@pytest.mark.parametrize("mode", B.MODES)
@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_nonfinite_skip_leaves_everything_bit_for_bit_and_counts(make, mode):
    opt = make(nonfinite="skip")
    vs, before, after, fn = _nonfinite_run(opt, mode)
    assert int(opt.skipped_steps.numpy()) == 1
    assert int(opt.iterations.numpy()) == 2
    assert keras.backend.standardize_dtype(opt.skipped_steps.dtype) == keras.backend.standardize_dtype(
        opt.iterations.dtype)
    for b, a in zip(before, after, strict=True):
        if b.shape == ():  # skipped_steps itself
            continue
        np.testing.assert_array_equal(a, b)
    fn([keras.ops.convert_to_tensor(g) for g in GRADS[2]])  # a finite step afterwards moves again
    assert int(opt.skipped_steps.numpy()) == 1
    assert not np.array_equal(vs[0].numpy(), before[0])


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_nonfinite_propagate_lets_nan_through(make):
    vs, _, after, _ = _nonfinite_run(make(), "eager")
    assert np.isnan(after[1][3]) or np.isinf(after[1][3])


RAISE_MODES = [m for m in B.MODES if m != "xla"]  # TensorFlow's XLA refuses the step instead (test below)


@pytest.mark.parametrize("mode", RAISE_MODES)
@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_nonfinite_raise(make, mode):
    """Every backend raises, naming the variable (inside jax.jit too), and no variable or slot changes."""
    opt = make(nonfinite="raise")
    vs, fn, before, bad = _nonfinite_setup(opt, mode)
    with pytest.raises(B.nonfinite_errors(), match="nonfinite gradient for"):
        fn(bad)
    for b, a in zip(before, _nonfinite_state(opt, vs), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.tensorflow_only("XLA on TensorFlow drops tf.debugging.check_numerics, so nonfinite='raise' refuses a "
                             "jit_compile=True step there (JAX raises from inside jax.jit instead)")
@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_nonfinite_raise_refuses_an_xla_step_instead_of_propagating(make):
    """XLA drops tf.debugging.check_numerics: a jit_compile=True step with nonfinite="raise" is refused
    when traced (ValueError naming the fix) and the weights are untouched; without XLA it raises."""
    import tensorflow as tf

    opt = make(nonfinite="raise")
    v = keras.Variable(np.zeros(3, np.float32))
    opt.build([v])
    with pytest.raises(ValueError, match="cannot raise inside an XLA-compiled step.*jit_compile=False"):
        tf.function(lambda g: opt.apply([g], [v]), jit_compile=True)(tf.constant([np.nan, 1.0, 1.0], tf.float32))
    np.testing.assert_array_equal(v.numpy(), 0.0)
    x, y = DATA
    m = _model(make(nonfinite="raise"))
    m.compile(m.optimizer, loss="mse", jit_compile=True)
    with pytest.raises(ValueError, match="cannot raise inside an XLA-compiled step"):
        m.fit(x, y, batch_size=8, epochs=1, verbose=0)


@pytest.mark.skipif(B.TENSORFLOW, reason="TensorFlow's XLA step is refused at trace time (test above)")
def test_nonfinite_raise_inside_model_fit_jit_compile():
    """model.fit(jit_compile=True) -- jax.jit on JAX, eager steps on PyTorch -- stops at the NaN step (the last
    batch). On PyTorch the model keeps the weights of the steps before it: those of the same model fitted on the
    first 3 batches. On JAX Keras' trainer donates the state to its compiled step (donate_argnums), so the
    failed step's inputs are deleted: measured, the weights are gone ("Array has been deleted"), README says so;
    a jax.jit step that does not donate (tests.backend.stepper) keeps them (test_nonfinite_raise)."""
    x, y = DATA
    y = y.copy()
    y[-1] = np.nan  # the last batch's loss and gradients are NaN
    reference = _model(keras_optreg.Adam(0.01))
    reference.compile(reference.optimizer, loss="mse", jit_compile=B.JAX)
    reference.fit(x[:24], y[:24], batch_size=8, epochs=1, shuffle=False, verbose=0)
    m = _model(keras_optreg.Adam(0.01, nonfinite="raise"))
    m.compile(m.optimizer, loss="mse", jit_compile=B.JAX)
    with pytest.raises(B.nonfinite_errors(), match="nonfinite gradient for"):
        m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    if B.JAX:
        return
    for b, a in zip(reference.get_weights(), m.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_keras_machinery_keeps_working_ema_accumulation_loss_scale():
    x, y = DATA
    for opt in (keras_optreg.Adam(0.01, use_ema=True), keras_optreg.SGD(0.05, momentum=0.9,
                                                                          gradient_accumulation_steps=2),
                keras.optimizers.LossScaleOptimizer(keras_optreg.RMSprop(0.01))):
        m = _model(opt)
        h = m.fit(x, y, batch_size=8, epochs=4, shuffle=False, verbose=0)
        assert h.history["loss"][-1] < h.history["loss"][0], type(opt).__name__


def test_gradient_accumulation_matches_one_step_on_the_mean():
    """With gradient_accumulation_steps=2, two applies equal one step on the mean gradient."""
    acc = keras_optreg.Adam(0.01, gradient_accumulation_steps=2)
    one = keras_optreg.Adam(0.01)
    a, b = keras.Variable(X0[1]), keras.Variable(X0[1])
    acc.apply([GRADS[0][1]], [a])
    acc.apply([GRADS[1][1]], [a])
    one.apply([(GRADS[0][1] + GRADS[1][1]) / 2], [b])
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    assert not np.allclose(a.numpy(), X0[1])


BIG = [RNG.normal(size=(64, 80)).astype(np.float32), RNG.normal(size=(40,)).astype(np.float32)]
BIG_GRADS = [[RNG.normal(size=x.shape).astype(np.float32) for x in BIG] for _ in range(8)]


def _run_big(make, strategy=None, nan_at=None):
    """8 graph-mode steps on one variable above _fused.MIN_SIZE (fused) and one below (op by op)."""
    import tensorflow as tf

    from keras_optreg import _fused

    assert BIG[0].size >= _fused.MIN_SIZE > BIG[1].size
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        opt, vs = make(), [keras.Variable(x) for x in BIG]
        opt.build(vs)
    step = tf.function(lambda grads: strategy.run(lambda g: opt.apply(g, vs), args=(grads,)))
    for k in range(8):
        grads = [tf.constant(g) for g in BIG_GRADS[k]]
        if k == nan_at:
            grads[0] = tf.fill(grads[0].shape, np.nan)
        step(grads)
    if nan_at is not None:
        assert int(opt.skipped_steps.numpy()) == 1
    return [v.numpy() for v in vs]


@pytest.mark.tensorflow_only("the per-variable fused XLA kernel (keras_optreg/_fused.py) is TensorFlow's; JAX "
                             "and PyTorch run the same rule in keras.ops inside their own compiled step")
@pytest.mark.parametrize("make", MAKERS, ids=IDS)
@pytest.mark.parametrize("nonfinite", ["propagate", "skip"])
def test_fused_kernel_equals_the_op_by_op_path_under_a_strategy(make, nonfinite):
    """Outside a strategy each large variable's step is one XLA kernel (keras_optreg._fused); under a
    tf.distribute strategy the same rule runs op by op. Both paths give the same trajectory
    (float32: XLA may round a sqrt or a division differently from TensorFlow's kernels, ~1 ulp a step)."""
    nan_at = 3 if nonfinite == "skip" else None
    fused = _run_big(lambda: make(nonfinite=nonfinite), nan_at=nan_at)
    import tensorflow as tf

    op_by_op = _run_big(lambda: make(nonfinite=nonfinite), tf.distribute.OneDeviceStrategy("/cpu:0"), nan_at=nan_at)
    for a, b in zip(fused, op_by_op, strict=True):
        # 8 steps, each at most ~2 ulp of the largest |theta| apart; a different rule is off by ~lr
        atol = 8 * 2 * np.finfo(np.float32).eps * max(np.abs(a).max(), np.abs(b).max())
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)
    assert np.abs(fused[0] - BIG[0]).max() > 1e3 * atol  # the steps moved the variable well beyond it


@pytest.mark.tensorflow_only("the per-variable fused XLA kernel (keras_optreg/_fused.py) is TensorFlow's; JAX "
                             "and PyTorch run the same rule in keras.ops inside their own compiled step")
def test_fused_kernel_traces_once_per_rule_and_shape_not_per_variable():
    import tensorflow as tf

    from keras_optreg import _fused

    def _graph_apply(opt, grads, vs):
        tf.function(lambda: opt.apply(grads, vs))()

    shape = (4, 1111)  # a shape no other test uses, above _fused.MIN_SIZE
    grads = [tf.ones(shape)] * 3
    # RMSprop: no TensorFlow training kernel computes its rule (_fused._eigen_kernel), so it takes the XLA kernel
    keras_optreg.RMSprop().apply(grads, [keras.Variable(tf.zeros(shape)) for _ in range(3)])
    traced = _fused._kernel.experimental_get_tracing_count()
    for _ in range(2):  # new optimizers, new variables of the same shape: no new trace
        opt = keras_optreg.RMSprop(learning_rate=0.5)
        vs = [keras.Variable(tf.zeros(shape)) for _ in range(3)]
        opt.apply(grads, vs)
        _graph_apply(opt, grads, vs)
    assert _fused._kernel.experimental_get_tracing_count() == traced
    keras_optreg.RMSprop().apply([tf.ones((5, 1111))], [keras.Variable(tf.zeros((5, 1111)))])
    assert _fused._kernel.experimental_get_tracing_count() == traced + 1
    keras_optreg.RMSprop().apply([tf.ones((5, 11))], [keras.Variable(tf.zeros((5, 11)))])  # below MIN_SIZE
    assert _fused._kernel.experimental_get_tracing_count() == traced + 1


def _op_types(fn):
    return {op.type for op in fn.get_concrete_function().graph.get_operations()}


def _xla_kernel_calls(fn):
    """How many calls of the XLA kernel (_fused._kernel: a function call op of its traced function) the graph of
    ``fn`` holds (not counting the skip mode's other compiled functions, sums_of_squares and all_finite)."""
    graph = fn.get_concrete_function().graph
    return sum(1 for op in graph.get_operations() if op.type in ("StatefulPartitionedCall", "PartitionedCall")
               and op.get_attr("f").name.startswith("__inference__kernel_"))


@pytest.mark.tensorflow_only("TensorFlow's training kernels (tf.raw_ops.ResourceApplyAdam, ...) and its graphs")
@pytest.mark.parametrize("make, kernel", [
    (lambda **k: keras_optreg.Adam(0.01, **k), "ResourceApplyAdam"),
    (lambda **k: keras_optreg.SGD(0.05, momentum=0.9, **k), "ResourceApplyKerasMomentum"),
    (lambda **k: keras_optreg.SGD(0.05, momentum=0.9, nesterov=True, **k), "ResourceApplyKerasMomentum"),
    (lambda **k: keras_optreg.SGD(0.05, **k), "ResourceApplyGradientDescent")],
    ids=["adam", "momentum", "nesterov", "sgd"])
def test_training_kernel_where_tensorflow_has_one_for_the_rule(make, kernel):
    """In graph mode a variable whose rule TensorFlow's own training kernel computes takes that kernel, at any
    size (no XLA compile: the first-step tax of issue 17); with nonfinite="skip" (a step may keep every value)
    and for a float16 variable (float32 slots) a large variable takes the rule's XLA kernel; an outer
    jit_compile=True step keeps the XLA kernel. Values: test_fused_kernel_equals_the_op_by_op_path_*."""
    import tensorflow as tf

    def graph(opt, shape=(64, 80), dtype="float32", jit_compile=False):
        vs = [keras.Variable(tf.zeros(shape, dtype))]
        opt.build(vs)
        return tf.function(lambda: opt.apply([tf.ones(shape, dtype)], vs), jit_compile=jit_compile)

    for shape in [(64, 80), (3, 5)]:  # above and below _fused.MIN_SIZE
        fn = graph(make(), shape)
        assert kernel in _op_types(fn) and _xla_kernel_calls(fn) == 0, shape
    for fn in (graph(make(nonfinite="skip")), graph(make(), dtype="float16"), graph(make(), jit_compile=True)):
        assert kernel not in _op_types(fn)
        assert _xla_kernel_calls(fn) >= 1


@pytest.mark.tensorflow_only("sparse gradients (tf.IndexedSlices) are TensorFlow's: Embedding's gradient is dense "
                             "on JAX and PyTorch")
@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_fused_kernel_takes_sparse_gradients_as_their_dense_form(make):
    """An Embedding's gradient is tf.IndexedSlices; on a variable above _fused.MIN_SIZE it must step
    exactly as its dense equivalent (rows not looked up get a zero gradient, as in the spec's rules)."""
    import tensorflow as tf

    table = RNG.normal(size=(1000, 16)).astype(np.float32)
    rows = tf.constant([3, 7, 7, 512])
    values = tf.constant(RNG.normal(size=(4, 16)).astype(np.float32))
    sparse = tf.IndexedSlices(values, rows, dense_shape=tf.constant(table.shape))
    got, want = keras.Variable(table), keras.Variable(table)
    make().apply([sparse], [got])
    make().apply([tf.convert_to_tensor(sparse)], [want])
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert not np.array_equal(got.numpy(), table)


@pytest.mark.parametrize("mode", RAISE_MODES)
@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_nonfinite_raise_leaves_every_variable_unchanged(make, mode):
    """A NaN in the last gradient only, on a variable above _fused.MIN_SIZE and one below: the step raises
    before any variable (or slot) is written, also in TensorFlow's graph mode, where the other variables'
    updates would not wait for the failing check on their own. (Keras' own ``iterations`` counter,
    incremented after the step, may still advance in graph mode.)"""
    opt = make(nonfinite="raise")
    vs = [keras.Variable(x) for x in BIG]
    opt.build(vs)
    fn = B.stepper(opt, vs, mode)
    state = vs + [v for v in opt.variables if not v.path.endswith("/iteration")]
    before = [v.numpy().copy() for v in state]
    grads = [keras.ops.convert_to_tensor(g) for g in BIG_GRADS[0]]
    grads[-1] = keras.ops.full(grads[-1].shape, np.nan)
    with pytest.raises(B.nonfinite_errors(), match="nonfinite gradient"):
        fn(grads)
    for b, a in zip(before, state, strict=True):
        np.testing.assert_array_equal(a.numpy(), b)
