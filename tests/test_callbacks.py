"""OptimizerMonitor: its event files read back and checked against what the optimizer did.

Tests of eqs. (4) and (6) here check the logged rate and gradient norm against the schedule and a
gradient from the backend's autodiff (``tests.backend.value_and_grad``; plain SGD:
:math:`\\Delta\\theta = -\\epsilon g`, eq. 4). The wrapper that gives other optimizers a ``gradient_norm`` is tested in
``tests/test_gradient_norm_optimizer.py``. Every test runs on every backend, except those of the
``tf.summary`` writer's interplay with Keras' ``TensorBoard`` callback (TensorFlow only, marked).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_optreg
from keras_optreg.callbacks import GradientNormOptimizer, OptimizerMonitor
from keras_optreg.callbacks import _events as E
from keras_optreg.demo.report import best_epoch
from keras_optreg_spec import printed, unnumbered
from tests.backend import BACKEND, JIT_COMPILE, TORCH, value_and_grad
from tests.events import histograms, read_points, read_scalars, read_tags, read_with_tensorboard

ROOT = pathlib.Path(__file__).resolve().parents[1]
N, BATCH = 64, 16  # 4 steps per epoch
JIT = JIT_COMPILE  # model.compile's: XLA on TensorFlow, jax.jit on JAX, eager on PyTorch (tests/backend.py)
STEPS_PER_EXECUTION = "Keras' PyTorch trainer takes steps_per_execution=1 only (a ValueError in compile)"
TENSORBOARD_CALLBACK = "tf.summary.record_if: the recording condition Keras' TensorBoard callback sets is TensorFlow's"
PER_STEP = ("optimizer/learning_rate", "optimizer/gradient_norm", "optimizer/update_norm")


def numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def loss_gradients(model, loss):
    """The float64 gradients of ``loss(predict)``, ``predict(x)`` the model's training-mode forward pass."""
    _, grads = value_and_grad(lambda: loss(lambda x: model(x, training=True)), model.trainable_variables)
    return [numpy(g).astype(np.float64) for g in grads]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 5)).astype("float32")
    y = (x @ rng.normal(size=(5, 1)) + 0.1 * rng.normal(size=(N, 1))).astype("float32")
    return x, y


def _model(optimizer, seed=1, **compile_kwargs):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((5,))
    out = keras.layers.Dense(1, name="out")(keras.layers.Dense(4, activation="tanh", name="hidden")(inp))
    model = keras.Model(inp, out)
    model.compile(optimizer=optimizer, loss="mse", **compile_kwargs)
    return model


def _fit(model, log_dir, epochs=2, x=None, y=None, callbacks=(), validation=True, **kwargs):
    if x is None:
        x, y = _data()
    monitor = OptimizerMonitor(log_dir, **kwargs)
    history = model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0,
                        validation_data=(x[:16], y[:16]) if validation else None,
                        callbacks=[monitor, *callbacks])
    return read_scalars(log_dir / "train"), history


@pytest.mark.spec("eq06")
def test_eq06_monitor_learning_rate_is_the_linear_decay_schedule_per_step(tmp_path):
    schedule = keras_optreg.LinearDecay(0.1, 0.01, decay_steps=6)
    scalars, _ = _fit(_model(keras_optreg.SGD(schedule)), tmp_path, epochs=3)
    lr = scalars["optimizer/learning_rate"]
    assert sorted(lr) == list(range(1, 13))  # one value per optimizer step, at iterations after it
    for x, value in lr.items():  # the step that made iterations x ran at k = x - 1
        assert value == pytest.approx(float(printed.eq06_linear_decay(x - 1, 0.1, 0.01, 6)), rel=1e-6), x


@pytest.mark.spec("eq04")
@pytest.mark.parametrize("make", [lambda lr: keras_optreg.SGD(lr),
                                  lambda lr: GradientNormOptimizer(keras.optimizers.SGD(lr))],
                         ids=["keras_optreg", "keras-wrapped"])
def test_eq04_monitor_gradient_norm_and_update_ratio_match_the_first_sgd_step(tmp_path, make):
    """Plain SGD (eq. 4): step 1's gradient from a GradientTape on the first batch; Delta theta = -lr g."""
    lr = 0.05
    x, y = _data()
    model = _model(make(lr))
    weights = [numpy(v) for v in model.trainable_variables]
    grads = loss_gradients(model, lambda predict: keras.losses.MeanSquaredError()(y[:BATCH], predict(x[:BATCH])))
    paths = [v.path for v in model.trainable_variables]
    scalars, _ = _fit(model, tmp_path, epochs=1, x=x, y=y)
    want = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    assert scalars["optimizer/gradient_norm"][1] == pytest.approx(want, rel=1e-5)
    for path, g, w in zip(paths, grads, weights, strict=True):
        ratio = lr * np.linalg.norm(g) / np.linalg.norm(w)
        assert scalars[f"optimizer/update_ratio/{path}"][1] == pytest.approx(ratio, rel=1e-4), path
    # every logged step: ||Delta theta|| = lr ||g|| for plain SGD
    for k, norm in scalars["optimizer/gradient_norm"].items():
        assert scalars["optimizer/update_norm"][k] == pytest.approx(lr * norm, rel=1e-4), k


def test_monitor_counts_skipped_nonfinite_steps_only_where_the_optimizer_skips(tmp_path):
    x, y = _data()
    x[BATCH + 3, 2] = np.nan  # the second batch of each epoch holds a NaN
    model = _model(keras_optreg.SGD(0.05, nonfinite="skip"))
    scalars, _ = _fit(model, tmp_path / "skip", epochs=2, x=x, y=y, validation=False)
    skipped = scalars["optimizer/skipped_steps"]
    assert [skipped[k] for k in range(1, 9)] == [0, 1, 1, 1, 1, 2, 2, 2]
    assert skipped[8] == int(numpy(model.optimizer.skipped_steps))
    assert np.isnan(scalars["optimizer/gradient_norm"][2])
    assert scalars["optimizer/update_norm"][2] == 0.0 and scalars["optimizer/update_norm"][3] > 0.0
    for optimizer in (keras_optreg.SGD(0.05), GradientNormOptimizer(keras.optimizers.SGD(0.05))):
        log_dir = tmp_path / optimizer.name
        scalars, _ = _fit(_model(optimizer), log_dir, epochs=1, validation=False)
        assert "optimizer/gradient_norm" in scalars and "optimizer/skipped_steps" not in scalars, optimizer.name


@pytest.mark.parametrize("freq, steps", [(3, [3, 6, 9, 12]), ("epoch", [1, 5, 9])])
def test_monitor_update_freq_logs_only_the_chosen_steps(tmp_path, freq, steps):
    scalars, _ = _fit(_model(keras_optreg.SGD(0.05)), tmp_path, epochs=3, update_freq=freq)
    for tag in PER_STEP:
        assert sorted(scalars[tag]) == steps, tag


def test_monitor_writes_keras_runs_gap_and_histograms(tmp_path):
    """Runs train/ and validation/ with Keras' epoch tags (one chart, two curves), the gap, weight and update
    histograms every histogram_freq epochs."""
    model = _model(keras_optreg.Adam(0.01))
    train, history = _fit(model, tmp_path, epochs=3, histogram_freq=2)
    val = read_scalars(tmp_path / "validation")
    for name in ("loss",):
        np.testing.assert_allclose([train[f"epoch_{name}"][e] for e in range(3)], history.history[name], rtol=1e-6)
        np.testing.assert_allclose([val[f"epoch_{name}"][e] for e in range(3)], history.history[f"val_{name}"],
                                   rtol=1e-6)
    want = np.array(history.history["val_loss"]) - np.array(history.history["loss"])
    np.testing.assert_allclose([val["epoch_gap"][e] for e in range(3)], want, rtol=1e-5, atol=1e-7)
    assert not any(t.startswith(("optimizer/", "weights/")) for t in read_tags(tmp_path / "validation"))
    tags = read_tags(tmp_path / "train")
    paths = [v.path for v in model.trainable_variables]
    assert {f"weights/{p}" for p in paths} | {f"updates/{p}" for p in paths} <= tags
    hist = [e for e in histograms(tmp_path / "train") if e[0] == f"weights/{paths[0]}"]
    assert [step for _, step, _ in hist] == [0, 2]  # epochs 0 and 2 of 3, histogram_freq=2
    assert sum(c for _, _, c in hist[-1][2]) == numpy(model.trainable_variables[0]).size


def test_monitor_never_replaces_optimizer_methods_even_when_fit_crashes(tmp_path):
    """Issue 14: the monitor wrapped ``optimizer.apply`` for the length of ``fit``; a crash left it installed."""
    class Crash(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            assert "apply" not in vars(self.model.optimizer)  # not even during fit
            if batch == 1:
                raise RuntimeError("crash")

    model = _model(keras_optreg.SGD(0.05))
    monitor = OptimizerMonitor(tmp_path)  # held open: the steps before the crash are on disk, not in a buffer
    x, y = _data()
    with pytest.raises(RuntimeError, match="crash"):
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[monitor, Crash()])
    assert "apply" not in vars(model.optimizer)
    assert sorted(read_scalars(tmp_path / "train")["optimizer/gradient_norm"]) == [1, 2]


@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_monitor_logs_the_unscaled_gradient_norm_and_the_loss_scale_under_mixed_float16(tmp_path, mixed_float16):
    """Issue 14: the loss-scaled norm (x 32768) was logged. Keras wraps the optimizer in a LossScaleOptimizer; the
    norm is the unscaled one (the float32 run's, to float16 rounding) and the scale is its own tag."""
    x, y = _data()
    y = 0.1 * y  # small enough gradients that the first step does not overflow at the initial scale 2**15
    model = _model(keras_optreg.SGD(0.05))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    scalars, _ = _fit(model, tmp_path / "mixed", epochs=1, x=x, y=y, validation=False)
    keras.mixed_precision.set_global_policy("float32")
    reference, _ = _fit(_model(keras_optreg.SGD(0.05)), tmp_path / "float32", epochs=1, x=x, y=y, validation=False)
    # float16 activations: relative error of a few float16 epsilons (2**-10) per layer; 2 layers, margin 4x
    assert scalars["optimizer/gradient_norm"][1] == pytest.approx(reference["optimizer/gradient_norm"][1], rel=1e-2)
    assert scalars["optimizer/loss_scale"][1] == 2.0 ** 15  # LossScaleOptimizer's initial_scale
    assert "optimizer/loss_scale" not in reference


def test_monitor_gradient_accumulation_one_point_per_optimizer_step_and_none_twice(tmp_path):
    """Issue 14: with gradient_accumulation_steps=4 the points were micro-batches and a second fit wrote steps 4-11
    again. Now: one point per optimizer step (x = iterations), the accumulated gradient's norm, and a second fit
    goes on from where the first stopped (``read_scalars`` fails on a step written twice)."""
    x, y = _data()
    model = _model(keras_optreg.SGD(0.05, gradient_accumulation_steps=4))

    def mean_loss(predict):  # the first step's gradient: the mean of 4 micro-batch gradients
        mse = keras.losses.MeanSquaredError()
        return sum(mse(y[i * BATCH:(i + 1) * BATCH], predict(x[i * BATCH:(i + 1) * BATCH])) for i in range(4)) / 4

    want = np.sqrt(sum(np.sum(g ** 2) for g in loss_gradients(model, mean_loss)))
    monitor = OptimizerMonitor(tmp_path)
    for first in (0, 2):  # the second fit goes on at epoch 2, as Keras' epoch numbering expects
        model.fit(x, y, batch_size=BATCH, initial_epoch=first, epochs=first + 2, shuffle=False, verbose=0,
                  callbacks=[monitor])
    scalars = read_scalars(tmp_path / "train")
    assert sorted(scalars["optimizer/gradient_norm"]) == [1, 2, 3, 4]  # 4 fits' worth of 16 batches / 4
    assert scalars["optimizer/gradient_norm"][1] == pytest.approx(want, rel=1e-5)


def test_monitor_step_numbers_equal_keras_tensorboard_in_a_first_fit(tmp_path):
    """x = iterations after the step is Keras' batch step (1, 2, ...) in a model's first fit with one step per
    batch; the documented differences are checked in the next test."""
    model = _model(keras_optreg.SGD(0.05))
    tensorboard = keras.callbacks.TensorBoard(str(tmp_path / "keras"), update_freq=1)
    ours, _ = _fit(model, tmp_path / "ours", epochs=2, callbacks=[tensorboard])
    keras_steps = sorted(read_scalars(tmp_path / "keras" / "train")["batch_loss"])
    assert keras_steps == list(range(1, 9)) == sorted(ours["optimizer/gradient_norm"])


def test_monitor_step_numbers_where_keras_tensorboard_counts_otherwise(tmp_path):
    """Documented: Keras restarts its batch count at each fit (writing steps twice), counts micro-batches under
    accumulation (and executions under steps_per_execution, the next test); the monitor counts optimizer steps."""
    def keras_batch_steps(log_dir):
        return [s for s, _ in read_points(log_dir / "train")["batch_loss"]]

    model = _model(keras_optreg.SGD(0.05))
    tensorboard = keras.callbacks.TensorBoard(str(tmp_path / "k1"), update_freq=1)
    monitor = OptimizerMonitor(tmp_path / "o1")
    for first in (0, 1):
        model.fit(*_data(), batch_size=BATCH, initial_epoch=first, epochs=first + 1, shuffle=False, verbose=0,
                  callbacks=[tensorboard, monitor])
    assert keras_batch_steps(tmp_path / "k1") == [1, 2, 3, 4, 1, 2, 3, 4]
    assert sorted(read_scalars(tmp_path / "o1" / "train")["optimizer/gradient_norm"]) == list(range(1, 9))

    model = _model(keras_optreg.SGD(0.05, gradient_accumulation_steps=2))
    ours, _ = _fit(model, tmp_path / "o3", epochs=1, validation=False,
                   callbacks=[keras.callbacks.TensorBoard(str(tmp_path / "k3"), update_freq=1)])
    assert keras_batch_steps(tmp_path / "k3") == [1, 2, 3, 4] and sorted(ours["optimizer/gradient_norm"]) == [1, 2]


@pytest.mark.skipif(TORCH, reason=STEPS_PER_EXECUTION)
def test_monitor_step_numbers_where_keras_tensorboard_counts_executions(tmp_path):
    model = _model(keras_optreg.SGD(0.05), steps_per_execution=2)
    ours, _ = _fit(model, tmp_path / "o2", epochs=1, validation=False,
                   callbacks=[keras.callbacks.TensorBoard(str(tmp_path / "k2"), update_freq=1)])
    keras_steps = [s for s, _ in read_points(tmp_path / "k2" / "train")["batch_loss"]]
    assert keras_steps == [1, 2] and sorted(ours["optimizer/gradient_norm"]) == [2, 4]


@pytest.mark.skipif(TORCH, reason=STEPS_PER_EXECUTION)
def test_monitor_steps_per_execution_one_point_per_execution(tmp_path):
    """Issue 14: steps_per_execution > 1 was refused. With 3 steps per execution and 4 batches per epoch the
    executions end at steps 3, 4, 7, 8; the norm is the execution's last step's (the same trajectory run one
    step per execution gives it), the rate its first step's, the update norm over its steps."""
    schedule = keras_optreg.LinearDecay(0.1, 0.01, decay_steps=8)
    one, _ = _fit(_model(keras_optreg.SGD(schedule)), tmp_path / "one", epochs=2, validation=False)
    model = _model(keras_optreg.SGD(schedule), steps_per_execution=3)
    first = [numpy(v) for v in model.trainable_variables]
    ours, _ = _fit(model, tmp_path / "three", epochs=2, validation=False)
    assert sorted(ours["optimizer/gradient_norm"]) == [3, 4, 7, 8]
    for step, start in ((3, 0), (4, 3), (7, 4), (8, 7)):
        assert ours["optimizer/gradient_norm"][step] == pytest.approx(one["optimizer/gradient_norm"][step], rel=1e-5)
        assert ours["optimizer/learning_rate"][step] == pytest.approx(float(schedule(start)), rel=1e-6)
    # the first execution's update: plain SGD, so ||sum of 3 steps|| <= sum of the 3 steps' norms (triangle)
    assert ours["optimizer/update_norm"][3] <= sum(one["optimizer/update_norm"][k] for k in (1, 2, 3)) * (1 + 1e-6)
    assert ours["optimizer/update_norm"][3] > one["optimizer/update_norm"][3]
    assert all(np.isfinite(v) for v in first[0].ravel())


@pytest.mark.tensorflow_only(TENSORBOARD_CALLBACK)
@pytest.mark.parametrize("order", ["keras_first", "monitor_first"])
def test_monitor_writes_whatever_keras_tensorboard_records(tmp_path, order):
    """Issue 14: Keras' TensorBoard(update_freq=4) sets the thread's record condition; the monitor wrote none of
    its 8 per-step points under it. Both orders of the callbacks."""
    tensorboard = keras.callbacks.TensorBoard(str(tmp_path / "keras"), update_freq=4)
    x, y = _data()
    monitor = OptimizerMonitor(tmp_path / "ours")
    callbacks = [tensorboard, monitor] if order == "keras_first" else [monitor, tensorboard]
    _model(keras_optreg.SGD(0.05)).fit(x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
                                       callbacks=callbacks)
    ours = read_scalars(tmp_path / "ours" / "train")
    for tag in PER_STEP:
        assert sorted(ours[tag]) == list(range(1, 9)), tag
    assert sorted(read_scalars(tmp_path / "keras" / "train")["batch_loss"]) == [4, 8]  # Keras' own choice holds


@pytest.mark.tensorflow_only(TENSORBOARD_CALLBACK)
def test_monitor_works_after_a_keras_tensorboard_crashed_mid_fit(tmp_path):
    """Issue 14: Keras' TensorBoard(update_freq=0) crashes in fit (ZeroDivisionError in its record condition) and
    leaves that condition set for the thread; later monitors failed with the same ZeroDivisionError."""
    tensorboard = keras.callbacks.TensorBoard(str(tmp_path / "keras"), update_freq=0)
    x, y = _data()
    try:
        with pytest.raises(ZeroDivisionError):
            _model(keras_optreg.SGD(0.05)).fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[tensorboard])
        scalars, _ = _fit(_model(keras_optreg.SGD(0.05)), tmp_path / "ours", epochs=1)
        assert sorted(scalars["optimizer/gradient_norm"]) == [1, 2, 3, 4]
    finally:  # undo what the crashed callback left on this thread, for the tests after this one
        with contextlib.suppress(Exception):
            while tensorboard._prev_summary_state:
                tensorboard._pop_writer()


def test_monitor_works_with_an_xla_compiled_train_step(tmp_path):
    model = _model(keras_optreg.SGD(0.05), jit_compile=JIT)
    scalars, _ = _fit(model, tmp_path, epochs=1)
    assert sorted(scalars["optimizer/gradient_norm"]) == [1, 2, 3, 4]
    for k, norm in scalars["optimizer/gradient_norm"].items():
        assert np.isfinite(norm) and scalars["optimizer/update_norm"][k] == pytest.approx(0.05 * norm, rel=1e-4)


def test_monitor_refuses_an_optimizer_without_gradient_norm_when_fit_starts(tmp_path):
    model = _model(keras.optimizers.SGD(0.05))
    with pytest.raises(ValueError, match="GradientNormOptimizer"):
        _fit(model, tmp_path, epochs=1)
    assert not (tmp_path / "train").exists()


def test_monitor_refuses_an_optimizer_that_does_not_track_its_gradient_norm(tmp_path):
    model = _model(keras_optreg.SGD(0.05, track_gradient_norm=False))
    with pytest.raises(ValueError, match=r"track_gradient_norm=True.*Received: SGD\(track_gradient_norm=False\)"):
        _fit(model, tmp_path, epochs=1)
    assert not (tmp_path / "train").exists()


@pytest.mark.parametrize("writer", [E.RecordFileWriter, E.SummaryWriter], ids=["tensorboard-package", "tf.summary"])
def test_both_event_writers_are_read_back_by_tensorboard(tmp_path, writer):
    """Each writer (the tensorboard package's records, and tf.summary, the fallback where only TensorFlow is
    installed) on this backend: TensorBoard's multiplexer reads the scalars (float32, as written) and the
    histogram buckets (``histogram_buckets``: 30 equal-width buckets over [min, max], every value counted)."""
    values = np.arange(12, dtype=np.float64)
    w = writer(str(tmp_path / "run"))
    w.write(3, {"a": 0.1, "b": -2.5}, {"h": values})
    w.write(4, {"a": 0.2})
    w.close()
    run = read_with_tensorboard(tmp_path)["run"]
    assert run["a"] == ("scalars", {3: float(np.float32(0.1)), 4: float(np.float32(0.2))})
    assert run["b"] == ("scalars", {3: -2.5})
    plugin, series = run["h"]
    assert plugin == "histograms" and sorted(series) == [3]
    np.testing.assert_array_equal(series[3], E.histogram_buckets(values))
    assert series[3][:, 2].sum() == values.size and series[3][0, 0] == 0.0 and series[3][-1, 1] == 11.0


TENSORBOARD = ("tensorboard", "tensorboard.compat.proto.summary_pb2")


def _hide(monkeypatch, *modules):
    for m in modules:  # a None entry in sys.modules makes `import m` raise ImportError
        monkeypatch.setitem(sys.modules, m, None)


def test_monitor_writer_choice_per_backend_and_what_is_installed(monkeypatch):
    """TensorFlow backend: tf.summary. Elsewhere: the tensorboard package, else tf.summary, else ImportError (the
    construction-time error of OptimizerMonitor itself is a row of tests/_bad_callbacks.py)."""
    assert E.writer_class("tensorflow") is E.SummaryWriter
    for backend in ("jax", "torch"):
        assert E.writer_class(backend) is E.RecordFileWriter
        with monkeypatch.context() as m:
            _hide(m, *TENSORBOARD)
            assert E.writer_class(backend) is E.SummaryWriter
        with monkeypatch.context() as m, pytest.raises(ImportError, match=r"pip install tensorboard.*or TensorFlow"):
            _hide(m, *TENSORBOARD, "tensorflow")
            E.writer_class(backend)


@pytest.mark.skipif(BACKEND == "tensorflow", reason="on the TensorFlow backend TensorFlow is the backend itself")
def test_monitor_and_wrapper_train_and_write_without_importing_tensorflow(tmp_path):
    """Issue 16: keras_optreg.callbacks imported TensorFlow whatever KERAS_BACKEND said. A fresh process on this
    backend: import, fit with the monitor (keras_optreg's optimizer and the wrapped Keras one), write, and no
    TensorFlow module is loaded; the events are then read back here."""
    code = textwrap.dedent(f"""
        import sys
        import keras, numpy as np
        import keras_optreg
        from keras_optreg.callbacks import GradientNormOptimizer, OptimizerMonitor
        x = np.linspace(-1, 1, 32, dtype="float32").reshape(16, 2)
        wrapped = GradientNormOptimizer(keras.optimizers.SGD(0.1))
        for name, opt in (("ours", keras_optreg.SGD(0.1)), ("wrapped", wrapped)):
            model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            model.compile(opt, loss="mse")
            model.fit(x, x[:, :1], batch_size=8, epochs=1, verbose=0, validation_data=(x, x[:, :1]),
                      callbacks=[OptimizerMonitor({str(tmp_path)!r} + "/" + name, histogram_freq=1)])
        loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
        print("TF_MODULES", loaded)
    """)
    env = dict(os.environ, KERAS_BACKEND=BACKEND, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TF_MODULES []" in proc.stdout, proc.stdout
    for name in ("ours", "wrapped"):
        scalars = read_scalars(tmp_path / name / "train")
        assert sorted(scalars["optimizer/gradient_norm"]) == [1, 2] and all(
            np.isfinite(v) for v in scalars["optimizer/gradient_norm"].values()), name


def test_monitor_config_round_trips(tmp_path):
    monitor = OptimizerMonitor(str(tmp_path), update_freq=10, histogram_freq=1)
    config = keras.saving.serialize_keras_object(monitor)
    again = keras.saving.deserialize_keras_object(config)
    assert isinstance(again, OptimizerMonitor) and again.get_config() == monitor.get_config()


# -- early stopping: Keras' EarlyStopping and the demo's i* against GBC16 Alg. 7.1 (spec) -----------------

_LOSSES = st.lists(st.one_of(st.integers(0, 4).map(float), st.floats(0.0, 10.0, width=32)), min_size=1, max_size=25)


@pytest.mark.spec("early_stopping")
@given(errors=_LOSSES, patience=st.integers(1, 6))
def test_early_stopping_keras_callback_matches_gbc16_algorithm_7_1(errors, patience):
    """Keras' ``EarlyStopping(monitor="val_loss", mode="min", min_delta=0, patience=p)`` is Alg. 7.1 with n = 1.

    Mapping, from both sources: Keras improves on ``current - min_delta < best`` (strict, ``best``
    starts as None = the algorithm's v = inf), resets ``wait`` to 0 on improvement and otherwise
    increments it, and stops at the end of 0-based epoch e once ``wait >= patience`` (its
    ``epoch > 0`` guard never binds for p >= 1). The algorithm (``keras_optreg_spec.unnumbered.early_stopping``)
    counts steps i = 1, 2, ... (here epochs), sets i* = i on ``v' < v``, j += 1 otherwise, and
    stops before the next block once j = p. So i* = ``best_epoch + 1``; i_stop = ``stopped_epoch + 1``
    when Keras stopped, else the number of epochs; equal values are no improvement in both. Not
    covered (they differ): p = 0 (the algorithm runs no step, Keras never stops while improving),
    and non-finite losses (Keras takes a first NaN/inf as its best, the algorithm does not).
    """
    i_star, v_best, i_stop = unnumbered.early_stopping(errors, patience, n=1)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", mode="min", min_delta=0, patience=patience)
    stopper.set_model(_STOP_MODEL)
    _STOP_MODEL.stop_training = False
    stopper.on_train_begin()
    epochs = 0
    for epoch, value in enumerate(errors):
        stopper.on_epoch_end(epoch, {"val_loss": value})
        epochs += 1
        if _STOP_MODEL.stop_training:
            break
    assert stopper.best_epoch + 1 == i_star
    assert float(stopper.best) == v_best
    assert (stopper.stopped_epoch + 1 if _STOP_MODEL.stop_training else epochs) == i_stop
    # the demo's i* helper over the epochs Keras ran is the same epoch
    assert best_epoch(errors[:epochs]) == i_star


@pytest.mark.spec("early_stopping")
@given(errors=_LOSSES)
def test_early_stopping_demo_best_epoch_is_alg_7_1_without_stopping(errors):
    """``demo.report.best_epoch`` is i* of Alg. 7.1 when patience never runs out (p = number of epochs)."""
    i_star, _, i_stop = unnumbered.early_stopping(errors, len(errors), n=1)
    assert i_stop == len(errors)
    assert best_epoch(errors) == i_star


_STOP_MODEL = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
