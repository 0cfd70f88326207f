"""Keras integration checks shared by the layer tests: save/load with RNG state, XLA, fit, tf.data, loops."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def assert_keras_round_trip(model, path):
    """Save ``model`` to the ``.keras`` file ``path``, reload it, assert every weight is bit-for-bit
    equal and every layer's config is unchanged; return the reloaded model."""
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"weight {a.path}")
    for a, b in zip(model.layers, loaded.layers, strict=True):
        assert a.get_config() == b.get_config(), a.name
    return loaded


def harness():
    """Keras' own layer test harness (``keras.src.testing.TestCase.run_layer_test``), outside unittest."""
    from keras.src.testing import TestCase

    case = TestCase(methodName="run_layer_test")
    case.setUp()
    return case


def next_call_survives_reload(tmp_path, make_layer, x):
    """Call twice, save, reload: the reloaded model's next call equals the original's next call."""
    inp = keras.Input(x.shape[1:])
    model = keras.Model(inp, make_layer()(inp))
    model(x, training=True)
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    expected = np.asarray(model(x, training=True))
    got = np.asarray(reloaded(x, training=True))
    np.testing.assert_array_equal(got, expected)
    assert reloaded.layers[-1].get_config() == model.layers[-1].get_config()


def jit_matches_eager(make_layer, x):
    """Same seed, same call index: eager and tf.function(jit_compile=True) agree."""
    eager, jitted = make_layer(), make_layer()
    want = np.asarray(eager(x, training=True))
    fn = tf.function(lambda t: jitted(t, training=True), jit_compile=True)
    got = np.asarray(fn(tf.constant(x)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(jitted(x, training=False)), np.asarray(eager(x, training=False)),
                               rtol=1e-5, atol=1e-5)


def fit_runs_under_xla(make_layer, x, y_dim=1):
    inp = keras.Input(x.shape[1:])
    h = make_layer()(inp)
    out = keras.layers.Dense(y_dim)(keras.layers.Flatten()(h))
    model = keras.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    y = np.zeros((x.shape[0], y_dim), np.float32)
    hist = model.fit(x, y, epochs=2, batch_size=x.shape[0], verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    layer = model.layers[1]
    if hasattr(layer, "rng_state"):  # fit passes training=True: one draw per step, 2 steps
        assert int(layer.rng_state.numpy()[1]) == 2
    return model


def tf_data_map_advances(make_layer, x):
    """In dataset.map the layer draws fresh randomness per batch and matches eager draws in order."""
    a, b = make_layer(), make_layer()
    ds = tf.data.Dataset.from_tensors(tf.constant(x)).repeat(2).map(lambda t: a(t, training=True))
    got = list(ds.as_numpy_iterator())
    want = [np.asarray(b(x, training=True)) for _ in range(2)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def custom_loop_runs(make_layer, x):
    layer = make_layer()
    dense = keras.layers.Dense(1)
    opt = keras.optimizers.SGD(0.01)

    @tf.function(jit_compile=True)
    def step(t):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(dense(tf.reshape(layer(t, training=True), (tf.shape(t)[0], -1)))))
        grads = tape.gradient(loss, dense.trainable_variables)
        opt.apply_gradients(zip(grads, dense.trainable_variables, strict=True))
        return loss

    losses = [float(step(tf.constant(x))) for _ in range(3)]
    assert np.all(np.isfinite(losses))
    return layer


def keras_integration(make, x, tmp_path):
    """All the Keras-contract checks for a random layer; returns the custom-loop layer (3 calls made)."""
    next_call_survives_reload(tmp_path, make, x)
    jit_matches_eager(make, x)
    fit_runs_under_xla(make, x)
    tf_data_map_advances(make, x)
    return custom_loop_runs(make, x)
