"""The sdist and the wheel: what they hold, and that the installed wheel works outside the repository.

Both are built once per module with setuptools' PEP 517 backend (``setuptools.build_meta``, from
the ``[test]`` extra) in a subprocess, from a copy of the project's files in a temporary folder
(so the working tree gets no ``build/`` or ``*.egg-info``); the wheel is built from the unpacked
sdist, as ``pip install <sdist>`` builds it. Nothing is downloaded.

"The project's files" are git's (tracked, plus untracked files git does not ignore) in a clone, and
every file not matched by ``.gitignore`` in an unpacked sdist (no ``.git`` there; the sdist ships
``.gitignore``), so the tests also pass from the sdist, as README's test command runs them.
"""

from __future__ import annotations

import fnmatch
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SDIST_METADATA = {"PKG-INFO", "setup.cfg"}  # written by setuptools into the sdist, not project files
BUILD = ("import sys; from setuptools import build_meta as b; "
         "print(getattr(b, sys.argv[1])(sys.argv[2]))")


def _ignored(rel, patterns):
    parts = rel.split("/")
    for pattern in patterns:
        anchored = pattern.strip("/")
        if pattern.endswith("/"):  # a directory pattern: any path component
            if any(fnmatch.fnmatch(p, anchored) for p in parts[:-1]):
                return True
        elif any(fnmatch.fnmatch(p, anchored) for p in parts) or fnmatch.fnmatch(rel, anchored):
            return True
    return False


def project_files(root=ROOT):
    """The project's files, relative POSIX paths (see the module docstring)."""
    root = pathlib.Path(root)
    if (root / ".git").exists() and shutil.which("git"):
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True).stdout.decode()
        return sorted(p for p in out.split("\0") if p and (root / p).is_file())
    lines = (root / ".gitignore").read_text().splitlines()
    patterns = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")] + [".git/"]
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not _ignored(rel, patterns) and rel.split("/")[0] not in SDIST_METADATA:
            files.append(rel)
    return sorted(files)


def _build(kind, src, out):
    """``setuptools.build_meta.build_<kind>(out)`` run in ``src``; returns the built file's path."""
    proc = subprocess.run([sys.executable, "-c", BUILD, f"build_{kind}", str(out)], cwd=src, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return pathlib.Path(out) / proc.stdout.strip().splitlines()[-1]


def _copy_tree(files, dest, root=ROOT):
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)


def _sdist_names(sdist):
    with tarfile.open(sdist) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    top = {n.split("/", 1)[0] for n in names}
    assert len(top) == 1, top
    return {n.split("/", 1)[1] for n in names}


def _wheel_names(wheel):
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("packaging")
    files = project_files()
    _copy_tree(files, tmp / "src")
    sdist = _build("sdist", tmp / "src", tmp / "dist")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    wheel = _build("wheel", unpacked, tmp / "dist")
    return {"files": files, "sdist": sdist, "wheel": wheel, "tmp": tmp, "unpacked": unpacked}


def missing_modules(files, wheel_names):
    """Every ``.py`` file of ``keras_optreg/`` and ``spec/`` (as ``keras_optreg_spec/``) absent from the wheel."""
    want = {f for f in files if f.startswith("keras_optreg/") and f.endswith(".py")}
    want |= {"keras_optreg_spec/" + f[len("spec/"):] for f in files if f.startswith("spec/") and f.endswith(".py")}
    return sorted(want - wheel_names)


def test_packaging_sdist_holds_every_project_file(built):
    names = _sdist_names(built["sdist"])
    missing = sorted(set(built["files"]) - names)
    assert not missing, f"the sdist lacks {missing}: add them to MANIFEST.in"
    # what else it holds is setuptools' metadata only
    extra = {n for n in names - set(built["files"])
             if n not in SDIST_METADATA and not n.startswith("keras_optreg.egg-info/")}
    assert not extra, extra


def test_packaging_sdist_holds_what_the_tests_examples_and_readme_need(built):
    """The named needs of issue 14: the tests' helpers, spec/README.md, examples/, tox.ini, LICENSE, DEVELOPERS.md,
    and every file README.md and spec/README.md link to."""
    names = _sdist_names(built["sdist"])
    needed = {"tests/conftest.py", "tests/layer_checks.py", "keras_optreg/conformance/strategies.py",
              "tests/badinput.py", "tests/events.py", "spec/README.md", "tox.ini", "LICENSE", "DEVELOPERS.md",
              "pyproject.toml", "README.md", "examples/run_all.py"}
    for doc in ("README.md", "spec/README.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" not in target:
                needed.add(os.path.normpath(os.path.join(os.path.dirname(doc), target)).replace(os.sep, "/"))
    assert "docs/loss_curves.png" in needed  # README shows the demo's figure
    assert not sorted(needed - names)
    assert not sorted(needed - set(built["files"])), "README links to a file the project does not hold"


def test_packaging_project_files_of_the_unpacked_sdist_are_the_clones(built):
    """Without ``.git`` (an unpacked sdist) the ``.gitignore`` walk finds the same files as git in the clone."""
    assert project_files(built["unpacked"]) == built["files"]


def test_packaging_wheel_top_level_names_are_exactly_the_two_packages(built):
    names = _wheel_names(built["wheel"])
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"keras_optreg", "keras_optreg_spec"}
    with zipfile.ZipFile(built["wheel"]) as z:
        info = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert set(z.read(info).decode().split()) == top
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    for extra in ("test", "conformance", "examples"):
        assert f"Provides-Extra: {extra}" in metadata


def test_packaging_wheel_holds_every_module_of_both_packages(built):
    assert not missing_modules(built["files"], _wheel_names(built["wheel"]))
    assert not any(n.startswith(("tests/", "spec/", "examples/")) for n in _wheel_names(built["wheel"]))


def test_packaging_a_new_subpackage_left_out_of_pyproject_is_caught(built, tmp_path):
    """The companion of the test above: pyproject.toml lists packages explicitly, so a new subpackage is left out
    of the wheel until it is listed; the check names it."""
    src = tmp_path / "src"
    _copy_tree(built["files"], src)
    (src / "keras_optreg" / "_new").mkdir()
    (src / "keras_optreg" / "_new" / "__init__.py").write_text('"""a subpackage nobody listed"""\n')
    files = built["files"] + ["keras_optreg/_new/__init__.py"]
    wheel = _build("wheel", src, tmp_path / "dist")
    assert missing_modules(files, _wheel_names(wheel)) == ["keras_optreg/_new/__init__.py"]


def test_packaging_installed_wheel_runs_outside_the_repository(built):
    """``pip install --no-deps`` of the wheel into a folder; from a folder outside the repository, the spec's
    self-check and the conformance tool run from that copy (TensorFlow, Keras, Hypothesis from this environment)."""
    site, cwd = built["tmp"] / "site", built["tmp"] / "elsewhere"
    cwd.mkdir()
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                           str(site), str(built["wheel"])], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, PYTHONPATH=str(site), TF_CPP_MIN_LOG_LEVEL="3")

    def run(*args):
        p = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    where = run("-c", "import keras_optreg, keras_optreg_spec; print(keras_optreg.__file__); "
                      "print(keras_optreg_spec.__file__)").split()
    assert all(pathlib.Path(w).is_relative_to(site) for w in where), where
    assert re.search(r"^(\d+) of \1 errata show a difference", run("-m", "keras_optreg_spec"), re.M)
    table = run("-m", "keras_optreg.conformance", "--only", "sgd", "--max-examples", "3", "--quiet")
    assert "`keras_optreg.SGD`: conforms" in table
