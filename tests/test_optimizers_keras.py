"""Drop-in: every keras_optreg optimizer against its installed Keras twin (issue 12).

Weights layout (number, order, shapes, slot names), states saved by the twin loading into ours
with the values in the right slots, Keras' naming and signatures, and the checks Keras' own
optimizer tests make (clipnorm with IndexedSlices, EMA, gradient accumulation, weight decay,
set_weights, pickling, tf.train.Checkpoint), written here against the installed Keras, for a
variable below and one above ``FUSED_MIN_SIZE`` (op by op, fused kernel).
"""

from __future__ import annotations

import inspect
import pickle
import re

import keras
import numpy as np
import pytest

import keras_optreg as ko
from keras_optreg.optimizers._checks import FUSED_MIN_SIZE
from tests import backend as B

K = keras.optimizers
#: (id, ours(**extra), the Keras twin(**extra)) with matching options
PAIRS = [
    ("sgd", lambda **k: ko.SGD(0.05, **k), lambda **k: K.SGD(0.05, **k)),
    ("momentum", lambda **k: ko.SGD(0.05, momentum=0.9, **k), lambda **k: K.SGD(0.05, momentum=0.9, **k)),
    ("nesterov", lambda **k: ko.SGD(0.05, momentum=0.9, nesterov=True, **k),
     lambda **k: K.SGD(0.05, momentum=0.9, nesterov=True, **k)),
    ("adagrad", lambda **k: ko.Adagrad(0.1, **k), lambda **k: K.Adagrad(0.1, **k)),
    ("rmsprop", lambda **k: ko.RMSprop(0.01, **k), lambda **k: K.RMSprop(0.01, **k)),
    ("rmsprop_momentum", lambda **k: ko.RMSprop(0.01, momentum=0.9, **k),
     lambda **k: K.RMSprop(0.01, momentum=0.9, **k)),
    ("rmsprop_centered", lambda **k: ko.RMSprop(0.01, centered=True, **k),
     lambda **k: K.RMSprop(0.01, centered=True, **k)),
    ("rmsprop_centered_momentum", lambda **k: ko.RMSprop(0.01, momentum=0.5, centered=True, **k),
     lambda **k: K.RMSprop(0.01, momentum=0.5, centered=True, **k)),
    ("adam", lambda **k: ko.Adam(0.01, **k), lambda **k: K.Adam(0.01, **k)),
    ("amsgrad", lambda **k: ko.Adam(0.01, amsgrad=True, **k), lambda **k: K.Adam(0.01, amsgrad=True, **k)),
]
IDS = [p[0] for p in PAIRS]
#: one configuration per class covering every slot kind, for the checks that fit a model
CORE = [p for p in PAIRS if p[0] in ("momentum", "adagrad", "rmsprop_centered_momentum", "adam", "amsgrad")]
CORE_IDS = [p[0] for p in CORE]
#: one variable above FUSED_MIN_SIZE (the fused kernel) and two below (op by op), in every test
SHAPES = [(64, 80), (3, 5), (7,)]
assert np.prod(SHAPES[1]) < FUSED_MIN_SIZE <= np.prod(SHAPES[0])
RNG = np.random.default_rng(12)


def _variables():
    return [keras.Variable(RNG.normal(size=s).astype(np.float32)) for s in SHAPES]


def _grads(variables, scale=1.0):
    return [keras.ops.convert_to_tensor(RNG.normal(size=v.shape).astype(np.float32) * scale) for v in variables]


def _layout(opt):
    """(path without the optimizer's name, shape, dtype) of each optimizer variable, in order."""
    return [(v.path.split("/", 1)[1], tuple(v.shape), v.dtype) for v in opt.variables]


#: the deviation on JAX: ``gradient_norm`` is the last of ``optimizer.variables`` there (Keras' JAX fit steps
#: only those), never saved (keras_optreg.optimizers._base, the gradient_norm docstring)
NORM = [("gradient_norm", (), "float32")] if B.JAX else []


OPTIONS = [{}, {"use_ema": True}, {"gradient_accumulation_steps": 2},
           {"use_ema": True, "gradient_accumulation_steps": 3}]


@pytest.mark.parametrize("options", OPTIONS, ids=["plain", "ema", "accumulation", "ema_accumulation"])
@pytest.mark.parametrize("ours, twin", [p[1:] for p in PAIRS], ids=IDS)
def test_weights_layout_is_the_keras_twins(ours, twin, options):
    variables = _variables()
    a, b = ours(**options), twin(**options)
    a.build(variables)
    b.build(variables)
    assert _layout(a) == _layout(b) + NORM
    skip = ours(nonfinite="skip", **options)
    skip.build(variables)
    # the one documented deviation, a counter of the dtype of Keras' own (int64; int32 on PyTorch and on JAX
    # without jax_enable_x64)
    counter = keras.backend.standardize_dtype(b.iterations.dtype)
    assert _layout(skip) == _layout(b) + [("skipped_steps", (), counter)] + NORM


@pytest.mark.parametrize("ours, twin", [p[1:] for p in PAIRS], ids=IDS)
def test_low_precision_slots_are_float32_otherwise_the_twins_layout(ours, twin):
    variables = [keras.Variable(np.zeros((3, 5), np.float16)), keras.Variable(np.zeros((64, 80), "bfloat16"))]
    a, b = ours(use_ema=True), twin(use_ema=True)
    a.build(variables)
    b.build(variables)
    got, want = _layout(a), _layout(b) + NORM
    assert [(p, s) for p, s, _ in got] == [(p, s) for p, s, _ in want]
    for (path, _, dtype), (_, _, twin_dtype) in zip(got, want, strict=True):
        if path.endswith("_average"):  # EMA of the weights: the variable's dtype, as Keras
            assert dtype == twin_dtype
        elif twin_dtype in ("float16", "bfloat16"):
            assert dtype == "float32", path


def _fitted(optimizer, x, y):
    """A model with a 64 x 80 kernel (fused kernel) and small biases and kernel (op by op), fitted one epoch."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((x.shape[1],)), keras.layers.Dense(80), keras.layers.Dense(1)])
    model.compile(optimizer, loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    return model


@pytest.mark.parametrize("fmt", ["weights.h5", "keras"])
@pytest.mark.parametrize("ours, twin", [p[1:] for p in CORE], ids=CORE_IDS)
def test_a_state_saved_from_the_keras_twin_loads_into_the_right_slots(ours, twin, fmt, tmp_path):
    x = RNG.normal(size=(32, 64)).astype(np.float32)
    y = RNG.normal(size=(32, 1)).astype(np.float32)
    trained = _fitted(twin(), x, y)
    path = tmp_path / f"twin.{fmt}"
    trained.save_weights(path) if fmt == "weights.h5" else trained.save(path)
    for opt in (ours(), ours(nonfinite="skip")):
        keras.utils.set_random_seed(3)
        model = keras.models.clone_model(trained)
        model.compile(opt, loss="mse")
        opt.build(model.trainable_variables)
        model.load_weights(path)
        pairs = list(zip(opt.variables, trained.optimizer.variables, strict=False))
        assert len(pairs) == len(trained.optimizer.variables)
        for mine, theirs in pairs:
            assert mine.path.split("/", 1)[1] == theirs.path.split("/", 1)[1]
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)
        assert any(np.any(v.numpy() != 0) for v in opt.variables[2:]) or "sgd" in opt.name  # slots were trained
        if opt.nonfinite == "skip":
            assert int(opt.skipped_steps.numpy()) == 0


def test_sgd_momentum_continues_from_a_keras_state_as_keras_does(tmp_path):
    """Same algorithm (GBC16 Alg. 8.2 = Keras' SGD momentum): after loading the twin's state, one more
    step of each gives the same weights, so the velocity landed in the velocity slot."""
    x = RNG.normal(size=(32, 64)).astype(np.float32)
    y = RNG.normal(size=(32, 1)).astype(np.float32)
    trained = _fitted(K.SGD(0.05, momentum=0.9), x, y)
    trained.save_weights(tmp_path / "w.weights.h5")
    model = keras.models.clone_model(trained)
    model.compile(ko.SGD(0.05, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.load_weights(tmp_path / "w.weights.h5")
    for m in (trained, model):
        m.fit(x[:8], y[:8], batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_default_names_are_keras_unique_names():
    for cls, base in ((ko.SGD, "sgd"), (ko.Adagrad, "adagrad"), (ko.RMSprop, "rm_sprop"), (ko.Adam, "adam")):
        a, b = cls(), cls()
        assert re.fullmatch(rf"{base}(_\d+)?", a.name) and re.fullmatch(rf"{base}_\d+", b.name), (a.name, b.name)
        assert a.name != b.name
        twin = getattr(K, cls.__name__)()  # one counter with Keras' own: the next index
        assert int(twin.name.rsplit("_", 1)[1]) == int(b.name.rsplit("_", 1)[1]) + 1
        assert cls.from_config(b.get_config()).name == b.name
    assert ko.Adam(name="my_adam").name == "my_adam"


@pytest.mark.parametrize("cls", [ko.SGD, ko.Adagrad, ko.RMSprop, ko.Adam], ids=lambda c: c.__name__)
def test_signature_starts_with_the_keras_twins_in_its_order(cls):
    """Keras' arguments in Keras' order (positional calls land as in Keras), then our two extras."""
    theirs = inspect.signature(getattr(K, cls.__name__).__init__).parameters
    names = [n for n in theirs if n not in ("self", "kwargs")]
    mine = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "kwargs")]
    assert mine == names + ["nonfinite", "track_gradient_norm"]
    values = {n: theirs[n].default for n in names}
    values.update(learning_rate=0.125, weight_decay=0.25, clipnorm=0.5, name="positional")
    config = cls(*values.values()).get_config()
    assert {n: config[n] for n in names} == values


@pytest.mark.parametrize("ours", [p[1] for p in CORE], ids=CORE_IDS)
def test_clipnorm_with_an_embedding_model_fits(ours):
    """Keras' test_clipnorm_indexed_slices (an Embedding model with clipnorm fits; here two tables, of 40 and
    8000 parameters); on TensorFlow the gradients are IndexedSlices, and the test below checks that the
    clipped sparse step equals the clipped dense step."""
    tokens = keras.Input((5,), dtype="int32")
    small, large = keras.layers.Embedding(10, 4)(tokens), keras.layers.Embedding(2000, 4)(tokens)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Concatenate()([small, large])))
    model = keras.Model(tokens, out)
    model.compile(optimizer=ours(clipnorm=100.0), loss="mse")
    model.fit(np.ones((8, 5), np.int32), np.zeros((8, 2), np.float32), verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.tensorflow_only("sparse gradients (tf.IndexedSlices) are TensorFlow's: Embedding's gradient is dense "
                             "on JAX and PyTorch")
@pytest.mark.parametrize("ours", [p[1] for p in CORE], ids=CORE_IDS)
def test_clipnorm_with_indexed_slices_equals_the_dense_gradient_step(ours):
    import tensorflow as tf

    for rows in (10, 2000):
        values = tf.constant(RNG.normal(size=(3, 4)).astype(np.float32) * 10)
        sparse = tf.IndexedSlices(values, tf.constant([1, 4, 4]), tf.constant([rows, 4]))
        a, b = keras.Variable(np.ones((rows, 4), np.float32)), keras.Variable(np.ones((rows, 4), np.float32))
        ours(clipnorm=0.5).apply([sparse], [a])
        ours(clipnorm=0.5).apply([tf.convert_to_tensor(sparse)], [b])
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert not np.array_equal(a.numpy(), np.ones((rows, 4)))


@pytest.mark.parametrize("ours", [p[1] for p in PAIRS], ids=IDS)
def test_ema_follows_its_formula_and_overwrites(ours):
    """EMA of the weights (Keras' base class): a_1 = theta_1, a_k = m a_{k-1} + (1 - m) theta_k, and every
    ``ema_overwrite_frequency`` steps the weights become a_k."""
    variables = _variables()
    opt = ours(use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)
    previous = None
    for k in range(1, 6):
        opt.apply(_grads(variables), variables)
        averages = [a.numpy() for a in opt._model_variables_moving_average]
        theta = [v.numpy() for v in variables]
        if k % 3 == 0:  # overwritten by the average
            for t, a in zip(theta, averages, strict=True):
                np.testing.assert_array_equal(t, a)
        elif previous is None:  # the first step: the average starts at theta_1
            for t, a in zip(theta, averages, strict=True):
                np.testing.assert_array_equal(a, t)
        else:
            for a, p, t in zip(averages, previous, theta, strict=True):
                np.testing.assert_allclose(a, 0.9 * p + 0.1 * t, rtol=1e-6, atol=1e-6)
        previous = averages


@pytest.mark.parametrize("ours", [p[1] for p in PAIRS], ids=IDS)
def test_gradient_accumulation_with_weight_decay_equals_one_step_on_the_mean(ours):
    """Keras' test_gradient_accumulation_with_weigth_decay: 3 accumulated micro-steps = 1 step on their mean,
    over 2 cycles (the second starts from the reset accumulators). Two, not Keras' four: on JAX each eager
    accumulating apply takes about 0.7 s (Keras' own optimizer 0.8 s: its ``ops.cond`` compiles each call)."""
    one, acc = ours(weight_decay=0.05), ours(weight_decay=0.05, gradient_accumulation_steps=3)
    a, b = _variables(), None
    b = [keras.Variable(v.numpy()) for v in a]
    for _ in range(2):
        micro = [_grads(a) for _ in range(3)]
        one.apply([keras.ops.mean(keras.ops.stack(gs), axis=0) for gs in zip(*micro, strict=True)], a)
        for gs in micro:
            acc.apply(gs, b)
    for x, y in zip(a, b, strict=True):
        # (g1 + g2 + g3) / 3 summed in another order: float32 rounding of the mean, carried 2 steps
        np.testing.assert_allclose(y.numpy(), x.numpy(), rtol=1e-5, atol=1e-5)
    assert int(keras.ops.convert_to_numpy(acc.iterations)) == 2 and int(acc._iterations.numpy()) == 6


@pytest.mark.parametrize("ours", [p[1] for p in PAIRS], ids=IDS)
def test_weight_decay_on_a_zero_gradient_decays_geometrically(ours):
    """Keras applies theta <- theta - theta wd lr before the update; a zero gradient updates by 0 in every
    rule here (SGD, momentum from v = 0, Adagrad 0 / (delta + 0), RMSprop and Adam 0 / sqrt(delta)), so
    theta_k = theta_0 (1 - wd lr)^k."""
    variables = _variables()
    theta0 = [v.numpy().astype(np.float64) for v in variables]
    opt = ours(weight_decay=0.1)
    lr = float(opt.learning_rate.numpy())
    for _ in range(5):
        opt.apply([keras.ops.zeros(v.shape) for v in variables], variables)
    for v, t0 in zip(variables, theta0, strict=True):
        np.testing.assert_allclose(v.numpy(), t0 * (1 - 0.1 * lr) ** 5, rtol=20 * 2.0 ** -24)


@pytest.mark.parametrize("ours", [p[1] for p in PAIRS], ids=IDS)
def test_set_weights_copies_every_variable_and_needs_a_built_optimizer(ours):
    variables = _variables()
    first = ours(nonfinite="skip")
    for _ in range(2):
        first.apply(_grads(variables), variables)
    second = ours(nonfinite="skip")
    with pytest.raises(ValueError, match="not yet been built"):
        second.set_weights([v.numpy() for v in first.variables])
    second.build(variables)
    second.set_weights([v.numpy() for v in first.variables])
    for a, b in zip(first.variables, second.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("ours", [p[1] for p in PAIRS], ids=IDS)
def test_pickling_keeps_the_config(ours):
    opt = ours(nonfinite="skip", clipnorm=2.0)
    reloaded = pickle.loads(pickle.dumps(opt))
    assert reloaded.get_config() == opt.get_config()
    assert type(reloaded) is type(opt)


@pytest.mark.tensorflow_only("tf.train.Checkpoint is TensorFlow's (the .keras and .weights.h5 round trips run on "
                             "every backend)")
@pytest.mark.parametrize("ours", [p[1] for p in CORE], ids=CORE_IDS)
def test_tf_train_checkpoint_restores_the_model_and_every_slot(ours, tmp_path):
    import tensorflow as tf

    x = RNG.normal(size=(16, 64)).astype(np.float32)
    y = RNG.normal(size=(16, 1)).astype(np.float32)
    model = _fitted(ours(nonfinite="skip"), x, y)
    optimizer = model.optimizer
    checkpoint = tf.train.Checkpoint(model, optimizer=optimizer)
    saved = [v.numpy().copy() for v in optimizer.variables]
    weights = model.get_weights()
    path = checkpoint.save(str(tmp_path / "ckpt"))
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert not np.allclose(model.get_weights()[0], weights[0], atol=1e-6)
    checkpoint.restore(path)
    for w, want in zip(model.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(w, want)
    for v, want in zip(optimizer.variables, saved, strict=True):
        np.testing.assert_array_equal(v.numpy(), want, err_msg=v.path)
