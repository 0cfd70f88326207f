"""Keras' contract for every layer (issue 12): Keras' own layer harness (``run_layer_test``: config round
trip, serialization, build, symbolic and eager shapes and dtypes, masking flag, weight and seed-generator
counts, a training step, mixed precision), the weights layout of the Keras twin, weight files written
from the twin, and the random state through ``.keras``, ``.weights.h5``, ``tf.train.Checkpoint`` and
``keras.callbacks.BackupAndRestore`` (bit-identical continuation)."""

import keras
import numpy as np
import pytest

from keras_optreg import layers as L
from tests import layer_checks as lc
from tests.backend import TENSORFLOW

CF = "channels_first"
# the random state's dtype: Keras' SeedGenerator's on this backend (int64 on TensorFlow, uint32 on JAX, int32 on
# PyTorch), the same as the Keras twins'
SEED_DTYPE = keras.layers.Dropout(0.5, seed=1).seed_generator.state.dtype
# name: (class, init kwargs, input shape, input dtype, expected output shape, output dtype,
#        trainable weights, non-trainable weights, seed generators)
HARNESS = {
    "dropout": (L.Dropout, dict(rate=0.5, seed=1), (2, 3, 4), "float32", (2, 3, 4), "float32", 0, 0, 1),
    "dropout_noise_shape": (L.Dropout, dict(rate=0.3, noise_shape=(None, 1, 4), seed=1), (2, 3, 4), "uint8",
                            (2, 3, 4), "float32", 0, 0, 1),
    "input_noise": (L.InputNoise, dict(stddev=0.5, seed=1), (2, 3, 4), "float32", (2, 3, 4), "float32", 0, 0, 1),
    "batchnorm_dense": (L.BatchNormalization, dict(momentum=0.5), (4, 3), "float32", (4, 3), "float32", 2, 2, 0),
    "batchnorm_per_position": (L.BatchNormalization, dict(axis=(1, 2, 3), scale=False), (4, 3, 2, 2), "float32",
                               (4, 3, 2, 2), "float32", 1, 2, 0),
    "random_flip": (L.RandomFlip, dict(seed=1), (2, 8, 8, 3), "uint8", (2, 8, 8, 3), "float32", 0, 0, 1),
    "random_flip_one_image_channels_first": (L.RandomFlip, dict(mode="horizontal_and_vertical", seed=1,
                                                                data_format=CF),
                                             (3, 8, 7), "float32", (3, 8, 7), "float32", 0, 0, 1),
    "random_crop": (L.RandomCrop, dict(height=5, width=4, seed=1), (2, 8, 8, 3), "uint8", (2, 5, 4, 3), "float32",
                    0, 0, 1),
    "random_crop_one_image_channels_first": (L.RandomCrop, dict(height=5, width=4, seed=1, data_format=CF),
                                             (3, 8, 7), "float32", (3, 5, 4), "float32", 0, 0, 1),
    "random_rotation": (L.RandomRotation, dict(factor=0.1, seed=1), (2, 8, 8, 3), "uint8", (2, 8, 8, 3), "float32",
                        0, 0, 1),
    "random_rotation_one_image_channels_first": (L.RandomRotation, dict(factor=(-0.2, 0.1), fill_mode="wrap",
                                                                        interpolation="nearest", seed=1,
                                                                        data_format=CF),
                                                 (3, 8, 7), "float32", (3, 8, 7), "float32", 0, 0, 1),
}
# the layers that normalise or draw only in training: the harness calls them with training=True
TRAINING_ONLY = (L.Dropout, L.InputNoise, L.BatchNormalization)


@pytest.mark.parametrize("name", sorted(HARNESS))
def test_keras_layer_harness(name):
    cls, kwargs, shape, dtype, out_shape, out_dtype, n_train, n_fixed, n_seeds = HARNESS[name]
    lc.harness().run_layer_test(
        cls, init_kwargs=kwargs, input_shape=shape, input_dtype=dtype,
        call_kwargs={"training": True} if cls in TRAINING_ONLY else {},
        expected_output_shape=out_shape, expected_output_dtype=out_dtype,
        expected_num_trainable_weights=n_train, expected_num_non_trainable_weights=n_fixed,
        expected_num_non_trainable_variables=n_fixed + n_seeds, expected_num_seed_generators=n_seeds,
        supports_masking=cls in TRAINING_ONLY)


TWINS = {
    "dropout": (lambda: L.Dropout(0.5, seed=1), lambda: keras.layers.Dropout(0.5, seed=1), (2, 6)),
    "input_noise": (lambda: L.InputNoise(0.5, seed=1), lambda: keras.layers.GaussianNoise(0.5, seed=1), (2, 6)),
    "batchnorm": (lambda: L.BatchNormalization(), lambda: keras.layers.BatchNormalization(), (2, 4, 4, 3)),
    "random_flip": (lambda: L.RandomFlip("horizontal", seed=1), lambda: keras.layers.RandomFlip("horizontal", seed=1),
                    (2, 8, 8, 3)),
    "random_crop": (lambda: L.RandomCrop(5, 4, seed=1), lambda: keras.layers.RandomCrop(5, 4, seed=1), (2, 8, 8, 3)),
    "random_rotation": (lambda: L.RandomRotation(0.1, seed=1), lambda: keras.layers.RandomRotation(0.1, seed=1),
                        (2, 8, 8, 3)),
}


@pytest.mark.parametrize("name", sorted(TWINS))
def test_weights_line_up_with_the_keras_twin(name):
    ours, twin, shape = (f() if callable(f) else f for f in TWINS[name])
    x = np.random.default_rng(0).uniform(size=shape).astype(np.float32)
    ours(x, training=True), twin(x, training=True)
    assert [(w.name, tuple(w.shape)) for w in ours.weights] == [(w.name, tuple(w.shape)) for w in twin.weights]
    assert [w.trainable for w in ours.weights] == [w.trainable for w in twin.weights]
    assert len(ours.variables) == len(twin.variables)  # the seed state: in variables, not in weights
    assert all(v.dtype in ("float32", SEED_DTYPE) for v in ours.variables)


def _stack(lib):
    """A model of every layer (the Keras twins when ``lib`` is keras.layers); same names, same order."""
    ko = lib is L
    inp = keras.Input((8, 8, 3))
    h = (L.InputNoise(0.1, seed=1, name="noise") if ko else keras.layers.GaussianNoise(0.1, seed=1, name="noise"))(inp)
    h = lib.RandomFlip("horizontal", seed=2, name="flip")(h)
    h = lib.RandomRotation(0.05, seed=3, name="rotation")(h)
    h = lib.RandomCrop(6, 6, seed=4, name="crop")(h)
    h = lib.BatchNormalization(momentum=0.5, name="bn")(h)
    h = lib.Dropout(0.5, seed=5, name="dropout")(keras.layers.Flatten(name="flat")(h))
    return keras.Model(inp, keras.layers.Dense(2, kernel_initializer=keras.initializers.GlorotUniform(1),
                                               name="dense")(h))


X = np.random.default_rng(1).uniform(size=(8, 8, 8, 3)).astype(np.float32)
Y = np.random.default_rng(2).normal(size=(8, 2)).astype(np.float32)


def _compiled(model):
    # without XLA for the whole step: the layers' kernels are XLA-compiled either way, the state handling under
    # test is the same, and a whole-model XLA compile per model would add seconds (each layer's fit under
    # jit_compile=True: tests/layer_checks.fit_runs_under_xla)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse", jit_compile=False)
    return model


def test_weights_written_from_the_keras_twins_load(tmp_path):
    twin = _compiled(_stack(keras.layers))
    # a training-mode call moves the moving statistics away from 0 / 1 (not fit: on PyTorch, Keras 3.15's
    # RandomCrop inside fit returns uncropped images, which the Dense after it rejects)
    twin(X, training=True)
    twin.save_weights(tmp_path / "twin.weights.h5")
    ours = _stack(L)
    assert [w.shape for w in ours.weights] == [w.shape for w in twin.weights]
    ours.load_weights(tmp_path / "twin.weights.h5")
    for a, b in zip(ours.weights, twin.weights, strict=True):
        np.testing.assert_array_equal(lc.numpy(a), lc.numpy(b), err_msg=a.path)
    state = [v.numpy().copy() for v in ours.variables if "seed_generator" in v.path]
    assert state, "the random layers keep their state when the file has none"
    for v, before in zip([v for v in ours.variables if "seed_generator" in v.path], state, strict=True):
        np.testing.assert_array_equal(v.numpy(), before)
    fresh = _stack(L)
    fresh.set_weights(twin.get_weights())
    for a, b in zip(fresh.weights, twin.weights, strict=True):
        np.testing.assert_array_equal(lc.numpy(a), lc.numpy(b), err_msg=a.path)


def test_rng_state_through_weight_files_and_tf_checkpoint(tmp_path):
    """Fit one epoch, save (.weights.h5, and tf.train.Checkpoint on TensorFlow), fit one more (the reference);
    restore each into a fresh model whose every state moved elsewhere, fit that epoch again: every variable
    bit-identical. (tf.train.Checkpoint is TensorFlow's object graph: on JAX and PyTorch only the .weights.h5.)"""
    model = _compiled(_stack(L))
    model.fit(X, Y, epochs=1, batch_size=4, verbose=0, shuffle=False)
    model.save_weights(tmp_path / "m.weights.h5")
    if TENSORFLOW:
        import tensorflow as tf

        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(tmp_path / "ckpt"))
    model.fit(X, Y, epochs=1, batch_size=4, verbose=0, shuffle=False)

    def from_h5(fresh):
        fresh.load_weights(tmp_path / "m.weights.h5")

    def from_checkpoint(fresh):
        tf.train.Checkpoint(model=fresh, optimizer=fresh.optimizer).read(checkpoint).assert_consumed()

    for restore in (from_h5, from_checkpoint) if TENSORFLOW else (from_h5,):
        fresh = _compiled(_stack(L))
        fresh.fit(X[:4], Y[:4], epochs=1, batch_size=4, verbose=0)  # build, and move every state elsewhere
        restore(fresh)
        fresh.fit(X, Y, epochs=1, batch_size=4, verbose=0, shuffle=False)
        for a, b in zip(fresh.variables, model.variables, strict=True):
            np.testing.assert_array_equal(lc.numpy(a), lc.numpy(b), err_msg=f"{restore.__name__}: {a.path}")


class _Interrupt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError("interrupted")


def test_backup_and_restore_resumes_bit_identical(tmp_path):
    reference = _compiled(_stack(L))
    reference.fit(X, Y, epochs=4, batch_size=4, verbose=0, shuffle=False)
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    first = _compiled(_stack(L))
    with pytest.raises(RuntimeError, match="interrupted"):
        first.fit(X, Y, epochs=4, batch_size=4, verbose=0, shuffle=False, callbacks=[backup, _Interrupt()])
    resumed = _compiled(_stack(L))  # a new process would build the model anew: same seeds, state from the backup
    resumed(X[:1])
    resumed.fit(X, Y, epochs=4, batch_size=4, verbose=0, shuffle=False, callbacks=[backup])
    for a, b in zip(resumed.variables, reference.variables, strict=True):
        np.testing.assert_array_equal(lc.numpy(a), lc.numpy(b), err_msg=a.path)
    for a, b in zip(resumed.optimizer.variables, reference.optimizer.variables, strict=True):
        np.testing.assert_array_equal(lc.numpy(a), lc.numpy(b), err_msg=a.path)


POLICY_EPS = {"float64": 2.0 ** -52, "float16": 2.0 ** -10, "bfloat16": 2.0 ** -7}
RANDOM_LAYERS = {"dropout": lambda **kw: L.Dropout(0.3, seed=3, **kw),
                 "input_noise": lambda **kw: L.InputNoise(0.5, seed=3, **kw),
                 "random_flip": lambda **kw: L.RandomFlip("horizontal_and_vertical", seed=3, **kw),
                 "random_crop": lambda **kw: L.RandomCrop(6, 5, seed=3, **kw),
                 "random_rotation": lambda **kw: L.RandomRotation(0.1, seed=3, **kw)}
X_POLICY = np.random.default_rng(5).normal(1.0, 2.0, size=(4, 8, 8, 3)).astype(np.float32)


@pytest.mark.parametrize("policy", sorted(POLICY_EPS))
@pytest.mark.parametrize("name", sorted(RANDOM_LAYERS))
def test_random_layers_under_every_dtype_policy(name, policy):
    """Output in the policy's compute dtype; values = the float32 layer's (same seed, same draws) within
    rounding the input and the output to that dtype (4 eps of the output scale; float64 draws in float32
    and matches the float32 layer to float32's rounding, 4 * 2**-23; the rotation's float32 sample
    coordinates allow 2e-4, as in test_random_rotation_math_matches_spec)."""
    with lc.float64_on(policy):
        _random_layer_under_policy(name, policy)


def _random_layer_under_policy(name, policy):
    layer = RANDOM_LAYERS[name](dtype=policy)
    reference = RANDOM_LAYERS[name]()
    x_low = lc.numpy(keras.ops.cast(keras.ops.cast(X_POLICY, policy), "float32"))
    y = layer(X_POLICY, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == policy
    want = lc.numpy(reference(x_low, training=True), np.float64)
    atol = 4 * max(POLICY_EPS[policy], 2.0 ** -23) * float(np.max(np.abs(want)))
    if name == "random_rotation":  # float32 vs float64 sample coordinates: the bound of the rotation's spec test
        atol = max(atol, 2e-4)
    np.testing.assert_allclose(lc.numpy(keras.ops.cast(y, "float64")), want, rtol=0, atol=atol)
    # the state: Keras' SeedGenerator dtype on this backend (int64 on TensorFlow, uint32 on JAX, int32 on PyTorch)
    assert layer.variables[0].dtype == SEED_DTYPE and not layer.weights


def test_rng_state_from_a_keras_optreg_0_1_store_loads():
    """keras_optreg 0.1 saved the state as the random layer's one weight, entry "0" of its store."""
    layer = L.Dropout(0.5, seed=1)
    layer.load_own_variables({"0": np.array([9, 4], np.int32)})
    np.testing.assert_array_equal(layer.rng_state.numpy(), [9, 4])
    layer.load_own_variables({})  # a Keras twin's store: nothing to load, the state stays
    np.testing.assert_array_equal(layer.rng_state.numpy(), [9, 4])
    store = {}
    layer.save_own_variables(store)
    assert list(store) == ["rng_state"]
