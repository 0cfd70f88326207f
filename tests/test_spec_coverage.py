"""Spec coverage: every spec id has a library test that ran and passed; and the import fences.

The coverage table comes from the tests' ``@pytest.mark.spec(...)`` markers
(``keras_optreg/conformance/pytest_plugin.py``, loaded by ``tests/conftest.py``); the check below runs
last and is enforced when the whole suite is collected. The pytester tests run the plugin on a small
suite of their own and show the check failing when an id is uncovered or covered by a skipped test.
Also checks the import fences: spec/ imports neither TensorFlow, Keras nor keras_optreg, and
keras_optreg's core never imports spec or the conformance tool.
"""

import ast
import pathlib
import subprocess
import sys
import textwrap

import pytest

import keras_optreg_spec as spec

ROOT = pathlib.Path(__file__).resolve().parents[1]
PLUGIN = "keras_optreg.conformance.pytest_plugin"


@pytest.mark.spec_coverage_check
def test_every_spec_id_has_a_library_test_that_ran_and_passed(spec_coverage):
    spec_coverage.check()


def _suite(pytester, body):
    """A library test file and a spec test file under ``suite/`` (the testpaths), markers with the real spec ids."""
    pytester.makeini("[pytest]\ntestpaths = suite\n")
    pytester.mkdir("suite")
    (pytester.path / "suite" / "test_lib.py").write_text(textwrap.dedent(body).format(
        rest=list(spec.SPEC_IDS[1:]), first=spec.SPEC_IDS[0]))
    (pytester.path / "suite" / "test_spec_self.py").write_text(textwrap.dedent(f"""
        import pytest
        @pytest.mark.spec({spec.SPEC_IDS[0]!r})
        def test_the_spec_itself(): pass  # a test of the transcription: does not cover the library
    """))


CHECK = """
        @pytest.mark.spec_coverage_check
        def test_coverage(spec_coverage):
            spec_coverage.check()
        def test_collected_after_the_check():
            pass
"""


@pytest.mark.parametrize("first, outcomes, message", [
    ("pass", dict(passed=5), None),
    ("pytest.skip('optional package missing')", dict(passed=3, skipped=1, failed=1),
     "*{id}: suite/test_lib.py::test_first (none passed)*"),
    ("assert False", dict(passed=3, failed=2), "*{id}: suite/test_lib.py::test_first (none passed)*"),
])
def test_coverage_check_fails_when_an_id_has_no_passing_library_test(pytester, first, outcomes, message):
    _suite(pytester, """
        import pytest
        @pytest.mark.spec(*{rest!r})
        def test_the_rest():
            pass
        @pytest.mark.spec({first!r})
        def test_first():
    """ + f"            {first}\n" + CHECK)
    result = pytester.runpytest_inprocess("-p", PLUGIN)
    result.assert_outcomes(**outcomes)
    if message:
        result.stdout.fnmatch_lines([message.format(id=spec.SPEC_IDS[0])])


def test_coverage_check_fails_when_an_id_has_no_marked_test(pytester):
    _suite(pytester, """
        import pytest
        @pytest.mark.spec(*{rest!r})
        def test_the_rest():
            pass
    """ + CHECK)
    result = pytester.runpytest_inprocess("-p", PLUGIN)
    result.assert_outcomes(passed=3, failed=1)  # the spec file's marker does not count
    result.stdout.fnmatch_lines([f"*{spec.SPEC_IDS[0]}: no test marked*"])


@pytest.mark.parametrize("args", [("-k", "not test_first"), ("suite/test_lib.py",)])
def test_coverage_check_skips_on_a_subset_run(pytester, args):
    _suite(pytester, """
        import pytest
        @pytest.mark.spec(*{rest!r})
        def test_the_rest():
            pass
        @pytest.mark.spec({first!r})
        def test_first():
            pass
    """ + CHECK)
    result = pytester.runpytest_inprocess("-p", PLUGIN, "-rs", *args)
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*subset run (*): spec coverage is enforced on the whole suite only*"])


def test_a_marker_naming_no_spec_id_is_a_usage_error(pytester):
    _suite(pytester, """
        import pytest
        @pytest.mark.spec("eq99")
        def test_typo():
            pass
    """)
    result = pytester.runpytest_inprocess("-p", PLUGIN)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_typo*eq99*names no spec id*"])


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_spec_imports_only_numpy_and_the_standard_library():
    for path in (ROOT / "spec").rglob("*.py"):
        bad = {m for m in _imports(path)} & {"tensorflow", "keras", "keras_optreg", "scipy", "jax", "torch"}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_spec_runs_its_self_check_with_tensorflow_keras_and_hypothesis_unimportable():
    """The spec is NumPy-only at run time too: ``python -m keras_optreg_spec`` with every heavier package
    blocked (``sys.modules[name] = None`` makes its import fail). The spec's Hypothesis self-tests use the
    conformance toolkit's strategies, so ``tox -e spec`` installs the project; this is the TF-free proof."""
    blocked = ("tensorflow", "keras", "keras_optreg", "hypothesis", "scipy", "jax", "torch", "pytest")
    code = (f"import sys\nfor m in {blocked!r}:\n    sys.modules[m] = None\n"
            "import runpy\nrunpy.run_module('keras_optreg_spec', run_name='__main__', alter_sys=True)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT / "tests")
    assert out.returncode == 0, out.stderr
    n = len(spec.errata.ERRATA)
    assert f"{n} of {n} errata show a difference" in out.stdout, out.stdout


def test_nothing_imports_the_spec_folder_by_its_repository_name():
    """spec/ installs as ``keras_optreg_spec``: a bare ``import spec`` works only from the repository root
    (and would pick up the registry's unrelated ``spec`` project when installed)."""
    for folder in ("keras_optreg", "spec", "tests", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            assert "spec" not in set(_imports(path)), f"{path.relative_to(ROOT)} imports spec, not keras_optreg_spec"


def test_library_core_never_imports_spec():
    allowed = {"conformance"}  # the conformance tool (issue 7) is the one module that may
    for path in (ROOT / "keras_optreg").rglob("*.py"):
        if allowed & set(path.relative_to(ROOT / "keras_optreg").with_suffix("").parts):
            continue
        assert not {"spec", "keras_optreg_spec"} & set(_imports(path)), f"{path.relative_to(ROOT)} imports the spec"


def _full_imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def test_library_core_never_imports_the_conformance_tool():
    """Only ``python -m keras_optreg.conformance`` (or an explicit import) loads spec and Hypothesis."""
    for path in (ROOT / "keras_optreg").rglob("*.py"):
        if "conformance" in path.relative_to(ROOT / "keras_optreg").parts:
            continue
        bad = [m for m in _full_imports(path) if m.startswith("keras_optreg.conformance")]
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_conformance_toolkit_imports_without_pytest_and_only_hypothesis_needs_the_extra():
    """The toolkit the tests import is the package users get: no module imports pytest or a test-only
    package at import time (only the pytest plugin, which pytest loads), and without Hypothesis (the
    ``[conformance]`` extra) ``import keras_optreg.conformance`` and its NumPy modules still work."""
    folder = ROOT / "keras_optreg" / "conformance"
    modules = sorted(".".join(p.relative_to(folder).with_suffix("").parts).removesuffix(".__init__")
                     for p in folder.rglob("*.py")
                     if p.stem not in ("__main__", "pytest_plugin") and p != folder / "__init__.py")
    code = ("import sys, importlib\nfor m in ('pytest', 'scipy', 'matplotlib', 'sklearn', 'tensorboard', 'tests'):\n"
            "    sys.modules[m] = None\n"
            f"for name in {modules!r}:\n    importlib.import_module('keras_optreg.conformance.' + name)\n"
            "sys.modules['hypothesis'] = None\n"
            "for m in [m for m in sys.modules if m.startswith(('keras_optreg.conformance', 'hypothesis.'))]:\n"
            "    del sys.modules[m]\n"
            "import keras_optreg.conformance, keras_optreg.conformance.compare\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT / "tests")
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
