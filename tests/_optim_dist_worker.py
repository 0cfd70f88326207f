"""``optimizer.gradient_norm`` under ``MirroredStrategy`` over 2 logical CPUs, in a fresh process.

``python -m tests._optim_dist_worker OUT.npz`` (logical devices must be configured before TensorFlow
starts, so ``tests/test_optimizers_distributed.py`` runs this in a subprocess, as ``tests/_dist_worker.py``
does for the other distribution scenarios). Writes, for each case, the norm the optimizer recorded
under the strategy and the float64 norm of the global-batch gradient computed on one device.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH = 16
CASES = {"plain": {}, "clipnorm": {"clipnorm": 1e-3}, "global_clipnorm": {"global_clipnorm": 1e-3}}


def main(out):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    import keras_optreg as ko

    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH, 6)).astype(np.float32)
    y = rng.normal(size=(GLOBAL_BATCH, 1)).astype(np.float32)
    w0 = [rng.normal(size=(6, 1)).astype(np.float32), rng.normal(size=(1,)).astype(np.float32)]

    def model():
        m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(1)])
        m.set_weights(w0)
        return m

    # the one-device gradient of the global-batch mean squared error, at w0
    reference = model()
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(reference(x) - y))
    grads = tape.gradient(loss, reference.trainable_variables)
    results = {"want": np.sqrt(sum(np.sum(g.numpy().astype(np.float64) ** 2) for g in grads))}

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    dist = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH))
    for name, clip in CASES.items():
        with strategy.scope():
            m = model()
            opt = ko.SGD(1e-3, **clip)
            opt.build(m.trainable_variables)

        @tf.function
        def step(batch, m=m, opt=opt):
            def replica_step(xb, yb):
                with tf.GradientTape() as tape:
                    per_example = tf.reduce_mean(tf.square(m(xb) - yb), axis=-1)
                    loss = tf.nn.compute_average_loss(per_example, global_batch_size=GLOBAL_BATCH)
                opt.apply(tape.gradient(loss, m.trainable_variables), m.trainable_variables)

            strategy.run(replica_step, args=batch)

        step(next(iter(dist)))
        results[f"loop/{name}"] = float(opt.gradient_norm.numpy())
        # every replica's copy holds the same value
        results[f"loop/{name}/replicas"] = np.array(
            [float(v.numpy()) for v in strategy.experimental_local_results(opt.gradient_norm.value)])

    # nonfinite="skip": a NaN on replica 0 alone makes the all-reduced gradient NaN; every replica skips
    with strategy.scope():
        m = model()
        opt = ko.Adam(1e-3, nonfinite="skip")
        opt.build(m.trainable_variables)

    @tf.function
    def poisoned_step(batch):
        def replica_step(xb, yb):
            poison = tf.where(tf.distribute.get_replica_context().replica_id_in_sync_group == 0, np.nan, 1.0)
            with tf.GradientTape() as tape:
                loss = tf.nn.compute_average_loss(poison * tf.reduce_mean(tf.square(m(xb) - yb), axis=-1),
                                                  global_batch_size=GLOBAL_BATCH)
            opt.apply(tape.gradient(loss, m.trainable_variables), m.trainable_variables)

        strategy.run(replica_step, args=batch)

    poisoned_step(next(iter(dist)))
    results["skip/skipped_steps"] = int(opt.skipped_steps.numpy())
    results["skip/weights_unchanged"] = all(np.array_equal(v, w) for v, w in zip(m.get_weights(), w0,
                                                                                        strict=True))
    results["skip/norm"] = float(opt.gradient_norm.numpy())

    with strategy.scope():
        m = model()
        m.compile(ko.Adam(1e-3), loss="mse", jit_compile=False)
    m.fit(x, y, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
    results["fit/plain"] = float(m.optimizer.gradient_norm.numpy())
    np.savez(out, **results)


if __name__ == "__main__":
    main(sys.argv[1])
