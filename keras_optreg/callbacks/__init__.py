"""Training diagnostics as TensorBoard event files: :class:`OptimizerMonitor`, and :class:`GradientNormOptimizer`,
which records the gradient norm the monitor logs for any Keras optimizer (keras_optreg's record it themselves).

Every Keras backend; TensorFlow is imported on the TensorFlow backend only. Modules: ``_monitor``
(the callback), ``_gradient_norm`` (the wrapper and the norm), ``_events`` (the event-file writers:
``tf.summary`` on TensorFlow, the ``tensorboard`` package alone elsewhere).
"""

from keras_optreg.callbacks._gradient_norm import GradientNormOptimizer
from keras_optreg.callbacks._monitor import OptimizerMonitor

__all__ = ["GradientNormOptimizer", "OptimizerMonitor"]
