"""The conformance tool's verdicts (issue 7): ``python -m keras_optreg.conformance``.

Each test runs the tool's own Hypothesis search (derandomized) with few examples, on the rows it
names, and checks the verdict against what the spec and the Keras sources say.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from keras import ops

import keras_optreg
from keras_optreg import conformance
from keras_optreg.conformance import __main__ as cli
from keras_optreg.conformance import conventions as K
from keras_optreg.conformance import engine as E
from keras_optreg.conformance import optimizers as O
from keras_optreg.conformance import report
from tests.backend import BACKEND, ONCE

ROOT = pathlib.Path(__file__).resolve().parents[1]

N = 15  # Hypothesis examples per cell: a failing example shrinks to the same counterexample
#: the columns whose cells run on the Keras backend; the printed spec (NumPy), PyTorch and optax columns are the
#: same on every backend and are checked in one run (tests/conftest.py BACKEND_INDEPENDENT, tests.backend.ONCE)
COLUMNS = None if ONCE else ("keras_optreg", "keras")
OTHER_FRAMEWORKS = pytest.mark.backend_independent("the conformance table's printed-spec, PyTorch and optax columns")


@pytest.fixture(scope="module")
def optimizer_table():
    """{(row, column): [verdicts]}: the AdamW row has two keras_optreg cells (the decay, the penalty)."""
    table = {}
    for v in conformance.run(only=list(O.KINDS), max_examples=N, columns=COLUMNS):
        table.setdefault((v.row, v.column), []).append(v)
    return table


def _cell(table, kind, column, index=0):
    return table[(O.ROWS[kind], column)][index]


@pytest.mark.parametrize("kind", O.KINDS)
@pytest.mark.spec("eq05", "eq09", "eq12", "eq18")
def test_keras_optreg_optimizers_conform(optimizer_table, kind):
    v = _cell(optimizer_table, kind, "keras_optreg")
    assert v.ours and v.status == E.CONFORMS, v.cell()
    assert v.max_rel_err < 1e-5, v.cell()


@pytest.mark.spec("eq18")
def test_eq18_conformance_flags_keras_adam_epsilon_hat(optimizer_table):
    v = _cell(optimizer_table, "adam", "keras")
    assert v.status == E.DEVIATES and v.detail.startswith("epsilon-hat"), v.cell()
    hp, theta0, grads, _ = v.counterexample["example"]
    # a counterexample at tiny gradients: within four decades of delta, far below O(1) gradients,
    # where Keras' delta-hat (= delta sqrt(1 - beta_2^t)) is not negligible against sqrt(r)
    assert np.max(np.abs(grads)) <= 1e-5, v.cell()
    assert np.max(np.abs(grads)) < 1e4 * hp["epsilon"], v.cell()
    # the counterexample is one: Keras' trajectory is outside the float32 tolerance of GBC16 Alg. 8.7 ...
    run, ref, tol = O.keras_runner(O._keras("adam")[1]), O.trajectory(O._corrected("adam")), O.tolerance("adam")
    example = v.counterexample["example"]
    assert not E.compare(run(example), ref(example), *tol(example, ref(example)))[0]
    # ... and inside that of the epsilon-hat form
    alt = O.trajectory(K.adam_epsilon_hat)
    assert E.compare(run(example), alt(example), *tol(example, alt(example)))[0]


@pytest.mark.spec("adagrad")
@pytest.mark.spec("adamw", "eq19")
def test_adamw_row_names_keras_decay_and_tells_the_tikhonov_penalty_from_decoupled_decay(optimizer_table):
    """keras_optreg.Adam(weight_decay) is Loshchilov & Hutter's Alg. 2 (Keras' _apply_weight_decay before our
    step); Keras' Adam(weight_decay) is the same decay before its epsilon-hat step; the lecture's Tikhonov
    penalty in the loss under Adam is the coupled L2 form, which the decoupled reference rejects."""
    ours, penalty = _cell(optimizer_table, "adamw", "keras_optreg"), _cell(optimizer_table, "adamw", "keras_optreg", 1)
    assert ours.ours and ours.status == E.CONFORMS, ours.cell()
    assert "Tikhonov" in penalty.component and not penalty.ours, penalty.component
    assert penalty.status == E.DEVIATES and penalty.detail.startswith("coupled L2"), penalty.cell()
    keras_v = _cell(optimizer_table, "adamw", "keras")
    assert keras_v.status == E.DEVIATES, keras_v.cell()
    assert keras_v.detail.startswith("decoupled decay, then epsilon-hat"), keras_v.cell()
    # the penalty's counterexample is one: outside the decoupled form's tolerance, inside the coupled one's
    example = penalty.counterexample["example"]
    run, tol = O.tikhonov_runner(), O.tolerance("adamw")
    got = run(example)
    for step, ok in ((O._corrected("adamw"), False), (K.adam_l2_coupled, True)):
        want = O.trajectory(step)(example)
        assert E.compare(got, want, *tol(example, want))[0] is ok


def test_adagrad_conformance_names_keras_initial_accumulator(optimizer_table):
    v = _cell(optimizer_table, "adagrad", "keras")
    assert v.status == E.DEVIATES and "initial accumulator 0.1" in v.detail, v.cell()


@pytest.mark.spec("eq12")
def test_eq12_conformance_finds_keras_rmsprop_delta_inside_the_root(optimizer_table):
    """keras/src/optimizers/rmsprop.py divides by sqrt(velocity + epsilon): GBC16 Alg. 8.5's form."""
    assert _cell(optimizer_table, "rmsprop", "keras").status == E.CONFORMS


@OTHER_FRAMEWORKS
@pytest.mark.spec("eq09")
def test_eq09_printed_momentum_diverges_from_gbc16_alg82(optimizer_table):
    v = _cell(optimizer_table, "momentum", "spec (as printed)")
    assert v.status == E.DEVIATES and "E-mom" in v.detail, v.cell()


@pytest.mark.spec("eq08", "eq09")
def test_eq08_eq09_keras_momentum_conforms(optimizer_table):
    assert _cell(optimizer_table, "momentum", "keras").status == E.CONFORMS  # lr inside the velocity, as GBC16


@OTHER_FRAMEWORKS
@pytest.mark.spec("eq11", "eq12", "eq16", "eq17", "eq18")
def test_printed_forms_are_flagged_with_their_errata(optimizer_table):
    assert "E-rms" in _cell(optimizer_table, "rmsprop", "spec (as printed)").detail
    assert "E-adam" in _cell(optimizer_table, "adam", "spec (as printed)").detail
    assert _cell(optimizer_table, "sgd", "spec (as printed)").status == E.CONFORMS  # eq. (5) is right


def _sign_flipped(rule):
    def flipped(g, *state_and_scalars):
        update, *slots = rule(g, *state_and_scalars)
        return (-update, *slots)
    return flipped


_FLIPPED_ADAM = _sign_flipped(keras_optreg._math.optim.adam)
_FLIPPED_SGD = _sign_flipped(keras_optreg._math.optim.sgd)


def _adam_without_power(g, s, r, t, *scalars):
    """Bias correction 1 - beta instead of 1 - beta^t: Adam with t frozen at 1."""
    return keras_optreg._math.optim.adam(g, s, r, ops.ones_like(t), *scalars)


class _SignFlippedAdam(keras_optreg.Adam):
    def _rule(self, variable, learning_rate):
        _, slots, scalars = super()._rule(variable, learning_rate)
        return _FLIPPED_ADAM, slots, scalars


class _NoPowerAdam(keras_optreg.Adam):
    def _rule(self, variable, learning_rate):
        _, slots, scalars = super()._rule(variable, learning_rate)
        return _adam_without_power, slots, scalars


@pytest.mark.spec("eq18")
def test_eq18_conformance_flags_a_sign_flipped_adam():
    v = conformance.verify(_SignFlippedAdam, "adam", max_examples=N)
    assert v.status == E.DEVIATES and v.detail == "unexplained", v.cell()
    assert report.exit_code([v]) == 0  # an injected component is not keras_optreg's


@pytest.mark.spec("eq16", "eq17")
def test_eq16_eq17_conformance_flags_missing_bias_correction_power():
    v = conformance.verify(_NoPowerAdam, "adam", max_examples=N)
    assert v.status == E.DEVIATES and "instead of 1 - beta^t" in v.detail, v.cell()


@pytest.mark.spec("eq08")
def test_eq08_conformance_names_learning_rate_outside_the_velocity():
    """PyTorch's momentum convention, injected as a float64 implementation: found by a changing rate."""
    check = O.make_check("momentum", "injected", "torch-style", O.trajectory(K.momentum_lr_outside))
    v = E.evaluate(check, N)
    assert v.status == E.DEVIATES and v.detail.startswith("learning rate outside"), v.cell()
    assert len(set(v.counterexample["example"][3])) > 1  # needs a learning rate that changes


def test_conformance_cli_json_only_and_exit_code(capsys):
    code = cli.main(["--only", "sgd", "--format", "json", "--max-examples", "3", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 == out["exit_code"]
    assert {v["row"] for v in out["verdicts"]} == {O.ROWS["sgd"]}
    assert {v["column"] for v in out["verdicts"]} >= {"keras_optreg", "keras", "spec (as printed)"}
    assert all(v["status"] == "conforms" for v in out["verdicts"] if v["column"] in ("keras_optreg", "keras"))


class _SignFlippedSGD(keras_optreg.SGD):
    def _rule(self, variable, learning_rate):
        _, slots, scalars = super()._rule(variable, learning_rate)
        return _FLIPPED_SGD, slots, scalars


def test_conformance_cli_exit_code_is_one_when_keras_optreg_deviates(monkeypatch, capsys):
    monkeypatch.setattr(O, "_ours", lambda kind: ("keras_optreg.SGD (sign flipped)",
                                                  lambda hp: _SignFlippedSGD(**hp)))
    assert cli.main(["--only", "sgd", "--max-examples", "10", "--quiet"]) == 1
    assert "keras_optreg.SGD (sign flipped)`: deviates" in capsys.readouterr().out


def test_conformance_cli_rejects_an_unknown_row_and_missing_hypothesis(monkeypatch, capsys):
    assert cli.main(["--only", "nosuchrow"]) == 2
    assert "nosuchrow" in capsys.readouterr().err
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda n: None if n == "hypothesis" else real(n))
    assert cli.main([]) == 2
    assert "pip install keras_optreg[conformance]" in capsys.readouterr().err


def test_conformance_columns_select_cells_and_a_bad_column_is_refused(capsys):
    vs = conformance.run(only=["sgd"], max_examples=3, columns=["keras_optreg"])
    assert [(v.column, v.component) for v in vs] == [("keras_optreg", "keras_optreg.SGD")]
    assert cli.main(["--only", "sgd", "--columns", "keras_optreg,optax", "--format", "json", "--max-examples", "3",
                     "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["columns"] == ["keras_optreg", "optax"] and {v["column"] for v in out["verdicts"]} <= {
        "keras_optreg", "optax"}
    with pytest.raises(ValueError, match=r"`columns`.*Received: columns=\('pytorch',\)"):
        conformance.run(only=["sgd"], columns=["pytorch"])
    assert cli.main(["--only", "sgd", "--columns", "pytorch"]) == 2
    assert "Received: columns=('pytorch',)" in capsys.readouterr().err


def test_conformance_exit_code_semantics():
    ok = E.Verdict("r", "keras_optreg", "c", E.CONFORMS, ours=True, max_rel_err=0.0)
    bad = E.Verdict("r", "keras_optreg", "c", E.DEVIATES, detail="unexplained", ours=True)
    theirs = E.Verdict("r", "keras", "c", E.DEVIATES, detail="x")
    broken = E.Verdict("r", "keras", "c", E.ERROR, detail="bug")
    assert report.exit_code([ok, theirs]) == 0
    assert report.exit_code([ok, bad]) == 1
    assert report.exit_code([ok, broken]) == 2


# ---- initializers, schedule, penalty, layers ----------------------------------------------------


@pytest.fixture(scope="module")
def other_table():
    rows = ["glorot", "torch_uniform", "lecun_normal", "linear_decay", "tikhonov", "weight_norm", "batchnorm",
            "batchnorm_moving", "dropout", "input_noise", "random_flip"]
    return {(v.row, v.column, v.component): v for v in conformance.run(only=rows, max_examples=10, columns=COLUMNS)}


def _find(table, row_prefix, column, component=None):
    hits = [v for (row, col, comp), v in table.items()
            if row.startswith(row_prefix) and col == column and (component is None or comp == component)]
    assert len(hits) == 1, (row_prefix, column, component, [v.component for v in hits])
    return hits[0]


@pytest.mark.spec("eq01", "eq02", "eq03", "eq06", "eq19", "eq20", "dropout", "input_noise", "random_flip")
def test_keras_optreg_initializers_schedule_penalties_and_layers_conform(other_table):
    ours = [v for v in other_table.values() if v.column == "keras_optreg"]
    assert len(ours) == 11 and all(v.ours for v in ours)
    assert all(v.status == E.CONFORMS for v in ours), [v.cell() for v in ours if v.status != E.CONFORMS]


@pytest.mark.spec("eq02")
def test_eq02_conformance_names_he_uniform_against_the_printed_bound(other_table):
    v = _find(other_table, "eq02", "keras", "keras.initializers.HeUniform")
    assert v.status == E.DEVIATES and "E-init2" in v.detail, v.cell()
    assert _find(other_table, "eq02", "keras", "keras.initializers.VarianceScaling(1/3, 'fan_in', 'uniform')"
                 ).status == E.CONFORMS


@OTHER_FRAMEWORKS
@pytest.mark.spec("eq03")
def test_eq03_conformance_flags_the_printed_truncated_normal(other_table):
    v = _find(other_table, "eq03", "spec (as printed)")
    assert v.status == E.DEVIATES and "E-init3" in v.detail, v.cell()


@pytest.mark.spec("eq03")
def test_eq03_keras_truncated_variance_scaling_conforms(other_table):
    assert _find(other_table, "eq03", "keras").status == E.CONFORMS  # VarianceScaling truncated = flax


@pytest.mark.spec("eq06")
def test_eq06_polynomial_decay_power_one_conforms(other_table):
    assert _find(other_table, "eq06", "keras").status == E.CONFORMS


@pytest.mark.spec("eq19")
def test_eq19_conformance_flags_keras_l2_without_the_half(other_table):
    v = _find(other_table, "eq19 Tikhonov", "keras")
    assert v.status == E.DEVIATES and v.detail.startswith("no 1/2"), v.cell()


@OTHER_FRAMEWORKS
@pytest.mark.spec("eq19", "eq20")
def test_eq19_eq20_printed_penalty_and_batch_normalization_flagged_with_their_errata(other_table):
    assert "E-reg" in _find(other_table, "eq19 Tikhonov", "spec (as printed)").detail
    assert "E-bn" in _find(other_table, "eq20 batch", "spec (as printed)").detail


@pytest.mark.spec("eq20")
def test_eq20_conformance_flags_keras_biased_moving_variance(other_table):
    v = _find(other_table, "eq20 moving", "keras")
    assert v.status == E.DEVIATES and v.detail.startswith("biased moving variance"), v.cell()
    assert _find(other_table, "eq20 batch", "keras").status == E.CONFORMS  # the training output agrees


@pytest.mark.spec("dropout", "input_noise", "random_flip")
def test_dropout_input_noise_random_flip_keras_built_ins_conform(other_table):
    for row in ("dropout", "input noise", "random left-right flip"):
        assert _find(other_table, row, "keras").status == E.CONFORMS, row


@pytest.mark.spec("dropout")
def test_dropout_conformance_flags_a_dropout_without_rescaling():
    """Srivastava et al.'s form (no 1/(1 - rate) in training): named, not conforming."""
    import keras

    from keras_optreg.conformance import layers as LC

    class Unscaled(keras.layers.Dropout):
        def call(self, inputs, training=False):
            y = super().call(inputs, training=training)
            return y * (1.0 - self.rate) if training else inputs * (1.0 - self.rate)

    check = next(c for c in LC.checks("dropout") if isinstance(c, E.Check) and c.column == "keras")
    check.run = LC.dropout_runner(lambda r, s: Unscaled(r, seed=s))
    v = E.evaluate(check, 10)
    assert v.status == E.DEVIATES and v.detail.startswith("Srivastava"), v.cell()


def _layer_check(kind, column="keras_optreg"):
    from keras_optreg.conformance import layers as LC

    return next(c for c in LC.checks(kind) if isinstance(c, E.Check) and c.column == column)


@pytest.mark.spec("random_crop", "random_rotation")
def test_random_crop_random_rotation_conform_and_broken_ones_are_flagged():
    import keras

    from keras_optreg.conformance import layers as LC

    for kind in ("random_crop", "random_rotation"):
        v = E.evaluate(_layer_check(kind), 8)
        assert v.status == E.CONFORMS, v.cell()
    v = E.evaluate(_layer_check("random_crop", "keras"), 8)
    assert v.status == E.DEVIATES and v.detail.startswith("one crop window per batch"), v.cell()
    corner = _layer_check("random_crop")  # always the top-left window: a crop, but not a uniform one
    corner.run = LC.crop_runner(lambda h, w, s: lambda x, training: x[:, :h, :w, :])
    assert E.evaluate(corner, 10).status == E.DEVIATES
    flipped = _layer_check("random_rotation")  # a mirror image is no rotation
    flipped.run = LC.rotation_runner(lambda m, s: lambda x, training: keras.ops.flip(x, axis=2))
    assert E.evaluate(flipped, 8).status == E.DEVIATES


def test_readme_shows_the_conformance_table_of_every_row():
    """README's Conformance section lists every row of the tool (regenerate it when rows change)."""
    import pathlib

    from keras_optreg.conformance import registry

    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Conformance", 1)[1].split("\n## ", 1)[0]
    assert "python -m keras_optreg.conformance" in section
    for _key, _ids, label, _cells in registry.rows():
        assert f"| {report._md(label)} |" in section, label


@OTHER_FRAMEWORKS
@pytest.mark.spec("eq07")
def test_eq07_printed_gradient_flagged_e_sum_and_only_selects_by_spec_id():
    from keras_optreg.conformance import registry

    assert {k for k, *_ in registry.select(["eq19"])} == {"tikhonov", "weight_norm"}
    vs = conformance.run(only=["minibatch_gradient"], max_examples=10)
    by = {v.component: v for v in vs}
    assert by["keras_optreg_spec.printed.eq04_minibatch_gradient"].status == E.CONFORMS
    v = by["keras_optreg_spec.printed.eq07_minibatch_gradient"]
    assert v.status == E.DEVIATES and "E-sum" in v.detail, v.cell()


@OTHER_FRAMEWORKS
def test_torch_column_says_not_installed_without_torch(optimizer_table):
    from keras_optreg.conformance import torch_runners as T

    if T.installed():
        pytest.skip("torch is installed here: test_eq08_eq12_eq18_torch_optimizers_verdicts checks the column")
    assert all(_cell(optimizer_table, k, "torch").status == E.NOT_INSTALLED for k in O.KINDS)


@OTHER_FRAMEWORKS
@pytest.mark.spec("eq08", "eq12", "eq18")
def test_eq08_eq12_eq18_torch_optimizers_verdicts(optimizer_table):
    """With torch importable (tox -e frameworks): PyTorch's learning rate sits outside the momentum buffer,
    its RMSprop adds delta outside the root; SGD, AdaGrad (r0 = 0) and Adam follow GBC16."""
    pytest.importorskip("torch")
    for kind in ("sgd", "adagrad", "adam", "adamw"):  # adamw: torch.optim.AdamW
        assert _cell(optimizer_table, kind, "torch").status == E.CONFORMS, _cell(optimizer_table, kind, "torch").cell()
    for kind in ("momentum", "nesterov"):
        v = _cell(optimizer_table, kind, "torch")
        assert v.status == E.DEVIATES and v.detail.startswith("learning rate outside"), v.cell()
    v = _cell(optimizer_table, "rmsprop", "torch")
    assert v.status == E.DEVIATES and v.detail.startswith("delta outside the root"), v.cell()


@OTHER_FRAMEWORKS
@pytest.mark.spec("eq01", "eq02")
def test_eq01_eq02_torch_initializers_verdicts():
    pytest.importorskip("torch")
    table = {v.row: v for v in conformance.run(only=["glorot", "torch_uniform", "lecun_normal"], max_examples=10,
                                               columns=["torch"])}
    assert [v.status for v in table.values()] == [E.CONFORMS, E.CONFORMS, E.NA], [v.cell() for v in table.values()]


@OTHER_FRAMEWORKS
@pytest.mark.spec("eq08", "eq18")
def test_eq08_eq18_optax_optimizers_verdicts(optimizer_table):
    """With optax importable (tox -e frameworks): optax.sgd keeps the learning rate outside the trace,
    optax.adagrad starts at 0.1 with delta inside the root; SGD, RMSprop (eps_in_sqrt) and Adam follow GBC16."""
    pytest.importorskip("optax")
    for kind in ("sgd", "rmsprop", "adam", "adamw"):  # adamw: optax.adamw
        assert _cell(optimizer_table, kind, "optax").status == E.CONFORMS, _cell(optimizer_table, kind, "optax").cell()
    for kind in ("momentum", "nesterov"):
        v = _cell(optimizer_table, kind, "optax")
        assert v.status == E.DEVIATES and v.detail.startswith("learning rate outside"), v.cell()
    v = _cell(optimizer_table, "adagrad", "optax")
    assert v.status == E.DEVIATES and "initial accumulator 0.1" in v.detail, v.cell()


@OTHER_FRAMEWORKS
@pytest.mark.spec("eq20")
def test_eq20_torch_batchnorm_verdicts():
    """PyTorch normalises with the biased batch variance (IS15 Alg. 1) and keeps an unbiased running
    variance, but its momentum weighs the new batch: m given as Keras' momentum is reversed."""
    pytest.importorskip("torch")
    table = {v.row: v for v in conformance.run(only=["batchnorm", "batchnorm_moving"], max_examples=10,
                                               columns=["torch"])}
    training, moving = table.values()
    assert training.status == E.CONFORMS, training.cell()
    assert moving.status == E.DEVIATES and moving.detail.startswith("momentum direction reversed"), moving.cell()


@OTHER_FRAMEWORKS
@pytest.mark.spec("eq06")
def test_eq06_optax_linear_schedule_conforms():
    pytest.importorskip("optax")
    (v,) = conformance.run(only=["linear_decay"], max_examples=10, columns=["optax"])
    assert v.status == E.CONFORMS, v.cell()


@pytest.mark.skipif(BACKEND == "tensorflow", reason="on TensorFlow the command runs in this process: "
                                                    "test_conformance_cli_json_only_and_exit_code")
def test_conformance_cli_runs_on_this_backend_in_a_fresh_process():
    """Issue 16: ``python -m keras_optreg.conformance`` on JAX and PyTorch. Keras' optimizers took no numpy gradient
    on PyTorch, and the Tikhonov-under-Adam cell differentiated with a GradientTape: every cell of the SGD and
    AdamW rows ran into an error (status "deviates: unexplained" with the exception, or exit code 2)."""
    cmd = [sys.executable, "-m", "keras_optreg.conformance", "--only", "sgd,adamw", "--max-examples", "3",
           "--format", "json", "--quiet"]
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, KERAS_BACKEND=BACKEND), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["backend"] == BACKEND
    cells = {(v["column"], v["component"]): v for v in out["verdicts"]}
    assert not [v for v in out["verdicts"] if v["status"] == E.ERROR or "raised" in str(v.get("counterexample"))]
    assert cells[("keras_optreg", "keras_optreg.SGD")]["status"] == E.CONFORMS
    assert cells[("keras", "keras.optimizers.SGD")]["status"] == E.CONFORMS
    assert cells[("keras_optreg", "keras_optreg.Adam(weight_decay)")]["status"] == E.CONFORMS
    coupled = cells[("keras_optreg", "keras_optreg.Adam + regularizers.Tikhonov(weight_decay) in the loss")]
    assert coupled["status"] == E.DEVIATES and coupled["detail"].startswith("coupled L2"), coupled
