"""The example scripts (examples/): each runs with --quick, writes its figures and tells its story.

The scripts run once per session, in this process (TensorFlow is imported already, which saves a
start-up per script), in the order and from the list of ``examples/run_all.py``, each writing into
one temporary ``--out``. Every assertion follows from the equations the script shows, not from a
recorded number. ``tox -e examples`` runs ``run_all.py --quick`` itself, one subprocess per script.
"""

import importlib.util
import json
import math
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"

FIGURES = {
    "initializers.py": ["initializers_variance.png"],
    "errata.py": ["errata_quadratic.png", "errata_rosenbrock.png", "errata_rmsprop_scale.png"],
    "optax_style_loop.py": ["optax_style_loop.png"],
}


def _load(path):
    spec = importlib.util.spec_from_file_location(f"examples_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN_ALL = _load(EXAMPLES / "run_all.py")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    folder = tmp_path_factory.mktemp("examples_out")
    for path in RUN_ALL.scripts():
        assert _load(path).main(["--quick", "--out", str(folder)]) == 0, path.name
    return folder


@pytest.fixture(scope="module")
def summary(out):
    return json.loads((out / "summary.json").read_text())


def test_examples_run_all_lists_every_script_in_lecture_order():
    names = [p.name for p in RUN_ALL.scripts()]
    assert sorted(names) == sorted(FIGURES)
    assert names == ["initializers.py", "errata.py", "optax_style_loop.py"]  # eqs. (1)-(3), (7)-(18), (13)-(18)


def test_examples_write_their_figures(out, summary):
    for script, figures in FIGURES.items():
        for name in figures:
            data = (out / name).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, f"{script}: {name}"
    assert set(summary) == {"initializers", "errata", "optax_style_loop"}


@pytest.mark.spec("eq01", "eq02", "eq03")
def test_examples_initializers_eq01_eq02_eq03_relu_variance_gain(summary):
    # With zero bias, Var(z_{l+1}) = m Var(w) E[relu(z_l)^2] = m Var(w) Var(z_l) / 2 [He et al. 2015,
    # eq. 10]: the variance is multiplied by gain = m Var(w) / 2 per layer. The measured gain is the
    # geometric mean of depth - 1 per-layer ratios. Each ratio is a mean of m squared outputs that
    # are Gaussian given the layer's input, relative std <= sqrt(2/m) (chi-square, m dof); their log
    # mean has std <= sqrt(2/m) / sqrt(depth - 1). Four of those bound |log(measured / gain)|.
    s = summary["initializers"]
    depth, width = s["depth"], s["width"]
    tol = 4.0 * math.sqrt(2.0 / width) / math.sqrt(depth - 1)
    gains = s["relu_gain_theory"]
    # The check tells apart any two initializers of different variance (Glorot and Flax share
    # 1/m on square layers): their gains are more than 2 tol apart in log.
    logs = np.unique(np.round(np.log(list(gains.values())), 12))
    assert len(logs) == 4 and np.diff(logs).min() > 2 * tol
    for name, v in s["variance"]["relu"].items():
        measured = (v[-1] / v[0]) ** (1.0 / (depth - 1))
        assert abs(math.log(measured / gains[name])) < tol, (name, measured, gains[name])


@pytest.mark.spec("eq09")
def test_examples_errata_eq09_printed_momentum_climbs(summary):
    # E-mom: theta - v with v = alpha v - eps g is momentum gradient *ascent*; on a convex quadratic
    # it grows geometrically (the script stops it past 1e12 and records inf), the corrected rule converges.
    final = summary["errata"]["final_loss"]
    assert final["quadratic"]["momentum"]["printed"] == math.inf
    assert final["quadratic"]["momentum"]["corrected"] < 1e-6 * final["quadratic"]["momentum"]["initial"]
    assert final["rosenbrock"]["momentum"]["printed"] > final["rosenbrock"]["momentum"]["initial"]
    for problem, per_opt in final.items():
        for opt, v in per_opt.items():
            assert v["corrected"] < v["printed"], (problem, opt)


@pytest.mark.spec("eq11", "eq12")
def test_examples_errata_eq11_eq12_printed_rmsprop_step_depends_on_the_loss_scale(summary):
    # E-rms, first step from r = 0: printed eps g / (delta + g^2) ~ eps / g, which shrinks like 1/c
    # over c = 1e-2 ... 1e3 (1e5); corrected eps g / sqrt(delta + (1 - rho) g^2) ~ eps / sqrt(1 - rho)
    # for every c with delta << (1 - rho) g^2 (within 5% at c = 1e-2, delta = 1e-6).
    s = summary["errata"]["rmsprop_scale"]
    printed, corrected = np.array(s["first_step"]["printed"]), np.array(s["first_step"]["corrected"])
    assert printed.max() / printed.min() > 1e4
    assert corrected.max() / corrected.min() < 1.1
    assert np.all(np.diff(printed) < 0)


@pytest.mark.spec("eq16", "eq18")
def test_examples_errata_eq16_eq18_printed_adam_first_step_ignores_the_sign(summary):
    # E-adam, first step from zero state: printed s_hat = g, r_hat = g^2, step -eps g^2 / (delta + g^2)
    # = -eps in every coordinate; corrected -eps g / (|g| + delta) = -eps sign(g).
    s = summary["errata"]["adam_first_step"]
    eps = 0.01  # examples/errata.py HYPER["quadratic"]["adam"]["eps"]
    g = np.array(s["gradient"])
    assert np.any(g > 0) and np.any(g < 0)
    np.testing.assert_allclose(s["printed"], -eps * np.ones_like(g), rtol=1e-6)
    np.testing.assert_allclose(s["corrected"], -eps * np.sign(g), rtol=1e-6)


@pytest.mark.spec("eq13", "eq18")
def test_examples_optax_style_loop_eq13_eq18_matches_the_spec(summary):
    # The same recorded gradients through keras_optreg_spec.algorithms.alg_adam_step in float64: each float32
    # step rounds weights of magnitude < 1 (Glorot bound sqrt(6/33) = 0.43, plus < 20 steps of
    # lr = 1e-3) to within 2^-24, so 20 steps differ by at most ~20 * 6e-8 = 1.2e-6. A wrong rule
    # (no bias correction, the printed hats) is off by a multiple of lr = 1e-3 from step one.
    s = summary["optax_style_loop"]
    for name, dev in s["max_abs_deviation_from_spec"].items():
        assert dev < 1e-5, (name, dev)
    assert s["final_loss"] < 0.5 * s["initial_loss"]
