"""Keras optimizers for lecture eqs. (4)-(18); the update rules live in ``_math/optim.py``.

Every class subclasses ``keras.optimizers.Optimizer`` and implements only ``build`` and
``update_step``, so ``clipnorm``, ``global_clipnorm``, EMA, gradient accumulation and
``LossScaleOptimizer`` keep working. On TensorFlow, outside a ``tf.distribute`` strategy, each
variable of at least ``_fused.MIN_SIZE`` elements takes its step as one XLA kernel
(``keras_optreg/_fused.py``), in eager and graph mode too; the arithmetic is the same rule.

``nonfinite`` (every optimizer):

* ``"propagate"`` (default): the update is applied as computed; a NaN/Inf gradient flows into
  the variables and slots, as in Keras and the lecture. Default because it costs nothing; "skip"
  adds one reduction over every gradient, which every variable's write must wait for, and a
  select per variable and slot: measured with ``tests/benchmarks/bench_optimizers.py`` (Adam,
  1e6-5e7 float32 parameters, eager, graph and XLA) at 1.2-2.2x the step time of "propagate"
  (README).
* ``"skip"``: when any gradient (after clipping) holds NaN or Inf, every variable and every slot
  is left bit-for-bit unchanged and ``skipped_steps`` is incremented. ``iterations`` still
  counts the step (so schedules advance with calls to ``apply``, and Adam's ``t`` is
  ``iterations + 1``); EMA of the model weights, if enabled, still runs on unchanged weights.
* ``"raise"``: ``tf.debugging.check_numerics`` on every gradient: an ``InvalidArgumentError``
  naming the variable in eager mode and inside ``tf.function``. Under ``jit_compile=True`` XLA
  has no such check: the op is dropped and the step behaves like ``"propagate"``. TensorFlow
  backend only (``ValueError`` at construction on another backend).
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_optreg import _fused
from keras_optreg import _validation as V
from keras_optreg._math import optim as M

_NESTEROV = functools.partial(M.momentum, nesterov=True)


def _dense_values(g):
    """A gradient with the same Euclidean norm as ``g``: an ``IndexedSlices`` as its rows, duplicates summed."""
    if isinstance(g, tf.IndexedSlices):
        unique, index = tf.unique(g.indices)
        return tf.math.unsorted_segment_sum(g.values, index, tf.shape(unique)[0])
    return g

NONFINITE = ("propagate", "skip", "raise")


def _check_learning_rate(learning_rate):
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule) or callable(learning_rate):
        return learning_rate
    return V.finite_nonnegative("learning_rate", learning_rate)


class _Untracked:
    """Holds a Variable where neither Keras' tracker (``optimizer.variables``, ``.keras`` and
    ``.weights.h5`` files, ``set_weights``) nor TensorFlow's (``tf.train.Checkpoint``) records it:
    both track attributes that are Variables, lists or dicts, not a plain object."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable


def _multi_replica():
    """In a replica context of a ``tf.distribute`` strategy with more than one replica."""
    if keras.backend.backend() != "tensorflow" or not tf.distribute.has_strategy() \
            or tf.distribute.in_cross_replica_context():
        return False
    return tf.distribute.get_strategy().num_replicas_in_sync > 1


class _Optimizer(keras.optimizers.Optimizer):
    """Shared machinery: argument checks, float-only variables, the ``nonfinite`` option, the gradient norm.

    A subclass gives, per variable, its update rule, slots and scalars (``_rule``); this class applies
    it (``_step``): the fused kernel or op by op, ``nonfinite`` and the gradient norm.
    """

    def __init__(self, learning_rate, nonfinite="propagate", name=None, **kwargs):
        nonfinite = V.one_of("nonfinite", nonfinite, NONFINITE)
        if nonfinite == "raise" and keras.backend.backend() != "tensorflow":
            raise ValueError("Argument `nonfinite='raise'` needs the TensorFlow backend (tf.debugging.check_numerics)"
                             f". Received: nonfinite='raise' with KERAS_BACKEND={keras.backend.backend()}")
        super().__init__(learning_rate=_check_learning_rate(learning_rate), name=name, **kwargs)
        self.nonfinite = nonfinite
        with keras.name_scope(self.name, caller=self):
            self._gradient_norm = _Untracked(keras.Variable(
                np.float32(np.nan), dtype="float32", trainable=False, name="gradient_norm",
                aggregation="only_first_replica"))

    @property
    def gradient_norm(self):
        r"""The global norm :math:`\|g\|_2 = \sqrt{\sum_v \|g_v\|_2^2}` of the gradient the last step applied.

        A float32 scalar ``keras.Variable``, written inside the step (eager, ``tf.function``, XLA), NaN
        before the first step and NaN/Inf when a gradient is non-finite. :math:`g` is the gradient
        the update rule receives before ``clipnorm`` / ``global_clipnorm`` / ``clipvalue``: unscaled
        (after ``loss_scale_factor`` or ``keras.optimizers.LossScaleOptimizer``, which steps the inner
        optimizer only on finite gradients), under ``gradient_accumulation_steps`` the averaged
        gradient of the real step (micro-batches leave it unchanged), and under a ``tf.distribute``
        strategy the all-reduced gradient of the global batch. Not in ``variables``, not saved (the
        weights layout is Keras' twin's). Without clipping, a variable that takes the fused kernel
        sums its squares in the kernel's pass (``_fused``); with clipping, under a strategy and with
        ``nonfinite="skip"`` the norm is one extra pass over the gradients (and, clipping under a
        multi-replica strategy, one extra all-reduce). On JAX it is written by ``apply`` outside a
        stateless (jitted) step only; ``model.fit`` there leaves it NaN.
        """
        return self._gradient_norm.variable

    def _record_gradient_norm(self, norm):
        self._gradient_norm.variable.assign(norm)

    def _clips(self):
        return any(x is not None for x in (self.clipnorm, self.global_clipnorm, self.clipvalue))

    def build(self, variables):
        for v in variables:
            if not keras.backend.is_float_dtype(v.dtype):
                raise TypeError(f"{type(self).__name__} updates floating-point variables only. Received: "
                                f"variable {v.path!r} of dtype {v.dtype}")
        if self.built:
            return
        super().build(variables)
        self.skipped_steps = self.add_variable(shape=(), initializer="zeros", dtype="int64", name="skipped_steps")

    def _slots(self, variables, *names):
        return [self.add_optimizer_variables(variables, n) for n in names]

    # -- the step: Keras' chain is apply -> _backend_apply_gradients -> _clip_gradients -> _backend_update_step

    def _clip_gradients(self, grads):
        # Keras calls this once per real step, with the unscaled (and accumulated) gradients, before clipping.
        if self._clips():
            present = [g for g in grads if g is not None]
            if _multi_replica():
                # Keras clips each replica's share before the all-reduce: the global gradient's norm needs
                # an all-reduce of its own (only in this combination).
                present = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, present)
            self._record_gradient_norm(M.global_norm([_dense_values(g) for g in present]))
        return super()._clip_gradients(grads)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        """One step on every variable; without clipping, records the gradient norm here.

        On TensorFlow the gradients are all-reduced first (a no-op outside a strategy), as Keras'
        ``TFOptimizer._backend_update_step`` does, so ``nonfinite`` and the norm see the global gradient.
        """
        record = not self._clips()
        if keras.backend.backend() == "tensorflow":
            variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
            grads = [g for g, _ in self._all_reduce_sum_gradients(list(zip(grads, variables, strict=True)))]
        else:
            variables = list(trainable_variables)
        finite = None
        if self.nonfinite == "raise":
            grads = [tf.debugging.check_numerics(g, f"nonfinite gradient for {v.name}")
                     for g, v in zip(grads, variables, strict=True)]
        elif self.nonfinite == "skip":
            finite = _fused.all_finite(grads)
            self.skipped_steps.assign_add(ops.where(finite, 0, 1))
        if _fused.available():  # TensorFlow outside a strategy: each step may sum its gradient's squares
            squares = [self._step(v, g, learning_rate, finite, record) for g, v in zip(grads, variables, strict=True)]
            if record:
                self._record_gradient_norm(ops.sqrt(ops.sum(ops.stack(
                    [ops.cast(q, "float32") for q in squares]))))
            return
        if record:
            self._record_gradient_norm(M.global_norm([_dense_values(g) for g in grads]))
        if keras.backend.backend() == "tensorflow":
            # the cross-replica update of TFOptimizer._distributed_tf_update_step, with `finite` as an argument
            tf.__internal__.distribute.interim.maybe_merge_call(
                self._distributed_step, self._distribution_strategy, list(zip(grads, variables, strict=True)),
                learning_rate, finite)
        else:
            for g, v in zip(grads, variables, strict=True):
                self._step(v, g, learning_rate, finite, False)

    def _distributed_step(self, distribution, grads_and_vars, learning_rate, finite):
        for g, v in grads_and_vars:
            distribution.extended.update(v, self._step, args=(g, learning_rate, finite, False), group=False)

    def update_step(self, gradient, variable, learning_rate):
        self._step(variable, gradient, learning_rate, None, False)

    def _rule(self, variable, learning_rate):
        """``(rule, slots, scalars)`` of ``variable``'s step: ``rule(g, *slots, *scalars) -> (update, *new_slots)``."""
        raise NotImplementedError

    def _step(self, variable, gradient, learning_rate, finite, with_norm):
        """theta <- theta + update, slots <- new_slots, for ``_rule(variable)``; returns the sum of the
        gradient's squares when ``with_norm``, else None.

        ``finite``: None (apply) or a boolean scalar (False: every variable and slot keeps its value,
        ``nonfinite="skip"``). Outside a distribution strategy, one XLA kernel per variable of at least
        ``_fused.MIN_SIZE`` elements (``keras_optreg._fused``); smaller variables, and every variable
        under a strategy, op by op. The same arithmetic either way.
        """
        rule, slots, scalars = self._rule(variable, learning_rate)
        dt = variable.dtype
        gradient = ops.cast(gradient, dt)
        scalars = tuple(ops.cast(x, dt) for x in scalars)
        if _fused.available(variable):
            return _fused.apply(rule, variable, slots, gradient, scalars, finite, with_norm)
        update, *new_slots = rule(gradient, *slots, *scalars)
        for slot, new in zip(slots, new_slots, strict=True):
            self._put(slot, new, finite)
        if finite is not None:
            self._put(variable, variable + update, finite)
        else:
            self.assign_add(variable, update)
        return M.sum_of_squares(_dense_values(gradient)) if with_norm else None

    def _put(self, variable, value, finite):
        if finite is not None:
            value = ops.where(finite, value, ops.convert_to_tensor(variable))
        self.assign(variable, value)

    def get_config(self):
        config = super().get_config()
        config["nonfinite"] = self.nonfinite
        return config

@keras.saving.register_keras_serializable(package="keras_optreg")
class SGD(_Optimizer):
    r"""Minibatch SGD, lecture eqs. (4)-(5) (GBC16 Alg. 8.1), with momentum eqs. (7)-(9) (Alg. 8.2)
    and Nesterov momentum (Alg. 8.3).

    .. math:: g = \frac{1}{m}\sum_i \nabla_\theta L(f(x_i;\theta), y_i), \qquad
              \theta \leftarrow \theta - \epsilon g

    With ``momentum`` :math:`\alpha > 0`: :math:`v \leftarrow \alpha v - \epsilon g`,
    :math:`\theta \leftarrow \theta + v` (the corrected eq. 9; the lecture prints
    :math:`\theta - v`). With ``nesterov=True`` the variables hold the look-ahead point
    :math:`\phi = \theta + \alpha v`, updated by :math:`\phi \leftarrow \phi + \alpha v - \epsilon g`
    (Bengio et al. 2013, as Keras does).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, nonfinite="propagate",
                 name="keras_optreg_sgd", **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, name=name, **kwargs)
        self.momentum = V.unit_interval("momentum", momentum)
        self.nesterov = V.boolean("nesterov", nesterov)

    def build(self, variables):
        built = self.built
        super().build(variables)
        if not built and self.momentum > 0:
            (self._v,) = self._slots(variables, "velocity")

    def _rule(self, variable, learning_rate):
        if self.momentum > 0:
            v = self._v[self._get_variable_index(variable)]
            return (_NESTEROV if self.nesterov else M.momentum), (v,), (learning_rate, self.momentum)
        return M.sgd, (), (learning_rate,)

    def get_config(self):
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov)
        return config


@keras.saving.register_keras_serializable(package="keras_optreg")
class Adagrad(_Optimizer):
    r"""AdaGrad, GBC16 Alg. 8.4 (the algorithm the lecture's adaptive-rate slide introduces).

    .. math:: r \leftarrow r + g \odot g, \qquad
              \theta \leftarrow \theta - \frac{\epsilon}{\delta + \sqrt{r}} \odot g

    :math:`r_0 = 0` and :math:`\delta` (``epsilon``) outside the square root, as in GBC16; Keras'
    ``Adagrad`` starts from :math:`r_0 = 0.1` and puts ``epsilon`` inside the root, :math:`\sqrt{r + \delta}`
    (``python -m keras_optreg.conformance --only adagrad``).
    """

    def __init__(self, learning_rate=0.001, epsilon=1e-7, nonfinite="propagate", name="keras_optreg_adagrad",
                 **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, name=name, **kwargs)
        self.epsilon = V.finite_positive("epsilon", epsilon)

    def build(self, variables):
        built = self.built
        super().build(variables)
        if not built:
            (self._r,) = self._slots(variables, "accumulator")

    def _rule(self, variable, learning_rate):
        return M.adagrad, (self._r[self._get_variable_index(variable)],), (learning_rate, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="keras_optreg")
class RMSprop(_Optimizer):
    r"""RMSProp, lecture eqs. (10)-(12) corrected, GBC16 Alg. 8.5.

    .. math:: r \leftarrow \rho r + (1-\rho) g \odot g, \qquad
              \theta \leftarrow \theta - \frac{\epsilon}{\sqrt{\delta + r}} \odot g

    :math:`\delta` (``epsilon``) inside the square root, as in GBC16 and Keras 3 (PyTorch adds it outside).

    With ``momentum`` :math:`\alpha > 0`: GBC16 Alg. 8.6, RMSProp with Nesterov momentum,

    .. math:: \tilde\theta = \theta + \alpha v, \quad
              g = \nabla_\theta J(\tilde\theta), \quad
              r \leftarrow \rho r + (1-\rho) g \odot g, \quad
              v \leftarrow \alpha v - \frac{\epsilon}{\sqrt{r}} \odot g, \quad
              \theta \leftarrow \theta + v

    in the look-ahead form of Bengio et al. (2013), as ``SGD(nesterov=True)``: the variables hold
    :math:`\phi = \theta + \alpha v` (so Keras' gradient is taken at the interim point) and, with
    :math:`u = \epsilon g / \sqrt{\delta + r}`, :math:`v \leftarrow \alpha v - u`,
    :math:`\phi \leftarrow \phi + \alpha v - u`. :math:`\theta = \phi - \alpha v`. The
    box of Alg. 8.6 has no :math:`\delta`; it is kept inside the square root as in Alg. 8.5 (no
    division by zero), and :math:`\delta \to 0` recovers the box. A ``velocity`` slot is built
    only when ``momentum > 0``. ``keras.optimizers.RMSprop(momentum=...)`` uses classical (heavy
    ball) momentum, not Nesterov: the two differ.
    """

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-6, momentum=0.0, nonfinite="propagate",
                 name="keras_optreg_rmsprop", **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, name=name, **kwargs)
        self.rho = V.unit_interval("rho", rho)
        self.epsilon = V.finite_positive("epsilon", epsilon)
        self.momentum = V.unit_interval("momentum", momentum)

    def build(self, variables):
        built = self.built
        super().build(variables)
        if not built:
            (self._r,) = self._slots(variables, "accumulator")
            if self.momentum > 0:
                (self._v,) = self._slots(variables, "velocity")

    def _rule(self, variable, learning_rate):
        i = self._get_variable_index(variable)
        if self.momentum > 0:
            return M.rmsprop_nesterov, (self._r[i], self._v[i]), (learning_rate, self.rho, self.epsilon, self.momentum)
        return M.rmsprop, (self._r[i],), (learning_rate, self.rho, self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(rho=self.rho, epsilon=self.epsilon, momentum=self.momentum)
        return config


@keras.saving.register_keras_serializable(package="keras_optreg")
class Adam(_Optimizer):
    r"""Adam, lecture eqs. (13)-(18) corrected, GBC16 Alg. 8.7 = Kingma & Ba (2015) Alg. 1.

    .. math:: s \leftarrow \rho_1 s + (1-\rho_1) g, \quad
              r \leftarrow \rho_2 r + (1-\rho_2) g \odot g, \quad
              \hat s = \frac{s}{1-\rho_1^t}, \quad \hat r = \frac{r}{1-\rho_2^t}, \quad
              \theta \leftarrow \theta - \epsilon \frac{\hat s}{\sqrt{\hat r} + \delta}

    with :math:`\rho_1, \rho_2, \delta` = ``beta_1, beta_2, epsilon`` and :math:`t` =
    ``iterations + 1``.

    Differences from ``keras.optimizers.Adam``: Keras uses Kingma & Ba's "epsilon-hat" form
    :math:`\theta \leftarrow \theta - \epsilon_t s / (\sqrt{r} + \hat\delta)` with
    :math:`\epsilon_t = \epsilon \sqrt{1-\rho_2^t}/(1-\rho_1^t)`, i.e.

    .. math:: \epsilon \frac{\hat s}{\sqrt{\hat r} + \hat\delta/\sqrt{1-\rho_2^t}}

    so Keras' ``epsilon`` equals this class's :math:`\delta` times :math:`\sqrt{1-\rho_2^t}`: the
    two agree only when :math:`\delta \ll \sqrt{\hat r}` or as :math:`t \to \infty`. At
    :math:`t = 1` with :math:`\rho_2 = 0.999`, Keras' effective :math:`\delta` is about 31.6 times
    larger. Keras' default ``epsilon`` is 1e-7; here it is 1e-8 (Kingma & Ba, GBC16).
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8, nonfinite="propagate",
                 name="keras_optreg_adam", **kwargs):
        super().__init__(learning_rate, nonfinite=nonfinite, name=name, **kwargs)
        self.beta_1 = V.unit_interval("beta_1", beta_1)
        self.beta_2 = V.unit_interval("beta_2", beta_2)
        self.epsilon = V.finite_positive("epsilon", epsilon)

    def build(self, variables):
        built = self.built
        super().build(variables)
        if not built:
            self._s, self._r = self._slots(variables, "first_moment", "second_moment")

    def _rule(self, variable, learning_rate):
        i = self._get_variable_index(variable)
        return M.adam, (self._s[i], self._r[i]), (self.iterations + 1, learning_rate, self.beta_1, self.beta_2,
                                                  self.epsilon)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
        return config
