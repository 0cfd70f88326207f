"""One XLA kernel per variable and step for the Keras optimizers (TensorFlow backend).

``apply(rule, variable, slots, gradient, scalars, finite)`` runs an update rule of
``_math/optim.py`` -- ``rule(g, *slots, *scalars) -> (update, *new_slots)`` -- and writes the
results to the variable and its slots inside one ``tf.function(jit_compile=True)``. XLA fuses the
rule into a single pass over memory (Adam: read g, theta, s, r; write theta, s, r), where
TensorFlow's graph executor runs one kernel per operation and writes every intermediate to memory.
Under an outer ``jit_compile=True`` function the kernel is inlined into the caller's cluster, so
the arithmetic is the same code in eager, graph and XLA mode. (Running the rule op by op there instead,
without the nested kernel, was measured: ResNet50's first XLA ``fit`` took 16.8 s longer than Keras'
against 2.2 s with the nested kernel, whose translation XLA reuses for every variable of a shape.)

In eager and graph mode, a rule that one of TensorFlow's own training kernels computes takes that kernel
instead (``training_kernel``: Adam, momentum, Nesterov momentum, SGD; any size): no XLA compilation at the
first step, and Eigen's vectorised, threaded loop. They compute the same update in a rearranged order
(``ResourceApplyAdam``: ``s + (g - s)(1 - rho_1)`` for ``rho_1 s + (1 - rho_1) g``, taken for betas >= 1/2 only,
where it cannot cancel), so a step differs from the XLA kernel's by about an ulp; each path is repeatable bit
for bit.

Measured with ``tests/benchmarks/bench_optimizers.py`` (README): in graph mode the per-variable
kernels also run concurrently on TensorFlow's inter-op threads, which is how a step uses both
cores of a CPU; one XLA cluster (an outer ``jit_compile=True``) runs on one.

The variable may be float16 or bfloat16: ``gradient``, ``scalars`` and the slots are then float32 (the
computing dtype), the variable is read, updated in float32 and rounded once when written.
``finite`` is ``None`` (apply the update) or a boolean scalar: when false, every variable and
slot keeps its value bit for bit (``nonfinite="skip"``). With ``with_norm`` the kernel also returns
the sum of the gradient's squares, computed in the same kernel (the optimizer's
``gradient_norm``); under an outer XLA step the optimizer asks that only of gradients outside ``norm_pool`` (not
float32, or of a dynamic size) and sums the others' squares together. The kernel is traced once per rule, shape,
dtype, ``finite is None`` and ``with_norm``; scalars are tensors, so a new learning rate does not retrace.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from keras_optreg._math import optim as M
from keras_optreg.optimizers import _checks as C


def _handle(v):
    return (v.value if isinstance(v, keras.Variable) else v).handle


def _read(handle, dtype):
    return tf.raw_ops.ReadVariableOp(resource=handle, dtype=dtype)


def _write(handle, value):
    tf.raw_ops.AssignVariableOp(resource=handle, value=value)


@tf.function(jit_compile=True, autograph=False)
def _kernel(rule, shape, dtype, variable, slots, gradient, scalars, finite, with_norm):
    # Resource handles, not Variables, are the arguments: a trace keyed on (rule, shape, dtype)
    # serves every variable of that shape, in eager mode and inside any caller's graph.
    del shape  # part of the trace key only
    compute = gradient.dtype  # float32 for a float16/bfloat16 variable (optimizers._checks.compute_dtype)
    old_slots = [_read(s, compute) for s in slots]
    update, *new_slots = rule(gradient, *old_slots, *scalars)
    if finite is None:
        for slot, new in zip(slots, new_slots, strict=True):
            _write(slot, new)
        if dtype == compute:
            tf.raw_ops.AssignAddVariableOp(resource=variable, value=update)
        else:
            _write(variable, tf.cast(tf.cast(_read(variable, dtype), compute) + update, dtype))
    else:
        for slot, new, prev in zip(slots, new_slots, old_slots, strict=True):
            _write(slot, tf.where(finite, new, prev))
        old = _read(variable, dtype)
        _write(variable, tf.where(finite, tf.cast(tf.cast(old, compute) + update, dtype), old))
    # sum of squares of the gradient this kernel reads anyway (the optimizer's gradient norm)
    return tf.cast(M.sum_of_squares(gradient), tf.float32) if with_norm else None


MIN_SIZE = C.FUSED_MIN_SIZE


def _eigen_adam(variable, slots, gradient, scalars):
    # Kingma & Ba Alg. 1 with the bias corrections folded as in M.adam: ResourceApplyAdam computes
    # theta -= lr sqrt(1-b2^t)/(1-b1^t) * s / (sqrt(r) + eps) with s += (g - s)(1 - b1), r += (g^2 - r)(1 - b2);
    # eps = delta sqrt(1-b2^t) makes it M.adam's update (Keras' epsilon-hat form is eps = delta).
    t, lr, rho1, rho2, delta = scalars
    rho1_t, rho2_t = tf.pow(rho1, t), tf.pow(rho2, t)
    tf.raw_ops.ResourceApplyAdam(var=_handle(variable), m=_handle(slots[0]), v=_handle(slots[1]),
                                 beta1_power=rho1_t, beta2_power=rho2_t, lr=lr, beta1=rho1, beta2=rho2,
                                 epsilon=delta * tf.sqrt(1.0 - rho2_t), grad=gradient)


def _eigen_momentum(nesterov):
    def apply(variable, slots, gradient, scalars):
        # v <- alpha v - lr g; theta <- theta + v (look-ahead: theta + alpha v - lr g): M.momentum's ops, in order
        lr, alpha = scalars
        tf.raw_ops.ResourceApplyKerasMomentum(var=_handle(variable), accum=_handle(slots[0]), lr=lr, grad=gradient,
                                              momentum=alpha, use_nesterov=nesterov)
    return apply


def _eigen_sgd(variable, slots, gradient, scalars):
    # theta <- theta - lr g (M.sgd: theta + (-lr) g, the same rounding)
    tf.raw_ops.ResourceApplyGradientDescent(var=_handle(variable), alpha=scalars[0], delta=gradient)


#: the smallest beta_1, beta_2 that ResourceApplyAdam takes: its moment update s + (g - s)(1 - beta) cancels
#: when s is near s - (g - s)(1 - beta), losing a factor 1/beta of relative precision against M.adam's
#: beta s + (1 - beta) g (Hypothesis found beta_2 = 2^-23 off by 2e-4 relative); at beta >= 1/2 the loss is
#: at most a factor 2, within the trajectory tests' tolerance (conformance.cases.base_tolerance)
ADAM_MIN_BETA = 0.5


def _eigen_kernel(rule, scalars):
    """TensorFlow's own training kernel for ``rule`` and its ``scalars`` (as ``_rule`` gives them), or None:
    Adam (not AMSGrad; beta_1 and beta_2 Python numbers of at least ``ADAM_MIN_BETA``), momentum and Nesterov
    momentum, plain SGD. An injected or any other rule (a ``_rule`` override) is not recognised."""
    if rule is M.adam:
        betas = scalars[2:4]
        if all(isinstance(b, (int, float)) and b >= ADAM_MIN_BETA for b in betas):
            return _eigen_adam
        return None
    if rule is M.sgd:
        return _eigen_sgd
    if rule is M.momentum:
        return _eigen_momentum(False)
    if rule is M.nesterov_momentum:
        return _eigen_momentum(True)
    return None


def _sum_of_squares_eager_graph(gradient):
    # one TensorFlow kernel (no XLA compile): l2_loss = sum(g^2) / 2, doubled exactly
    return tf.cast(2.0 * tf.nn.l2_loss(gradient), tf.float32)


def norm_pool(gradients):
    """The indices of ``gradients`` whose squares an outer XLA step sums in one ``_math.optim.pooled_sum_of_squares``
    for ``gradient_norm``: under ``in_xla()``, the float32 gradients of a static size, when there are at least two;
    else none (each kernel then sums its own gradient's squares).

    Why: XLA on CPU compiles every reduction as its own LLVM kernel, so a sum of squares per variable made the
    norm's share of the first step's compile (issue 17, ``tests/benchmarks/bench_first_step.py``). The pooled
    sum reduces each large gradient to a sixteenth (one vectorised column reduction, which compiles faster than the
    blocked sum's slices and runs as fast) and sums all of them in one blocked sum: Adam's XLA step on ResNet50's
    214 gradients compiled in 4.3 s against 5.1 s with a sum in each kernel (Keras' 3.6 s), at the same step time
    (README, issue 17).
    """
    if not in_xla():
        return frozenset()
    pool = [i for i, g in enumerate(gradients) if g.dtype == tf.float32 and g.shape.is_fully_defined()]
    return frozenset(pool) if len(pool) > 1 else frozenset()


def in_xla():
    """Whether the caller is being traced into an XLA computation (an outer ``jit_compile=True``)."""
    if tf.executing_eagerly():
        return False
    from tensorflow.python.ops import control_flow_util  # TensorFlow's own test for XLA contexts

    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def available(variable=None):
    """The XLA kernel applies on the TensorFlow backend outside ``tf.distribute`` strategies, to
    variables of at least ``MIN_SIZE`` elements; otherwise (and under a strategy, whose per-replica
    variables are not plain resources) the rule runs op by op in ``keras.ops``."""
    if keras.backend.backend() != "tensorflow" or tf.distribute.has_strategy():
        return False
    return variable is None or math.prod(d or 0 for d in tuple(variable.shape)) >= MIN_SIZE


def training_kernel(rule, scalars, variable, finite=None):
    """TensorFlow's own training kernel for this step (``_eigen_kernel``), or None: on the TensorFlow backend
    outside ``tf.distribute`` strategies and outside an outer XLA step (whose cluster keeps the XLA kernel,
    compiled once per shape), for a step that always applies (``finite is None``: ``nonfinite="skip"`` keeps
    the XLA kernel) on a float32/float64 variable (a 16-bit one has float32 slots), of any size: one kernel
    launch, no compilation (issue 17's first-step tax in eager and graph mode)."""
    if (not available() or finite is not None or in_xla()
            or C.storage_dtype(variable.dtype) not in ("float32", "float64")):
        return None
    return _eigen_kernel(rule, scalars)


def apply_training_kernel(kernel, variable, slots, gradient, scalars, with_norm=False):
    """Run ``kernel`` (from ``training_kernel``) on ``gradient``, the variable's dtype; returns the float32 sum
    of the gradient's squares when ``with_norm`` (``tf.nn.l2_loss``, one more TensorFlow kernel), else None."""
    gradient = tf.convert_to_tensor(gradient)
    kernel(variable, slots, gradient, scalars)
    return _sum_of_squares_eager_graph(gradient) if with_norm else None


def apply(rule, variable, slots, gradient, scalars, finite=None, with_norm=False):
    """Run ``rule`` on ``gradient`` and write ``variable`` and ``slots`` in one XLA kernel; returns
    ``_math.optim.sum_of_squares(gradient)`` when ``with_norm``, else None."""
    gradient = tf.convert_to_tensor(gradient)
    return _kernel(rule, tuple(gradient.shape), tf.as_dtype(variable.dtype), _handle(variable),
                   tuple(_handle(s) for s in slots), gradient, tuple(scalars), finite, with_norm)


_finite_kernel = tf.function(M.all_finite, jit_compile=True, autograph=False)
_squares_kernel = tf.function(M.sums_of_squares, jit_compile=True, autograph=False)


def sums_of_squares(gradients):
    """``_math.optim.sums_of_squares(gradients)``: one XLA computation where ``available()``."""
    if available():
        return _squares_kernel([tf.convert_to_tensor(g) for g in gradients])
    return M.sums_of_squares(gradients)


def all_finite(gradients):
    """``_math.optim.all_finite(gradients)``: one fused reduction (XLA) where ``available()``."""
    if available():
        return _finite_kernel([tf.convert_to_tensor(g) for g in gradients])
    return M.all_finite(gradients)
