"""Keras integration checks shared by the layer tests, on every backend: save/load with the RNG state,
the backend's compiler (:func:`compiled_call`), ``model.fit``, a custom training loop, and (TensorFlow only)
``tf.data``. No TensorFlow import at module level: the suite runs on JAX and PyTorch too."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tests.backend import JAX, JIT_COMPILE, TENSORFLOW, TORCH, float64_on, numpy  # noqa: F401 (lc.numpy, lc.float64_on)

FIT_JIT = JIT_COMPILE  # model.fit's jit_compile: tests/backend.py JIT_COMPILE


def assert_keras_round_trip(model, path):
    """Save ``model`` to the ``.keras`` file ``path``, reload it, assert every weight is bit-for-bit
    equal and every layer's config is unchanged; return the reloaded model."""
    model.save(path)
    loaded = keras.saving.load_model(path)
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(numpy(a), numpy(b), err_msg=f"weight {a.path}")
    for a, b in zip(model.layers, loaded.layers, strict=True):
        assert a.get_config() == b.get_config(), a.name
    return loaded


def harness():
    """Keras' own layer test harness (``keras.src.testing.TestCase.run_layer_test``), outside unittest."""
    from keras.src.testing import TestCase

    case = TestCase(methodName="run_layer_test")
    case.setUp()
    return case


def compiled_call(layer, training=True):
    """``t -> layer(t, training=training)`` compiled the way this backend compiles a training step:
    ``tf.function(jit_compile=True)`` on TensorFlow; on JAX ``jax.jit`` of ``layer.stateless_call``, its
    non-trainable state (random state, moving statistics) passed in and the new state written back to the
    layer's variables after each call, as Keras' JAX trainer does; the eager call on PyTorch (its output
    as NumPy, detached from autograd). Built on the
    first call's shape; one compiled function per input shape, as for any jitted function."""
    if TENSORFLOW:
        import tensorflow as tf

        return tf.function(lambda t: layer(t, training=training), jit_compile=True)
    if TORCH:
        return lambda t: ops.convert_to_numpy(layer(t, training=training))  # detached from autograd
    import jax

    pure = jax.jit(lambda tv, ntv, t: layer.stateless_call(tv, ntv, t, training=training))

    def call(t):
        if not layer.built:
            layer.build(tuple(np.shape(t)))
        y, state = pure([v.value for v in layer.trainable_variables],
                        [v.value for v in layer.non_trainable_variables], t)
        for v, new in zip(layer.non_trainable_variables, state, strict=True):
            v.assign(new)
        return y

    return call


def next_call_survives_reload(tmp_path, make_layer, x):
    """Call twice, save, reload: the reloaded model's next call equals the original's next call."""
    inp = keras.Input(x.shape[1:])
    model = keras.Model(inp, make_layer()(inp))
    model(x, training=True)
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    expected = numpy(model(x, training=True))
    got = numpy(reloaded(x, training=True))
    np.testing.assert_array_equal(got, expected)
    assert reloaded.layers[-1].get_config() == model.layers[-1].get_config()


def jit_matches_eager(make_layer, x):
    """Same seed, same call index: eager and :func:`compiled_call` agree (twice: the state advances the same)."""
    eager, jitted = make_layer(), make_layer()
    fn = compiled_call(jitted)
    for _ in range(2):
        want = numpy(eager(x, training=True))
        np.testing.assert_allclose(numpy(fn(x)), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(numpy(jitted(x, training=False)), numpy(eager(x, training=False)),
                               rtol=1e-5, atol=1e-5)
    for a, b in zip(eager.variables, jitted.variables, strict=True):
        np.testing.assert_allclose(numpy(b), numpy(a), rtol=1e-6, err_msg=a.path)


def fit_runs_under_xla(make_layer, x, y_dim=1):
    """``model.fit`` (two steps, :data:`FIT_JIT`) with the layer in front of a Dense: finite losses, and a
    random layer's counter advanced once per step."""
    inp = keras.Input(x.shape[1:])
    h = make_layer()(inp)
    out = keras.layers.Dense(y_dim)(keras.layers.Flatten()(h))
    model = keras.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse", jit_compile=FIT_JIT)
    y = np.zeros((x.shape[0], y_dim), np.float32)
    hist = model.fit(x, y, epochs=2, batch_size=x.shape[0], verbose=0)
    assert np.all(np.isfinite(hist.history["loss"]))
    layer = model.layers[1]
    if hasattr(layer, "rng_state"):  # fit passes training=True: one draw per step, 2 steps
        assert int(numpy(layer.rng_state)[1]) == 2
    return model


def tf_data_map_advances(make_layer, x):
    """In dataset.map the layer draws fresh randomness per batch and matches eager draws in order
    (TensorFlow only: ``Dataset.map`` traces the layer into a TensorFlow graph)."""
    import tensorflow as tf

    a, b = make_layer(), make_layer()
    ds = tf.data.Dataset.from_tensors(tf.constant(x)).repeat(2).map(lambda t: a(t, training=True))
    got = list(ds.as_numpy_iterator())
    want = [numpy(b(x, training=True)) for _ in range(2)]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def _loss(y):
    return ops.mean(ops.square(y))


def custom_loop_runs(make_layer, x, steps=3):
    """A hand-written training loop (the layer, Flatten, Dense(1); SGD on every trainable variable), in each
    backend's own idiom: ``tf.GradientTape`` in ``tf.function(jit_compile=True)``; ``jax.value_and_grad`` of
    ``model.stateless_call`` and ``optimizer.stateless_apply`` in ``jax.jit``, the state written back after the
    loop; ``loss.backward()`` and ``optimizer.apply`` under ``torch.no_grad()``. Returns the layer."""
    layer = make_layer()
    model = keras.Sequential([keras.Input(x.shape[1:]), layer, keras.layers.Flatten(), keras.layers.Dense(1)])
    opt = keras.optimizers.SGD(0.01)
    opt.build(model.trainable_variables)
    if TENSORFLOW:
        import tensorflow as tf

        @tf.function(jit_compile=True)
        def step(t):
            with tf.GradientTape() as tape:
                loss = _loss(model(t, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return loss

        losses = [float(step(tf.constant(x))) for _ in range(steps)]
    elif JAX:
        import jax

        def loss_fn(tv, ntv, t):
            y, ntv = model.stateless_call(tv, ntv, t, training=True)
            return _loss(y), ntv

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

        @jax.jit
        def step(state, t):
            tv, ntv, ov = state
            (loss, ntv), grads = grad_fn(tv, ntv, t)
            tv, ov = opt.stateless_apply(ov, grads, tv)
            return loss, (tv, ntv, ov)

        state = tuple([v.value for v in vs] for vs in (model.trainable_variables, model.non_trainable_variables,
                                                        opt.variables))
        losses = []
        for _ in range(steps):
            loss, state = step(state, x)
            losses.append(float(loss))
        for vs, values in zip((model.trainable_variables, model.non_trainable_variables, opt.variables), state,
                              strict=True):
            for v, value in zip(vs, values, strict=True):
                v.assign(value)
    else:
        import torch

        losses = []
        for _ in range(steps):
            loss = _loss(model(x, training=True))
            model.zero_grad()
            loss.backward()
            weights = list(model.trainable_weights)
            with torch.no_grad():
                opt.apply([v.value.grad for v in weights], weights)
            losses.append(float(loss.detach()))
    assert np.all(np.isfinite(losses))
    assert int(numpy(opt.iterations)) == steps
    return layer


def keras_integration(make, x, tmp_path):
    """All the Keras-contract checks for a random layer that run on every backend; returns the custom-loop
    layer (3 calls made). ``tf_data_map_advances`` is separate (TensorFlow only)."""
    next_call_survives_reload(tmp_path, make, x)
    jit_matches_eager(make, x)
    fit_runs_under_xla(make, x)
    return custom_loop_runs(make, x)
