"""pytest plugin: spec coverage from ``@pytest.mark.spec(...)`` markers, not from test names.

``tests/conftest.py`` loads it (``pytest_plugins``); ``import keras_optreg.conformance`` does not.
A library test states the spec ids it checks with ``@pytest.mark.spec("eq18")``. The plugin

- builds the coverage table (spec id -> test node ids) from those markers at collection, and
  rejects a marker naming an id that is not in ``keras_optreg_spec.SPEC_IDS``;
- records, per test, whether its setup, call and teardown all passed (a skipped test, or a test
  whose parametrization was skipped, does not count);
- moves the test marked ``spec_coverage_check`` to the end of the run, where
  :meth:`SpecCoverage.check` fails it when a spec id has no library test that ran and passed.

Coverage is enforced only when the whole suite is collected: every ``test_*.py`` file under the
``testpaths`` was collected (so not ``-o python_files=...`` nor a file or folder argument) and no
test was deselected (``-k``, ``-m``, ``--lf``, ``--deselect``). A subset run cannot tell what the
rest would cover, so the check skips there and says why. Tests of the spec itself
(``test_spec_*.py``) check the transcription, not the library: their markers do not count.
"""

from __future__ import annotations

import pathlib

import pytest

MARKER = "spec"
CHECK_MARKER = "spec_coverage_check"
TEST_FILES = "test_*.py"  # the repository's python_files
SPEC_TEST_FILES = "test_spec_*.py"
PLUGIN_NAME = "keras_optreg_spec_coverage"


def marked_ids(item):
    """The spec ids of every ``spec`` marker on ``item`` (function, class, module and parametrization)."""
    return {i for mark in item.iter_markers(MARKER) for i in mark.args}


def coverage_table(items, spec_ids):
    """{spec id: [node ids of the library tests marked with it]} for every id of ``spec_ids``.

    Raises ``pytest.UsageError`` for a marker naming an id that is not a spec id (a typo covers nothing).
    """
    table = {i: [] for i in spec_ids}
    for item in items:
        if item.path.match(SPEC_TEST_FILES):
            continue
        for spec_id in sorted(marked_ids(item)):
            if spec_id not in table:
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.spec({spec_id!r}) names no spec id "
                                        f"(keras_optreg_spec.SPEC_IDS: {', '.join(spec_ids)})")
            table[spec_id].append(item.nodeid)
    return table


def uncovered(table, passed):
    """The spec ids none of whose tests is in ``passed`` (the node ids that ran and passed), sorted."""
    return sorted(i for i, nodeids in table.items() if not set(nodeids) & passed)


class SpecCoverage:
    """The per-session state: the table, what passed, and whether the whole suite was collected."""

    def __init__(self, config, spec_ids):
        self.config = config
        self.spec_ids = tuple(spec_ids)
        self.table = {i: [] for i in self.spec_ids}
        self.ran_ok, self.failed = set(), set()
        self.modules, self.deselected = set(), 0
        self.subset_reason = "collection has not finished"

    # ---- hooks ---------------------------------------------------------------------------------

    def pytest_collectreport(self, report):
        if "::" not in report.nodeid and report.nodeid.endswith(".py"):
            self.modules.add(report.nodeid)

    def pytest_deselected(self, items):
        self.deselected += len(items)

    @pytest.hookimpl(trylast=True)  # after -k/-m deselection and any reordering
    def pytest_collection_modifyitems(self, session, config, items):
        self.table = coverage_table(items, self.spec_ids)
        items.sort(key=lambda item: item.get_closest_marker(CHECK_MARKER) is not None)  # stable: the check last

    def pytest_collection_finish(self, session):
        self.subset_reason = self._subset_reason(session)

    def pytest_runtest_logreport(self, report):
        if report.failed or report.skipped:
            self.failed.add(report.nodeid)
        elif report.when == "call" and report.passed:
            self.ran_ok.add(report.nodeid)

    # ---- verdict -------------------------------------------------------------------------------

    def _subset_reason(self, session):
        if self.deselected:
            return f"{self.deselected} tests deselected"
        root = self.config.rootpath
        folders = [root / p for p in self.config.getini("testpaths")] or [root]
        on_disk = {str(p.relative_to(root)) for f in folders for p in pathlib.Path(f).rglob(TEST_FILES)}
        missing = sorted(on_disk - self.modules)
        if missing:
            return f"{len(missing)} test files not collected (e.g. {missing[0]})"
        return None

    @property
    def passed(self):
        return self.ran_ok - self.failed

    def uncovered(self):
        return uncovered(self.table, self.passed)

    def check(self):
        """Skip on a subset run; else fail naming each spec id without a library test that ran and passed."""
        if self.subset_reason:
            pytest.skip(f"subset run ({self.subset_reason}): spec coverage is enforced on the whole suite only")
        missing = self.uncovered()
        if missing:
            lines = [f"  {i}: " + (", ".join(self.table[i]) + " (none passed)" if self.table[i] else "no test marked")
                     for i in missing]
            pytest.fail("spec ids without a library test that ran and passed:\n" + "\n".join(lines), pytrace=False)


def pytest_configure(config):
    import keras_optreg_spec

    config.addinivalue_line("markers", f"{MARKER}(*ids): the spec ids (keras_optreg_spec.SPEC_IDS) the test checks")
    config.addinivalue_line("markers", f"{CHECK_MARKER}: the spec coverage check; runs last")
    config.pluginmanager.register(SpecCoverage(config, keras_optreg_spec.SPEC_IDS), PLUGIN_NAME)


@pytest.fixture
def spec_coverage(request):
    """This session's :class:`SpecCoverage`."""
    return request.config.pluginmanager.get_plugin(PLUGIN_NAME)
