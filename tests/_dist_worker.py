"""Distribution scenarios run in a fresh process (``python -m tests._dist_worker SCENARIO OUT.npz ...``).

Logical CPU devices must be configured before TensorFlow initialises its devices, which the pytest
process has already done, so ``tests/test_distributed.py`` runs each scenario here, in a subprocess
with cwd = the repository root, and compares the arrays written to ``OUT.npz``.

Scenarios (``_SCENARIOS``):
  mirrored     fit under ``MirroredStrategy`` over 2 logical CPUs and on one device, same global batch,
               for Adam + LinearDecay and SGD(momentum) + LinearDecay, synchronized BatchNormalization;
               plus one training call of BatchNormalization per replica (synchronized and not).
  checkpoint   N steps under the strategy, ``.keras`` save, load on one device, M more steps (and back).
  multiworker  one worker of a ``MultiWorkerMirroredStrategy`` (TF_CONFIG from the parent); the chief
               also trains the one-device reference.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

N_SAMPLES, GLOBAL_BATCH, EPOCHS = 64, 16, 2  # 4 steps per epoch, 8 optimizer steps
STEPS = N_SAMPLES // GLOBAL_BATCH * EPOCHS


def logical_cpus(n):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, size=(N_SAMPLES, 5, 5, 2)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) + 0.1 * rng.normal(size=N_SAMPLES)).astype(np.float32)[:, None]
    return x, y


def dataset(x, y, start=0, stop=None):
    return tf.data.Dataset.from_tensor_slices((x[start:stop], y[start:stop])).batch(GLOBAL_BATCH)


def make_model(synchronized=True):
    import keras

    import keras_optreg as ko

    reg = ko.regularizers.Tikhonov(1e-3)
    inp = keras.Input((5, 5, 2))
    # No bias before BatchNormalization: its exact gradient is 0, so Adam would normalise rounding noise.
    h = keras.layers.Conv2D(4, 3, use_bias=False, kernel_initializer=ko.initializers.GlorotUniform(seed=1),
                            kernel_regularizer=reg)(inp)
    h = ko.layers.BatchNormalization(momentum=0.8, synchronized=synchronized)(h)
    h = keras.layers.Flatten()(keras.layers.ReLU()(h))
    out = keras.layers.Dense(1, kernel_initializer=ko.initializers.TorchDefault(seed=2), kernel_regularizer=reg)(h)
    return keras.Model(inp, out)


def make_optimizer(name):
    import keras_optreg as ko

    schedule = ko.LinearDecay(1e-2, 1e-3, decay_steps=STEPS)
    if name == "adam":
        return ko.Adam(schedule)
    if name == "sgd":
        return ko.SGD(schedule, momentum=0.9)
    raise ValueError(name)


def compiled(model, optimizer):
    # jit_compile=False on both sides: under MirroredStrategy over 2 logical CPUs, model.fit with
    # jit_compile=True fails in TF 2.21 / Keras 3.15 even for a plain Keras model and Adam
    # (InvalidArgumentError, "tf.Variable on a different device", an XLA known issue).
    model.compile(optimizer=optimizer, loss="mse", jit_compile=False)
    return model


def weights(model, prefix):
    """The model's variables by position (layer names differ between model instances)."""
    return {f"{prefix}/{i:02d}_{v.name}": np.asarray(v.numpy()) for i, v in enumerate(model.weights)}


def fit(strategy, opt_name, initial, x, y, synchronized=True, epochs=EPOCHS):
    with strategy.scope():
        model = make_model(synchronized)
        model.set_weights(initial)
        compiled(model, make_optimizer(opt_name))
    hist = model.fit(dataset(x, y), epochs=epochs, shuffle=False, verbose=0)
    return model, hist.history["loss"]


def custom_loop(strategy, opt_name, initial, x, y):
    """``strategy.run`` training loop: mean squared error over the *global* batch plus the Tikhonov
    penalties divided by the number of replicas (the replicas' gradients are summed)."""
    with strategy.scope():
        model = make_model()
        model.set_weights(initial)
        optimizer = make_optimizer(opt_name)
        optimizer.build(model.trainable_variables)

    def replica_step(xb, yb):
        with tf.GradientTape() as tape:
            per_example = tf.reduce_mean(tf.square(model(xb, training=True) - yb), axis=-1)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH)
            loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    @tf.function
    def train_step(batch):
        strategy.run(replica_step, args=batch)

    for _ in range(EPOCHS):
        for batch in strategy.experimental_distribute_dataset(dataset(x, y)):
            train_step(batch)
    return model


def scenario_mirrored(out):
    devices = logical_cpus(2)
    x, y = data()
    model0 = make_model()
    initial = model0.get_weights()
    strategy = tf.distribute.MirroredStrategy(devices)
    single = tf.distribute.get_strategy()  # the default (one-device) strategy
    result = weights(model0, "initial")
    for opt in ("adam", "sgd"):
        m1, loss1 = fit(single, opt, initial, x, y)
        m2, loss2 = fit(strategy, opt, initial, x, y)
        result.update(weights(m1, f"{opt}/single"))
        result.update(weights(m2, f"{opt}/mirrored"))
        result[f"{opt}/single/loss"], result[f"{opt}/mirrored/loss"] = np.array(loss1), np.array(loss2)
        result[f"{opt}/mirrored/iterations"] = np.array(int(m2.optimizer.iterations.numpy()))
    m3, _ = fit(strategy, "adam", initial, x, y, synchronized=False)  # per-replica statistics
    result.update(weights(m3, "adam/mirrored_unsynchronized"))
    result.update(weights(custom_loop(single, "adam", initial, x, y), "loop/single"))
    result.update(weights(custom_loop(strategy, "adam", initial, x, y), "loop/mirrored"))

    # One training call of BatchNormalization on a global batch split across the 2 replicas.
    import keras_optreg as ko

    xb = x[:GLOBAL_BATCH, :, :, :1] * 3.0 + 1.0
    result["bn/x"] = xb
    dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(xb))
    for sync in (True, False):
        with strategy.scope():
            layer = ko.layers.BatchNormalization(momentum=0.5, synchronized=sync)
            layer.build(xb.shape)

        @tf.function
        def step(t, layer=layer):
            return strategy.run(lambda u: layer(u, training=True), args=(t,))

        per_replica = step(next(iter(dist)))
        parts = strategy.experimental_local_results(per_replica)
        result[f"bn/sync={sync}/y"] = np.concatenate([np.asarray(p) for p in parts])
        result[f"bn/sync={sync}/moving_mean"] = layer.moving_mean.numpy()
        result[f"bn/sync={sync}/moving_variance"] = layer.moving_variance.numpy()

    # Dropout: one training call per replica, and the same seed on one device on replica 0's slice.
    ones = np.ones((GLOBAL_BATCH, 256), np.float32)
    with strategy.scope():
        dropout = ko.layers.Dropout(0.5, seed=11)
    dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors(ones))
    parts = strategy.experimental_local_results(
        tf.function(lambda t: strategy.run(lambda u: dropout(u, training=True), args=(t,)))(next(iter(dist))))
    result["dropout/mirrored"] = np.concatenate([np.asarray(p) for p in parts])
    result["dropout/rng_state"] = dropout.rng_state.numpy()
    result["dropout/single_slice0"] = np.asarray(ko.layers.Dropout(0.5, seed=11)(ones[:GLOBAL_BATCH // 2],
                                                                                  training=True))
    np.savez(out, **result)


CHECKPOINT_ROUTES = (("mirrored", "single"), ("single", "mirrored"),
                     ("mirrored", "single", "mirrored"), ("single", "mirrored", "single"))


def scenario_checkpoint(out, tmpdir):
    """N = 2 steps in the route's first context, ``.keras`` save and load through the others, M = 2 more
    steps in the last; the reference trains N + M steps in the last context without interruption."""
    import keras

    devices = logical_cpus(2)
    x, y = data()
    initial = make_model().get_weights()
    contexts = {"mirrored": tf.distribute.MirroredStrategy(devices), "single": tf.distribute.get_strategy()}
    half = N_SAMPLES // 2
    result = {}
    for route in CHECKPOINT_ROUTES:
        tag = "-".join(route)
        with contexts[route[0]].scope():
            model = compiled(make_model(), make_optimizer("adam"))
            model.set_weights(initial)
        model.fit(dataset(x, y, 0, half), epochs=1, shuffle=False, verbose=0)
        saved = [v.numpy() for v in model.weights + model.optimizer.variables]
        for i, name in enumerate(route[1:]):
            path = os.path.join(tmpdir, f"{tag}-{i}.keras")
            model.save(path)
            with contexts[name].scope():
                model = keras.models.load_model(path)
        restored = [v.numpy() for v in model.weights + model.optimizer.variables]
        for i, (a, b) in enumerate(zip(saved, restored, strict=True)):
            result[f"{tag}/saved/{i:02d}"], result[f"{tag}/restored/{i:02d}"] = a, b
        model.fit(dataset(x, y, half), epochs=1, shuffle=False, verbose=0)
        result.update(weights(model, f"{tag}/continued"))
        with contexts[route[-1]].scope():
            ref = compiled(make_model(), make_optimizer("adam"))
            ref.set_weights(initial)
        ref.fit(dataset(x, y), epochs=1, shuffle=False, verbose=0)
        result.update(weights(ref, f"{tag}/uninterrupted"))
    np.savez(out, **result)


def scenario_multiworker(out):
    config = json.loads(os.environ["TF_CONFIG"])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any op: it configures collectives
    x, y = data()
    initial = make_model().get_weights()  # seeded initializers: identical on both workers
    # A custom loop: Keras 3.15's model.fit fails under MultiWorkerMirroredStrategy before training
    # (TensorFlowTrainer._maybe_symbolic_build reduces the first PerReplica batch eagerly; keras-team/keras#20585).
    model = custom_loop(strategy, "adam", initial, x, y)
    if config["task"]["index"] == 0:
        ref = custom_loop(tf.distribute.get_strategy(), "adam", initial, x, y)
        result = {**weights(model, "multiworker"), **weights(ref, "single")}
        result["replicas"] = np.array(strategy.num_replicas_in_sync)
        np.savez(out, **result)


_SCENARIOS = {"mirrored": scenario_mirrored, "checkpoint": scenario_checkpoint, "multiworker": scenario_multiworker}

if __name__ == "__main__":
    name, *args = sys.argv[1:]
    _SCENARIOS[name](*args)
