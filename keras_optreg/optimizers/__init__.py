"""Keras optimizers for lecture eqs. (4)-(18); the update rules live in ``_math/optim.py``.

``SGD``, ``Adagrad``, ``RMSprop`` and ``Adam`` subclass ``keras.optimizers.Optimizer``
(``_base._Optimizer``), so ``clipnorm``, ``global_clipnorm``, EMA, gradient accumulation and
``LossScaleOptimizer`` keep working; each takes its Keras twin's arguments in Keras' order and
builds its twin's weights layout (``optimizer.variables``: the same number, order and shapes,
so a state saved from the twin loads), with these deviations: the lecture's rules (each class's
docstring), ``skipped_steps`` (only with ``nonfinite="skip"``), float32 slots for
float16/bfloat16 variables. On TensorFlow, outside a ``tf.distribute`` strategy, each variable
takes its step as one kernel (``keras_optreg/_fused.py``): in eager and graph mode TensorFlow's own
training kernel where one computes the rule (Adam with betas >= 1/2, momentum, SGD; float32/float64,
``nonfinite`` not ``"skip"``), else, from ``_fused.MIN_SIZE`` elements, one XLA kernel (also inlined
into an outer ``jit_compile=True`` step). The same update as the rule, rounded differently by about
an ulp a step.
``optimizer.gradient_norm`` holds the global norm of the gradient of the last step.

Every gradient is checked against its variable in ``apply`` (one per variable, float, the
variable's shape: no broadcasting); a sparse gradient (``tf.IndexedSlices``, from ``Embedding``)
is applied as its dense form, on every path. A float16/bfloat16 variable's update is computed
in float32 (``_checks``). Hyper-parameters are checked at construction and again, rounded to
the dtype that computes, at build.

``nonfinite`` (every optimizer): a step is non-finite when a gradient (after clipping) holds
NaN or Inf, or when the learning rate the step uses is NaN, Inf or negative (a value assigned
to ``learning_rate`` is checked at once; a schedule's or a callable's value at step time).

* ``"propagate"`` (default): the update is applied as computed; a NaN/Inf gradient flows into
  the variables and slots, as in Keras and the lecture. Default because it costs nothing; "skip"
  adds one pass over every gradient, which every variable's write must wait for, and a select
  per variable and slot (``tests/benchmarks/bench_optimizers.py``, README).
* ``"skip"``: a non-finite step leaves every variable and every slot bit-for-bit unchanged and
  increments ``skipped_steps``. ``iterations`` still counts the step (so schedules advance with
  calls to ``apply``, and Adam's ``t`` is ``iterations + 1``); EMA of the model weights, if
  enabled, still runs on unchanged weights.
* ``"raise"``: ``tf.debugging.check_numerics`` on every gradient and the learning rate: an
  ``InvalidArgumentError`` naming the variable, in eager mode and inside ``tf.function``, before
  any variable changes. XLA has no runtime errors (it drops TensorFlow's checks), so a step
  traced under ``jit_compile=True`` (``tf.function`` or ``model.fit``; on a GPU ``compile``'s
  default ``jit_compile="auto"`` is XLA) raises a ``ValueError`` when it is traced instead of
  silently propagating. TensorFlow backend only (``ValueError`` at construction on another backend).
"""

from keras_optreg.optimizers._adam import Adam
from keras_optreg.optimizers._adaptive import Adagrad, RMSprop
from keras_optreg.optimizers._base import NONFINITE
from keras_optreg.optimizers._sgd import SGD

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "NONFINITE"]
