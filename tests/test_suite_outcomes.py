"""How the suite judges tests and turns pytest's reports into the session report, without Docker.

A small pytest run (pytester, in a subprocess) wires the suite's own `Judge`, `Inconclusive` and
`record_report` to a `RegressionSession` whose settings come from the real option parser; its
tests judge planted findings. The results the report would show are checked.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ("pytester",)

CONFTEST = """
import json
from pathlib import Path

import pytest

from live_tests.regression_tests.outcomes import RESULTS_KEY, SESSION_KEY, Judge, record_report
from live_tests.regression_tests.session import RegressionSession
from live_tests.regression_tests.settings import parse_settings
from live_tests.verdicts import decide_session

OPTIONS = json.loads(Path(__file__).with_name("options.json").read_text())


def pytest_configure(config):
    config.addinivalue_line("markers", "diagnostic: findings reported, not failed on")
    config.stash[SESSION_KEY] = RegressionSession(parse_settings(OPTIONS))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    record_report(item, outcome.get_result(), call)


def pytest_sessionfinish(session, exitstatus):
    results = list(session.config.stash.get(RESULTS_KEY, {}).values())
    verdict = decide_session([r.outcome for r in results], expected=session.testscollected)
    out = {r.name: {"outcome": r.outcome.value, "message": r.message, "files": [p.name for p in r.diff_files]}
           for r in results}
    Path(__file__).with_name("results.json").write_text(json.dumps({"tests": out, "verdict": verdict.word}))


@pytest.fixture
def judge(request):
    return Judge(request.node)
"""

TESTS = """
import pytest

from live_tests.compare import Finding, Severity
from live_tests.models import ExecutionKey
from live_tests.regression_tests.outcomes import Inconclusive
from live_tests.regression_tests.validation import Validation

KEY = ExecutionKey("source-x", "2.0.0", "read")


def result(*findings):
    v = Validation("Planted", "source-x 2.0.0 read")
    v.findings += findings
    return v


BREAKING = Finding(
    "record_field_changed", Severity.BREAKING, "`users`: `$.name` differs in 2 records", "users", "$.name"
)
CHANGE = Finding("property_added", Severity.CHANGE, "property `x` was added", None, "x")
NOTE = Finding("note", Severity.INFO, "only a note")
ADDED = Finding("extra_primary_keys", Severity.CHANGE, "`users`: 2 target primary keys not in control", "users")


def test_clean(judge):
    judge(result(NOTE))


def test_breaking(judge):
    judge(result(BREAKING, NOTE))


def test_change(judge):
    judge(result(CHANGE))


@pytest.mark.diagnostic
def test_diagnostic(judge):
    judge(result(BREAKING))


def test_accepted(judge):
    judge(result(BREAKING))


def test_added_unconfigured(judge):
    judge(result(ADDED))


def test_inconclusive():
    why = "inconclusive: the control failed, nothing to compare with.\\n  - control exited 1"
    raise Inconclusive(why, pytrace=False)


def test_skipped():
    pytest.skip("not run: 'read' needs --catalog-path")


def test_crash():
    raise RuntimeError("boom")
"""


def run(pytester: pytest.Pytester, tmp_path: Path, *args: str, **options: object) -> dict:
    values = {
        "connector_image": "airbyte/source-x",
        "control_version": "1.0.0",
        "target_version": "2.0.0",
        "session_dir": str(tmp_path / "session"),
        "disable_proxy": True,
        **options,
    }
    pytester.makefile(".json", options=json.dumps(values))
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_planted=TESTS)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    return json.loads((pytester.path / "results.json").read_text())


def test_outcomes_messages_and_diff_files(pytester: pytest.Pytester, tmp_path: Path) -> None:
    accepted = tmp_path / "accepted.yaml"
    accepted.write_text(
        "accepted:\n  - {test: test_accepted, kind: record_field_changed, stream: users, path: $.name}\n"
    )
    results = run(pytester, tmp_path, f"--junitxml={tmp_path / 'junit.xml'}", accepted_diffs=str(accepted))
    tests = results["tests"]
    assert {name: t["outcome"] for name, t in tests.items()} == {
        "test_clean": "passed",
        "test_breaking": "failed",
        "test_change": "passed with findings",  # only breaking differences fail
        "test_diagnostic": "failed",  # strict mode
        "test_accepted": "passed with findings",
        "test_added_unconfigured": "failed",  # no configured catalog: the stream is not in it
        "test_inconclusive": "inconclusive",
        "test_skipped": "skipped",
        "test_crash": "failed",
    }
    assert tests["test_breaking"]["message"] == "`users`: `$.name` differs in 2 records"
    assert tests["test_change"]["message"] == "1 non-breaking difference(s): property `x` was added"
    assert tests["test_accepted"]["message"] == "1 accepted difference(s)"
    assert tests["test_inconclusive"]["message"] == (
        "inconclusive: the control failed, nothing to compare with. control exited 1"
    )
    assert tests["test_skipped"]["message"] == "not run: 'read' needs --catalog-path"
    assert tests["test_breaking"]["files"] == ["summary.txt", "findings.json"]
    assert tests["test_inconclusive"]["files"] == ["summary.txt"]  # the reason, for the diff folder
    # A test with notes only passes, and its notes are written like any finding.
    assert sorted(Path(f).name for f in tests["test_clean"]["files"]) == ["findings.json", "summary.txt"]
    notes = json.loads((tmp_path / "session" / "test_clean" / "findings.json").read_text())
    assert [(f["kind"], f["severity"], f["message"]) for f in notes["findings"]] == [("note", "info", "only a note")]
    summary = (tmp_path / "session" / "test_breaking" / "summary.txt").read_text()
    assert summary.startswith("Planted: FAILED (1 difference(s) fail this test)")
    accepted_summary = (tmp_path / "session" / "test_accepted" / "summary.txt").read_text()
    assert accepted_summary.startswith("Planted: PASSED with findings (1 accepted difference(s))")
    assert "Accepted differences (1, in --accepted-diffs: they do not fail):" in accepted_summary
    assert results["verdict"] == "failed"
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    properties = {name: {p.get("name"): p.get("value") for p in case.iter("property")} for name, case in cases.items()}
    assert properties["test_inconclusive"] == {"live_tests_outcome": "inconclusive"}
    assert properties["test_accepted"] == {"live_tests_outcome": "passed with findings"}
    assert properties["test_clean"] == {}


def test_diagnostic_mode_tolerates_only_diagnostic_tests(pytester: pytest.Pytester, tmp_path: Path) -> None:
    results = run(pytester, tmp_path, "-k", "diagnostic or breaking", test_evaluation_mode="diagnostic")
    tests = results["tests"]
    assert {name: t["outcome"] for name, t in tests.items()} == {
        "test_breaking": "failed",
        "test_diagnostic": "passed with findings",
    }
    assert tests["test_diagnostic"]["message"].startswith("diagnostic mode: 1 difference(s) that fail this test")


def test_only_passing_and_inconclusive_tests_are_not_passed(pytester: pytest.Pytester, tmp_path: Path) -> None:
    results = run(pytester, tmp_path, "-k", "clean or inconclusive")
    assert results["verdict"] == "inconclusive"
    assert run(pytester, tmp_path, "-k", "clean", session_dir=str(tmp_path / "again"))["verdict"] == "passed"
