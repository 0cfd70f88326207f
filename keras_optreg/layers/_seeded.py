r"""The random layers' state: a ``keras.random.SeedGenerator`` per layer, saved with the layer.

Every random layer holds ``seed_generator``, a ``keras.random.SeedGenerator`` whose state is the
pair ``(seed, counter)``; each drawing call reads it and advances the counter by one (Keras'
``SeedGenerator.next``), and the draws are stateless functions of that pair
(``keras_optreg._random``): deterministic given the seed, the same eager, in ``tf.function``, under
XLA and in ``tf.data``. As in Keras, the state is in ``layer.variables`` (and
``non_trainable_variables``) but not in ``layer.weights``, so the weights line up with the Keras
twin's. Unlike Keras, the state is saved: ``save_own_variables`` writes it as the entry
``"rng_state"`` beside the weights (``.keras`` and ``.weights.h5`` files, hence
``keras.callbacks.BackupAndRestore``), and on TensorFlow it is a checkpoint dependency named
``rng_state`` (``tf.train.Checkpoint``). A store without that entry (a file written from the Keras
twin, which keeps no state) loads the weights and leaves the state as it is; a file written by
keras_optreg 0.1, which kept the state as the layer's only weight ``"0"``, loads it as the state.

An unseeded layer draws its seed from Python's ``random`` (Keras' ``make_default_seed``), which
``keras.utils.set_random_seed`` seeds: the same seed in every process.

TensorFlow-only pieces, each behind a backend check: under a ``tf.distribute`` strategy with several
replicas every replica advances its copy of the state (all copies stay equal) and xors its replica
id (times an odd constant) into the seed of its draw, so replicas draw independent masks and replica
0 draws what one device would draw on its slice; and :func:`compiled` runs a layer's training
transform as one XLA kernel.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from keras_optreg import _random, _validation

_REPLICA_MIX = -1640531535  # 0x9E3779B1 (golden-ratio odd constant) as a signed int32


def _seed(seed):
    seed = _validation.seed("seed", seed)
    if seed is not None and not 0 <= seed < 2 ** 31:
        _validation._fail("seed", seed, "in [0, 2**31)")
    return seed


def finite_in(name, value, dtype):
    """``value`` (a float) must stay finite when rounded to ``dtype``, the dtype the layer computes in."""
    with np.errstate(over="ignore"):
        rounded = float(np.asarray(value, dtype=keras.backend.standardize_dtype(dtype)).astype(np.float64))
    if not math.isfinite(rounded):
        _validation._fail(name, value, f"finite in the layer's compute dtype {dtype}")
    return value


def tensorflow_backend():
    return keras.backend.backend() == "tensorflow"


def compiled(fn):
    """``fn`` as one XLA kernel on TensorFlow (``tf.function(jit_compile=True)``, traced per static
    argument, dtype and shape); ``fn`` itself on other backends (JAX compiles the whole step anyway).

    Under a plain ``tf.function`` (Keras' ``jit_compile=False``, ``tf.data``'s map) the hash RNG and the
    gather-based image math would otherwise run as dozens of small TensorFlow ops, several times the
    time of their compiled form; inside an outer ``jit_compile`` function the kernel is inlined. Only
    the state's read and advance stay outside.
    """
    if not tensorflow_backend():
        return fn
    import tensorflow as tf

    return tf.function(fn, jit_compile=True)


class SeededLayer(keras.layers.Layer):
    """Base of the random layers: ``seed`` validated, ``seed_generator`` created, its state saved."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = _seed(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    @property
    def rng_state(self):
        """The ``(seed, counter)`` Variable of ``seed_generator``."""
        return self.seed_generator.state

    def next_state(self):
        """The state to draw from (replica-mixed under a ``tf.distribute`` strategy); advances the counter."""
        state = self.seed_generator.next()
        if tensorflow_backend():
            import tensorflow as tf

            replica = tf.distribute.get_replica_context()
            if replica is not None and replica.num_replicas_in_sync > 1:
                rid = tf.cast(replica.replica_id_in_sync_group, tf.int32)
                state = _random.mix(state, rid * tf.constant(_REPLICA_MIX, tf.int32))
        return state

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store["rng_state"] = self.seed_generator.state

    def load_own_variables(self, store):
        keys = list(store.keys())
        if "rng_state" not in keys and keys == ["0"] and not self.weights:
            keys = ["rng_state"]  # a file from keras_optreg 0.1, which kept the state as the layer's one weight
            store = {"rng_state": store["0"]}
        if "rng_state" in keys:
            self.seed_generator.state.assign(store["rng_state"])
        super().load_own_variables({k: store[k] for k in keys if k != "rng_state"})

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        """TensorFlow's object graph (``tf.train.Checkpoint``): the state as the dependency ``rng_state``.

        Added here rather than by ``_track_trackable``, which would also enter the Variable in Keras'
        tracker and so in ``weights``. Other backends never call this method."""
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            children["rng_state"] = self.seed_generator.state
        return children

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
