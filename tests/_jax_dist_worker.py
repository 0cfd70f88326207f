"""JAX ``keras.distribution.DataParallel`` scenarios, run in a fresh process:
``python -m tests._jax_dist_worker OUT.npz`` (``tests/test_distributed_jax.py`` starts it).

``XLA_FLAGS=--xla_force_host_platform_device_count=2`` must be set before JAX initialises its CPU
backend, which the pytest process may already have done, so this module sets it (and
``KERAS_BACKEND=jax``) before importing JAX or Keras. It imports no TensorFlow module of its own.

Every scenario trains or calls the same thing twice: on one device (no distribution) and under
``DataParallel`` over the 2 host devices with the same *global* batch, and writes both to ``OUT.npz``.
A scenario that raises writes ``<scenario>/error`` (the exception's type and message) instead, and
the others still run, so the test names what fails.

Scenarios:
  plain     fit: Conv2D + BatchNormalization (default arguments) + Dense, Tikhonov on both kernels,
            ``keras_optreg.Adam(LinearDecay)``.
  full      fit: the issue's model, ``plain`` with ``BatchNormalization(synchronized=True)`` and a
            ``Dropout`` before the last layer.
  batch8    ``plain`` on one device with batch 8 (a device's slice of the global batch), the
            counter-example the tolerance must reject.
  dropout   one training call of ``Dropout(0.5)`` on a (16, 256) batch of ones under ``jax.jit``
            (``stateless_call``), the input sharded over the batch axis under ``DataParallel``.
The model, data and schedule are ``tests/_dist_worker.py``'s (MirroredStrategy), so both backends'
tests derive the same tolerance from the same ``STEPS``.
"""

from __future__ import annotations

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = " ".join(filter(None, [os.environ.get("XLA_FLAGS"),
                                                 "--xla_force_host_platform_device_count=2"]))

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_optreg as ko  # noqa: E402

N_SAMPLES, GLOBAL_BATCH, EPOCHS = 64, 16, 2  # as tests/_dist_worker.py: 4 steps per epoch, 8 optimizer steps
STEPS = N_SAMPLES // GLOBAL_BATCH * EPOCHS
SHARDINGS = []  # what the compiler chose for the first layer's input, one entry per compilation


class ShardingProbe(keras.layers.Layer):
    """The identity; records the sharding XLA gives its input when the step is compiled."""

    def call(self, x):
        jax.debug.inspect_array_sharding(x, callback=lambda s: SHARDINGS.append(str(getattr(s, "spec", s))))
        return x


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=(N_SAMPLES, 5, 5, 2)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) + 0.1 * rng.normal(size=N_SAMPLES)).astype(np.float32)[:, None]
    return x, y


def make_model(synchronized=False, dropout=False):
    reg = ko.regularizers.Tikhonov(1e-3)
    inp = keras.Input((5, 5, 2))
    h = ShardingProbe()(inp)
    # No bias before BatchNormalization: its exact gradient is 0, so Adam would normalise rounding noise.
    h = keras.layers.Conv2D(4, 3, use_bias=False, kernel_initializer=ko.initializers.GlorotUniform(seed=1),
                            kernel_regularizer=reg)(h)
    h = ko.layers.BatchNormalization(momentum=0.8, synchronized=synchronized)(h)
    h = keras.layers.Flatten()(keras.layers.ReLU()(h))
    if dropout:
        h = ko.layers.Dropout(0.25, seed=3)(h)
    out = keras.layers.Dense(1, kernel_initializer=ko.initializers.TorchDefault(seed=2), kernel_regularizer=reg)(h)
    model = keras.Model(inp, out)
    model.compile(optimizer=ko.Adam(ko.LinearDecay(1e-2, 1e-3, decay_steps=STEPS)), loss="mse", jit_compile=True)
    return model


def weights(model, prefix):
    """Trainable and non-trainable variables by position (the paths differ between model instances)."""
    return {f"{prefix}/{i:02d}_{v.name}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}


def fit(distribution, initial, x, y, batch_size=GLOBAL_BATCH, **model_kwargs):
    SHARDINGS.clear()
    scope = distribution.scope() if distribution is not None else _nullscope()
    with scope:
        model = make_model(**model_kwargs)
        model.set_weights(initial)
        hist = model.fit(x, y, batch_size=batch_size, epochs=EPOCHS, shuffle=False, verbose=0)
        variable_devices = {len(v.value.sharding.device_set) for v in model.weights + model.optimizer.variables}
    return model, hist.history["loss"], variable_devices, list(SHARDINGS)


class _nullscope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def scenario_fit(result, tag, distribution, x, y, **model_kwargs):
    model0 = make_model(**model_kwargs)
    initial = model0.get_weights()
    result.update(weights(model0, f"{tag}/initial"))
    m1, loss1, _, _ = fit(None, initial, x, y, **model_kwargs)
    m2, loss2, devices, shardings = fit(distribution, initial, x, y, **model_kwargs)
    result.update(weights(m1, f"{tag}/single"))
    result.update(weights(m2, f"{tag}/parallel"))
    result[f"{tag}/single/loss"], result[f"{tag}/parallel/loss"] = np.array(loss1), np.array(loss2)
    result[f"{tag}/parallel/iterations"] = np.array(int(m2.optimizer.iterations.numpy()))
    result[f"{tag}/parallel/variable_devices"] = np.array(sorted(devices))
    result[f"{tag}/parallel/input_sharding"] = np.array(shardings)
    return initial


def scenario_dropout(result, distribution):
    ones = np.ones((GLOBAL_BATCH, 256), np.float32)

    def call(layer, x):
        step = jax.jit(lambda state, t: layer.stateless_call([], state, t, training=True))
        y, state = step([v.value for v in layer.non_trainable_variables], x)
        return np.asarray(y), [np.asarray(s) for s in state]

    single = ko.layers.Dropout(0.5, seed=11)
    single.build(ones.shape)
    y1, state1 = call(single, ones)
    with distribution.scope():
        layer = ko.layers.Dropout(0.5, seed=11)
        layer.build(ones.shape)
        sharded = jax.device_put(ones, distribution.get_data_layout(ones.shape).backend_layout)
        y2, state2 = call(layer, sharded)
    result["dropout/single"], result["dropout/parallel"] = y1, y2
    result["dropout/single/rng_state"], result["dropout/parallel/rng_state"] = state1[0], state2[0]
    result["dropout/input_devices"] = np.array(len(sharded.sharding.device_set))
    result["dropout/input_sharding"] = np.array(str(sharded.sharding.spec))


def main(out):
    assert len(jax.devices()) == 2, jax.devices()
    distribution = keras.distribution.DataParallel(devices=jax.devices())
    x, y = data()
    result = {"devices": np.array(len(jax.devices()))}
    scenarios = {
        "plain": lambda: scenario_fit(result, "plain", distribution, x, y),
        "full": lambda: scenario_fit(result, "full", distribution, x, y, synchronized=True, dropout=True),
        "dropout": lambda: scenario_dropout(result, distribution),
    }
    initial = None
    for name, run in scenarios.items():
        try:
            value = run()
            initial = value if name == "plain" else initial
        except Exception as exc:  # noqa: BLE001  recorded for the test to report, not hidden
            result[f"{name}/error"] = np.array(f"{type(exc).__name__}: {exc}")
    if initial is not None:
        m, _, _, _ = fit(None, initial, x, y, batch_size=GLOBAL_BATCH // 2)
        result.update(weights(m, "batch8/single"))
    np.savez(out, **result)


if __name__ == "__main__":
    main(*sys.argv[1:])
