"""The TensorFlow-only parts of the optimizer step, imported by ``_base`` on the TensorFlow backend only.

``tf.distribute`` (replica contexts, the all-reduce of gradients, the cross-replica update), sparse
``tf.IndexedSlices`` gradients, TensorFlow's test for an XLA context, the per-variable fused kernel
(``keras_optreg._fused``) and ``nonfinite="raise"`` by ``tf.debugging.check_numerics``. Nothing here
is imported under ``KERAS_BACKEND=jax`` or ``torch`` (``tests/test_backends_all.py``).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from keras_optreg import _fused
from keras_optreg.optimizers import _checks as C

fused = _fused


def multi_replica():
    """In a replica context of a ``tf.distribute`` strategy with more than one replica."""
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return False
    return tf.distribute.get_strategy().num_replicas_in_sync > 1


#: whether the step is being traced into an XLA computation (``jit_compile=True``)
in_xla = _fused.in_xla


def is_sparse(g):
    return isinstance(g, tf.IndexedSlices)


def dense(g):
    """A sparse gradient (``tf.IndexedSlices``, an Embedding's) as its dense form: rows not looked up
    get a zero gradient and repeated rows add up, as in the spec's rules."""
    return tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g


def checked_sparse(g, variable, index):
    dense_shape = tf.get_static_value(g.dense_shape)
    C.gradient_shape(tuple(int(d) for d in dense_shape) if dense_shape is not None else (None, *g.values.shape[1:]),
                     variable, index)
    return dense(g)


def ensure_shape(g, shape):
    """``g`` with a run-time shape check where its static shape is not fully known."""
    return g if g.shape.is_fully_defined() else tf.ensure_shape(g, shape)


def all_reduce_sum(values):
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values)


def merge_call(fn, strategy, *args):
    """The cross-replica update of Keras' ``TFOptimizer._distributed_tf_update_step``."""
    tf.__internal__.distribute.interim.maybe_merge_call(fn, strategy, *args)


def raise_on_nonfinite(optimizer, grads, variables, learning_rate):
    """``tf.debugging.check_numerics`` on every gradient and the learning rate; every write waits for
    every check, so a NaN in one gradient leaves all variables unchanged."""
    if in_xla():
        raise ValueError(
            f"{type(optimizer).__name__}(nonfinite='raise') cannot raise inside an XLA-compiled step on TensorFlow: "
            "XLA drops TensorFlow's runtime checks, so a NaN would silently reach the weights. Compile the step "
            "without XLA (`model.compile(..., jit_compile=False)`, `tf.function(jit_compile=False)`) or use "
            "nonfinite='skip'. Received: nonfinite='raise' in a jit_compile=True step")
    grads = [tf.debugging.check_numerics(g, f"nonfinite gradient for {v.name}")
             for g, v in zip(grads, variables, strict=True)]
    checks = list(grads)
    rate_is_tensor = ops.is_tensor(learning_rate) or isinstance(learning_rate, keras.Variable)
    if rate_is_tensor:
        learning_rate = tf.debugging.check_numerics(tf.convert_to_tensor(learning_rate),
                                                    "nonfinite learning_rate at step time")
        checks += [learning_rate, tf.debugging.assert_non_negative(
            learning_rate, message="negative learning_rate at step time")]
    with tf.control_dependencies([c for c in checks if c is not None]):
        grads = [tf.identity(g) for g in grads]
        if rate_is_tensor:
            learning_rate = tf.identity(learning_rate)
    return grads, learning_rate
