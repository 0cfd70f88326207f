"""Spec coverage: every spec id is checked by a test of the library, or is listed as PENDING.

A library test covers an id when its name carries it (``test_eq18_...``, ``test_dropout_...``).
PENDING must shrink: an id that gains a library test has to leave the list, and PENDING must be
empty once the optimizer, initializer/regularizer and layer issues have landed.
Also checks the import fences: spec/ imports neither TensorFlow, Keras nor keras_optreg, and
keras_optreg never imports spec.
"""

import ast
import pathlib
import re

import keras_optreg_spec as spec

ROOT = pathlib.Path(__file__).resolve().parents[1]

PENDING = set()


def _library_test_names():
    names = []
    for path in (ROOT / "tests").rglob("test_*.py"):
        if path.name.startswith("test_spec_"):
            continue
        tree = ast.parse(path.read_text())
        names += [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    return names


def _covered(spec_id, names):
    pattern = re.compile(rf"^test_(.*_)?{re.escape(spec_id)}(_|$)")
    return any(pattern.match(n) for n in names)


def test_every_spec_id_is_covered_or_pending():
    names = _library_test_names()
    uncovered = {i for i in spec.SPEC_IDS if not _covered(i, names)}
    assert uncovered <= PENDING, f"no library test and not PENDING: {sorted(uncovered - PENDING)}"


def test_pending_only_lists_uncovered_ids():
    names = _library_test_names()
    stale = {i for i in PENDING if _covered(i, names)}
    assert not stale, f"covered now, remove from PENDING: {sorted(stale)}"
    assert PENDING <= set(spec.SPEC_IDS), sorted(PENDING - set(spec.SPEC_IDS))


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
    for path in (ROOT / "keras_optreg" / "conformance").rglob("*.py"):  # the tool's own fence: no test helpers
        assert "tests" not in {m.split(".")[0] for m in _full_imports(path)}, path
