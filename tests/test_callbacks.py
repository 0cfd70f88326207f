"""OptimizerMonitor: its event files read back and checked against what the optimizer did."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

import keras_optreg
from keras_optreg.callbacks import OptimizerMonitor
from keras_optreg.demo.report import best_epoch
from keras_optreg_spec import unnumbered
from tests.events import read_scalars, read_tags

N, BATCH = 64, 16  # 4 steps per epoch


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 5)).astype("float32")
    y = (x @ rng.normal(size=(5, 1)) + 0.1 * rng.normal(size=(N, 1))).astype("float32")
    return x, y


def _model(optimizer, seed=1):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((5,))
    out = keras.layers.Dense(1)(keras.layers.Dense(4, activation="tanh")(inp))
    model = keras.Model(inp, out)
    model.compile(optimizer=optimizer, loss="mse")
    return model


def _fit(model, log_dir, epochs=2, x=None, y=None, **kwargs):
    if x is None:
        x, y = _data()
    monitor = OptimizerMonitor(log_dir, **kwargs)
    history = model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0,
                        validation_data=(x[:16], y[:16]), callbacks=[monitor])
    return read_scalars(log_dir), history


def test_monitor_learning_rate_is_the_linear_decay_schedule_per_batch(tmp_path):
    schedule = keras_optreg.LinearDecay(0.1, 0.01, decay_steps=6)
    scalars, _ = _fit(_model(keras_optreg.SGD(schedule)), tmp_path, epochs=3)
    lr = scalars["optimizer/learning_rate"]
    assert sorted(lr) == list(range(12))  # one value per batch, 3 epochs x 4 batches
    for k, value in lr.items():
        assert value == pytest.approx(float(schedule(k)), rel=1e-6), k


def test_monitor_grad_norm_and_update_ratio_match_sgd_first_step(tmp_path):
    """Plain SGD (eq. 4): step 0's gradient from a GradientTape on the first batch; Delta theta = -lr g."""
    lr = 0.05
    x, y = _data()
    model = _model(keras_optreg.SGD(lr))
    weights = [np.array(v) for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        loss = keras.losses.MeanSquaredError()(y[:BATCH], model(x[:BATCH], training=True))
    grads = [np.asarray(g, np.float64) for g in tape.gradient(loss, model.trainable_variables)]
    paths = [v.path for v in model.trainable_variables]
    scalars, _ = _fit(model, tmp_path, epochs=1, x=x, y=y)
    want = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    assert scalars["optimizer/grad_norm"][0] == pytest.approx(want, rel=1e-4)
    for path, g, w in zip(paths, grads, weights, strict=True):
        ratio = lr * np.linalg.norm(g) / np.linalg.norm(w)
        assert scalars[f"optimizer/update_ratio/{path}"][0] == pytest.approx(ratio, rel=1e-3), path
    # every logged step: ||Delta theta|| = lr ||g|| for plain SGD
    for k, norm in scalars["optimizer/grad_norm"].items():
        assert scalars["optimizer/update_norm"][k] == pytest.approx(lr * norm, rel=1e-3), k


def test_monitor_counts_skipped_nonfinite_steps(tmp_path):
    x, y = _data()
    x[BATCH + 3, 2] = np.nan  # the second batch of each epoch holds a NaN
    model = _model(keras_optreg.SGD(0.05, nonfinite="skip"))
    scalars, _ = _fit(model, tmp_path, epochs=2, x=x, y=y)
    skipped = scalars["optimizer/skipped_steps"]
    assert [skipped[k] for k in range(8)] == [0, 1, 1, 1, 1, 2, 2, 2]
    assert skipped[7] == int(model.optimizer.skipped_steps.numpy())
    assert np.isnan(scalars["optimizer/grad_norm"][1])
    assert scalars["optimizer/update_norm"][1] == 0.0 and scalars["optimizer/update_norm"][2] > 0.0


@pytest.mark.parametrize("freq, steps", [(3, [0, 3, 6, 9]), ("epoch", [0, 4, 8])])
def test_monitor_update_freq_logs_only_the_chosen_steps(tmp_path, freq, steps):
    scalars, _ = _fit(_model(keras_optreg.SGD(0.05)), tmp_path, epochs=3, update_freq=freq)
    for tag in ("optimizer/learning_rate", "optimizer/grad_norm", "optimizer/update_norm"):
        assert sorted(scalars[tag]) == steps, tag


def test_monitor_generalization_gap_per_epoch_and_histograms(tmp_path):
    scalars, history = _fit(_model(keras_optreg.Adam(0.01)), tmp_path, epochs=3, histogram_freq=2)
    gap = scalars["epoch/gap"]
    want = np.array(history.history["val_loss"]) - np.array(history.history["loss"])
    np.testing.assert_allclose([gap[e] for e in range(3)], want, rtol=1e-5, atol=1e-7)
    assert any(t.startswith("weights/") for t in read_tags(tmp_path))


def test_monitor_sees_gradients_of_a_model_fit_before(tmp_path):
    """A train step traced by an earlier fit without the monitor is traced again."""
    model = _model(keras_optreg.SGD(0.05))
    x, y = _data()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    scalars, _ = _fit(model, tmp_path, epochs=1)
    assert all(np.isfinite(v) and v > 0 for v in scalars["optimizer/grad_norm"].values())
    assert "apply" not in vars(model.optimizer)


@pytest.mark.parametrize("kwargs, error, text", [
    (dict(log_dir=""), ValueError, "log_dir=''"),
    (dict(log_dir=None), TypeError, "log_dir=None"),
    (dict(log_dir="x", update_freq=0), ValueError, "update_freq=0"),
    (dict(log_dir="x", update_freq="step"), ValueError, "update_freq='step'"),
    (dict(log_dir="x", update_freq=True), ValueError, "update_freq=True"),
    (dict(log_dir="x", histogram_freq=-1), ValueError, "histogram_freq=-1"),
])
def test_monitor_rejects_bad_arguments(kwargs, error, text):
    with pytest.raises(error, match=text.replace("(", r"\(")):
        OptimizerMonitor(**kwargs)


def test_monitor_config_round_trips(tmp_path):
    monitor = OptimizerMonitor(str(tmp_path), update_freq=10, histogram_freq=1)
    config = keras.saving.serialize_keras_object(monitor)
    again = keras.saving.deserialize_keras_object(config)
    assert isinstance(again, OptimizerMonitor) and again.get_config() == monitor.get_config()


# -- early stopping: Keras' EarlyStopping and the demo's i* against GBC16 Alg. 7.1 (spec) -----------------

_LOSSES = st.lists(st.one_of(st.integers(0, 4).map(float), st.floats(0.0, 10.0, width=32)), min_size=1, max_size=25)


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


@given(errors=_LOSSES)
def test_early_stopping_demo_best_epoch_is_alg_7_1_without_stopping(errors):
    """``demo.report.best_epoch`` is i* of Alg. 7.1 when patience never runs out (p = number of epochs)."""
    i_star, _, i_stop = unnumbered.early_stopping(errors, len(errors), n=1)
    assert i_stop == len(errors)
    assert best_epoch(errors) == i_star


_STOP_MODEL = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])


def test_monitor_works_with_an_xla_compiled_train_step(tmp_path):
    x, y = _data()
    model = _model(keras_optreg.SGD(0.05))
    model.compile(optimizer=keras_optreg.SGD(0.05), loss="mse", jit_compile=True)
    scalars, _ = _fit(model, tmp_path, epochs=1, x=x, y=y)
    for k, norm in scalars["optimizer/grad_norm"].items():
        assert np.isfinite(norm) and scalars["optimizer/update_norm"][k] == pytest.approx(0.05 * norm, rel=1e-3)


def test_monitor_rejects_several_steps_per_execution(tmp_path):
    x, y = _data()
    model = _model(keras_optreg.SGD(0.05))
    model.compile(optimizer=keras_optreg.SGD(0.05), loss="mse", steps_per_execution=2)
    with pytest.raises(ValueError, match="steps_per_execution=2"):
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[OptimizerMonitor(str(tmp_path))])
