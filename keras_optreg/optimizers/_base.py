"""The machinery every keras_optreg optimizer shares (``_Optimizer``); the rules are in ``_math/optim.py``.

Keras' chain of a step is ``apply`` -> (unscale) -> ``_backend_apply_gradients`` -> (gradient
accumulation) -> ``_clip_gradients`` -> (weight decay) -> ``_backend_update_step``. This class
overrides ``apply`` (checks and dense, float32 gradients), ``_clip_gradients`` (the gradient norm
when clipping) and ``_backend_update_step`` (``nonfinite``, the gradient norm, one step per
variable); a subclass gives each variable's rule, slots and scalars (``_rule``) and builds its slots
(``_build_slots``) in the layout of its Keras twin.
"""

from __future__ import annotations

import contextlib
import warnings

import keras
import numpy as np
from keras import ops

from keras_optreg import _validation as V
from keras_optreg._math import optim as M
from keras_optreg.optimizers import _checks as C

NONFINITE = ("propagate", "skip", "raise")


class _Untracked:
    """Holds a Variable where neither Keras' tracker (``optimizer.variables``, ``.keras`` and
    ``.weights.h5`` files, ``set_weights``) nor TensorFlow's (``tf.train.Checkpoint``) records it:
    both track attributes that are Variables, lists or dicts, not a plain object."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable


def _tensorflow():
    return keras.backend.backend() == "tensorflow"


def _tf():
    """The TensorFlow-only parts (``_tf``: tf.distribute, IndexedSlices, the fused kernel); imported on
    the TensorFlow backend only, so ``import keras_optreg`` loads no TensorFlow under JAX or PyTorch."""
    from keras_optreg.optimizers import _tf as T

    return T


def _multi_replica():
    return _tensorflow() and _tf().multi_replica()


def _fused_available(variable=None):
    return _tensorflow() and _tf().fused.available(variable)


def _dense(g):
    return _tf().dense(g) if _tensorflow() else g


def _sums_of_squares(gradients):
    if _fused_available():
        return _tf().fused.sums_of_squares(gradients)
    return M.sums_of_squares(gradients)


def _norm_pool(gradients):
    """The indices of the gradients whose squares one reduction sums (``_fused.norm_pool``: under an outer XLA step
    on TensorFlow), else none."""
    return _tf().fused.norm_pool(gradients) if _fused_available() else frozenset()


def _pooled(gradients, pool):
    """``[sum of the squares of gradients[i] for i in pool]`` in one blocked sum (``M.pooled_sum_of_squares``); [] if
    none."""
    if not pool:
        return []
    return [M.pooled_sum_of_squares([gradients[i] for i in sorted(pool)])]


def _all_finite(gradients):
    if _fused_available():
        return _tf().fused.all_finite(gradients)
    return M.all_finite(gradients)


class _Optimizer(keras.optimizers.Optimizer):
    """Argument checks, low-precision variables, the ``nonfinite`` option, the gradient norm."""

    #: hyper-parameter attribute -> kind (``_checks._KINDS``), checked in each computing dtype at build
    _HYPER = {}

    def __init__(self, learning_rate, nonfinite="propagate", track_gradient_norm=True, name=None, **kwargs):
        nonfinite = V.one_of("nonfinite", nonfinite, NONFINITE)
        track_gradient_norm = V.boolean("track_gradient_norm", track_gradient_norm)
        super().__init__(learning_rate=C.learning_rate(learning_rate), name=name, **C.base_options(kwargs))
        self.nonfinite = nonfinite
        self.track_gradient_norm = track_gradient_norm
        with keras.name_scope(self.name, caller=self):
            self._gradient_norm = _Untracked(keras.Variable(
                np.float32(np.nan), dtype="float32", trainable=False, name="gradient_norm",
                aggregation="only_first_replica"))

    # -- public state ---------------------------------------------------------------------------

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
        sums its squares in the kernel (``_fused``); with clipping, under a strategy and with
        ``nonfinite="skip"`` the norm is one extra pass over the gradients (and, clipping under a
        multi-replica strategy, one extra all-reduce). With ``track_gradient_norm=False`` it stays NaN
        and no step computes it. On JAX (tracked) it is the last of ``variables`` once built: Keras'
        JAX ``fit`` runs ``stateless_apply`` on ``variables`` alone, and a Variable outside them would
        lose what the jitted step wrote; ``save_own_variables`` / ``load_own_variables`` leave it out,
        so files keep the twin's layout there too, except under Keras' ``LossScaleOptimizer``, which
        saves its inner optimizer's ``variables`` itself: on JAX its store has one entry more than
        the twin's (Keras skips loading a twin's state into it, with its "Skipping variable loading"
        warning).
        """
        return self._gradient_norm.variable

    @property
    def learning_rate(self):
        return self._get_current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value):
        # checked where it is assigned: `opt.learning_rate = nan` is a ValueError, not NaN weights
        keras.optimizers.Optimizer.learning_rate.fset(self, C.learning_rate(value))

    # -- build ----------------------------------------------------------------------------------

    def _check_variable(self, v):
        if not keras.backend.is_float_dtype(v.dtype):
            raise TypeError(f"{type(self).__name__} updates floating-point variables only. Received: "
                            f"variable {C.variable_name(v)!r} of dtype {v.dtype}")

    def build(self, variables):
        for v in variables:
            self._check_variable(v)
        if self.built:
            return
        self._check_hyper_parameters(variables)
        super().build(variables)
        self._build_slots(variables)
        if self.nonfinite == "skip":
            # every replica decides on the same all-reduced gradient: the first replica's count is everyone's
            # the dtype of Keras' own step counter: int64, int32 on JAX without jax_enable_x64
            counter = keras.backend.standardize_dtype(self.iterations.dtype)
            self.skipped_steps = self.add_variable(shape=(), initializer="zeros", dtype=counter,
                                                   aggregation="only_first_replica", name="skipped_steps")
        if self._norm_in_variables():
            self._track_variable(self._gradient_norm.variable)  # last: the twin's layout is the prefix before it

    def _norm_in_variables(self):
        """JAX: ``gradient_norm`` is stepped with ``variables`` (see ``gradient_norm``), never saved."""
        return keras.backend.backend() == "jax" and self.track_gradient_norm

    def _check_hyper_parameters(self, variables):
        dtypes = {C.storage_dtype(v.dtype) for v in variables}
        for dtype in sorted({C.compute_dtype(d) for d in dtypes}):
            for name, kind in {**self._HYPER, "clipnorm": "positive", "global_clipnorm": "positive",
                               "clipvalue": "positive", "loss_scale_factor": "positive"}.items():
                C.in_dtype(name, getattr(self, name), kind, dtype)
        for dtype in sorted(dtypes):  # Keras' weight decay computes in the variable's dtype
            C.in_dtype("weight_decay", self.weight_decay, "kept_nonnegative", dtype, what="applies the weight decay")

    def _build_slots(self, variables):
        """Create the slots, in the order and with the names of the Keras twin's ``build``."""

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        """Keras' method, with the computing dtype: slots and gradient accumulators of a float16/bfloat16
        variable are float32 (EMA averages keep the variable's dtype, as in Keras)."""
        dtype = C.compute_dtype(reference_variable.dtype)
        if name == "average" or dtype == C.storage_dtype(reference_variable.dtype):
            return super().add_variable_from_reference(reference_variable, name=name, initializer=initializer)
        name = f"{C.variable_name(reference_variable).replace('/', '_').replace(':', '_')}_{name or 'var'}"
        with self._colocated(reference_variable):
            return self.add_variable(shape=reference_variable.shape, initializer=initializer, dtype=dtype, name=name,
                                     layout=getattr(reference_variable, "_layout", None))

    def _colocated(self, variable):
        if not _tensorflow():
            return contextlib.nullcontext()
        return self._distribution_strategy.extended.colocate_vars_with(
            variable.value if isinstance(variable, keras.Variable) else variable)

    def _saved_variables(self):
        return [v for v in self.variables if v is not self._gradient_norm.variable]

    def save_own_variables(self, store):
        """Keras' method, without ``gradient_norm`` (in ``variables`` on JAX only)."""
        for i, variable in enumerate(self._saved_variables()):
            store[str(i)] = variable.numpy()

    def load_own_variables(self, store):
        """Keras' method on the variables ``save_own_variables`` writes; with ``nonfinite="skip"`` it also
        loads a state saved from the Keras twin, which lacks ``skipped_steps`` (the last saved variable):
        the counter then restarts at 0."""
        saved = self._saved_variables()
        if self.nonfinite == "skip" and self.built and len(store.keys()) == len(saved) - 1:
            for i, variable in enumerate(saved[:-1]):
                variable.assign(store[str(i)])
            self.skipped_steps.assign(0)
            return
        if len(saved) == len(self.variables):
            return super().load_own_variables(store)
        if len(store.keys()) != len(saved):  # Keras' own refusal, counted without gradient_norm
            warnings.warn(f"Skipping variable loading for optimizer '{self.name}', because it has {len(saved)} "
                          f"variables whereas the saved optimizer has {len(store.keys())} variables. ", stacklevel=2)
            return
        for i, variable in enumerate(saved):
            variable.assign(store[str(i)])

    # -- the step ------------------------------------------------------------------------------

    def apply(self, grads, trainable_variables=None):
        """Keras' ``apply`` after checking every gradient against its variable: as many gradients as
        variables, float dtypes, the variable's shape (no broadcasting); a sparse gradient becomes its
        dense form and a float16/bfloat16 one float32 (see ``_checks``). ``None`` gradients are left to
        Keras (a warning; the variable keeps its value)."""
        grads = list(grads)
        variables = self._trainable_variables if trainable_variables is None else list(trainable_variables)
        if trainable_variables is not None and len(grads) != len(variables):
            raise ValueError(f"Argument `grads` must hold one gradient per variable ({len(variables)} variables). "
                             f"Received: {len(grads)} gradients")
        if len(grads) == len(variables):
            grads = [self._checked(g, v, i) for i, (g, v) in enumerate(zip(grads, variables, strict=True))]
        return super().apply(grads, trainable_variables)

    def _checked(self, g, variable, index):
        self._check_variable(variable)
        if g is None:
            return None
        if _tensorflow() and _tf().is_sparse(g):
            g = _tf().checked_sparse(g, variable, index)
        elif not (ops.is_tensor(g) or isinstance(g, keras.Variable)):
            g = ops.convert_to_tensor(g)
        dtype = keras.backend.standardize_dtype(g.dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise TypeError(f"The gradient of variable {C.variable_name(variable)!r} must be a float tensor. "
                            f"Received: grads[{index}] of dtype {dtype}")
        C.gradient_shape(g.shape, variable, index)
        if _tensorflow():
            g = _tf().ensure_shape(g, variable.shape)  # a runtime check where the static shape is unknown
        return ops.cast(g, C.compute_dtype(variable.dtype)) if dtype in C.LOW_PRECISION else g

    def _clips(self):
        return any(x is not None for x in (self.clipnorm, self.global_clipnorm, self.clipvalue))

    def _clip_gradients(self, grads):
        # Keras calls this once per real step, with the unscaled (and accumulated) gradients, before clipping.
        if self._clips() and self.track_gradient_norm:
            present = [g for g in grads if g is not None]
            if _multi_replica():
                # Keras clips each replica's share before the all-reduce: the global gradient's norm needs
                # an all-reduce of its own (only in this combination).
                present = _tf().all_reduce_sum(present)
            self._gradient_norm.variable.assign(M.global_norm([_dense(g) for g in present]))
        return super()._clip_gradients(grads)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        """One step on every variable; without clipping, records the gradient norm.

        On TensorFlow the gradients are all-reduced first (a no-op outside a strategy), as Keras'
        ``TFOptimizer._backend_update_step`` does, so ``nonfinite`` and the norm see the global gradient.
        """
        record = self.track_gradient_norm and not self._clips()
        learning_rate = C.step_learning_rate(learning_rate)
        if _tensorflow():
            variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
            grads = [_dense(g) for g, _ in self._all_reduce_sum_gradients(list(zip(grads, variables, strict=True)))]
        else:
            variables = list(trainable_variables)
        finite = None
        if self.nonfinite == "raise":
            grads, learning_rate = self._raise_on_nonfinite(grads, variables, learning_rate)
        elif self.nonfinite == "skip":
            pool = _norm_pool(grads)
            squares = _sums_of_squares([g for i, g in enumerate(grads) if i not in pool]) + _pooled(grads, pool)
            total = ops.sum(ops.stack([ops.cast(q, "float32") for q in squares]))
            if record:
                self._gradient_norm.variable.assign(ops.sqrt(total))
                record = False
            # a finite sum of squares means finite gradients; an infinite one may be an overflow: test them
            finite = ops.logical_and(
                ops.cond(ops.isfinite(total), lambda: ops.convert_to_tensor(True), lambda: _all_finite(grads)),
                _usable(learning_rate))
            self.skipped_steps.assign_add(ops.where(finite, 0, 1))
        if _fused_available():  # TensorFlow outside a strategy: a fused step may sum its gradient's squares
            pool = _norm_pool(grads) if record else frozenset()  # float32 ones, summed together under XLA
            squares = [self._step(v, g, learning_rate, finite, record and i not in pool)
                       for i, (g, v) in enumerate(zip(grads, variables, strict=True))]
            if record:
                squares = [q for q in squares if q is not None] + _pooled(grads, pool)
                self._gradient_norm.variable.assign(ops.sqrt(ops.sum(ops.stack(squares))))
            return
        if record:
            self._gradient_norm.variable.assign(M.global_norm(grads))
        if _tensorflow():
            # the cross-replica update of TFOptimizer._distributed_tf_update_step, with `finite` as an argument
            _tf().merge_call(self._distributed_step, self._distribution_strategy,
                             list(zip(grads, variables, strict=True)), learning_rate, finite)
        else:
            for g, v in zip(grads, variables, strict=True):
                self._step(v, g, learning_rate, finite, False)

    def _raise_on_nonfinite(self, grads, variables, learning_rate):
        if _tensorflow():
            return _tf().raise_on_nonfinite(self, grads, variables, learning_rate)
        names = [v.name for v in variables]
        flags = [ops.all(ops.isfinite(g)) for g in grads]
        rate_is_tensor = ops.is_tensor(learning_rate) or isinstance(learning_rate, keras.Variable)
        if rate_is_tensor:
            flags.append(_usable(learning_rate))
        _raise_unless(flags, names)
        return grads, learning_rate

    def _distributed_step(self, distribution, grads_and_vars, learning_rate, finite):
        for g, v in grads_and_vars:
            distribution.extended.update(v, self._step, args=(g, learning_rate, finite, False), group=False)

    def update_step(self, gradient, variable, learning_rate):
        self._step(variable, gradient, learning_rate, None, False)

    def _rule(self, variable, learning_rate):
        """``(rule, slots, scalars)`` of ``variable``'s step: ``rule(g, *slots, *scalars) -> (update, *new_slots)``."""
        raise NotImplementedError

    def _step(self, variable, gradient, learning_rate, finite, with_norm):
        """theta <- theta + update and slots <- new slots, for ``_rule(variable)``, computed in
        ``_checks.compute_dtype``; returns the float32 sum of the gradient's squares when ``with_norm``.

        ``finite``: None (apply) or a boolean scalar (False: every variable and slot keeps its value,
        ``nonfinite="skip"``). On TensorFlow outside a distribution strategy: in eager and graph mode
        TensorFlow's own training kernel where one computes the rule (``_fused.training_kernel``: Adam,
        momentum, SGD; float32/float64, ``finite`` None), else one XLA kernel per variable of at least
        ``_fused.MIN_SIZE`` elements (``keras_optreg._fused``); smaller variables, and every variable under
        a strategy, op by op. The same update either way, rounded differently by about an ulp a step.
        """
        rule, slots, hyper = self._rule(variable, learning_rate)
        dtype = C.storage_dtype(variable.dtype)
        cdt = C.compute_dtype(dtype)
        gradient = ops.cast(gradient, cdt)
        scalars = tuple(C.as_dtype(x, cdt) for x in hyper)
        if _tensorflow():
            kernel = _tf().fused.training_kernel(rule, hyper, variable, finite)
            if kernel is not None:
                return _tf().fused.apply_training_kernel(kernel, variable, slots, gradient, scalars, with_norm)
        if _fused_available(variable):
            return _tf().fused.apply(rule, variable, slots, gradient, scalars, finite, with_norm)
        update, *new_slots = rule(gradient, *slots, *scalars)
        for slot, new in zip(slots, new_slots, strict=True):
            self._put(slot, new, finite)
        if finite is None and dtype == cdt:
            self.assign_add(variable, update)
        else:
            self._put(variable, ops.cast(ops.cast(variable, cdt) + update, dtype), finite)
        return ops.cast(M.sum_of_squares(gradient), "float32") if with_norm else None

    def _put(self, variable, value, finite):
        if finite is not None:
            value = ops.where(finite, value, ops.convert_to_tensor(variable))
        self.assign(variable, value)

    def get_config(self):
        config = super().get_config()
        config["nonfinite"] = self.nonfinite
        config["track_gradient_norm"] = self.track_gradient_norm
        return config


def _usable(learning_rate):
    """A learning rate a step may apply: finite and >= 0 (a Python number is checked already)."""
    if not ops.is_tensor(learning_rate) and not isinstance(learning_rate, keras.Variable):
        return ops.convert_to_tensor(True)
    lr = ops.convert_to_tensor(learning_rate)
    return ops.logical_and(ops.isfinite(lr), lr >= 0)


def _nonfinite_message(flags, names):
    for ok, name in zip(flags, names, strict=False):
        if not bool(ok):
            return f"nonfinite gradient for {name}"
    if len(flags) > len(names) and not bool(flags[-1]):
        return "nonfinite or negative learning_rate at step time"
    return None


def _raise_unless(flags, names):
    """``nonfinite="raise"`` on JAX and PyTorch: a ``FloatingPointError`` naming the first non-finite
    gradient (or the learning rate) before any variable changes. Values known now (eager, PyTorch) are
    checked at once; inside ``jax.jit`` the check is a ``jax.debug.callback`` that raises when the step
    runs, which aborts the computation (JAX reports it as ``JaxRuntimeError`` with this message) so the
    jitted step returns no new state."""
    if keras.backend.backend() == "jax":
        import jax

        if any(isinstance(f, jax.core.Tracer) for f in flags):
            def check(*values):
                message = _nonfinite_message(values, names)
                if message is not None:
                    raise FloatingPointError(message)

            jax.debug.callback(check, *flags)
            return
    message = _nonfinite_message([ops.convert_to_numpy(f) for f in flags], names)
    if message is not None:
        raise FloatingPointError(message)
