"""From findings to outcomes: how a test judges a comparison or validation, and what the report shows.

`judge` decides whether a test fails. A difference is any finding that is not INFO. In strict mode
a test fails on any difference (on breaking ones only for tests that say `FailOn.BREAKING`, e.g.
the spec, whose additions never hurt a user). In diagnostic mode, tests marked `diagnostic` do
not fail on their findings: the report shows them as "passed with findings".
Diff files are written for every test with differences into `<session>/<test name>/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import pytest

from live_tests.compare import Finding, Severity
from live_tests.regression_tests.session import ExecutionPair, RegressionSession
from live_tests.reports import EvaluationMode, Outcome, TestResult
from live_tests.secrets import scrub_tree

# Failing findings listed in a failure message; all of them are in the diff files.
_MESSAGE_FINDINGS = 10
# ...and in the one-line message of the report's test list.
_REPORT_MESSAGE_FINDINGS = 3

SESSION_KEY = pytest.StashKey[RegressionSession]()
RESULTS_KEY = pytest.StashKey[dict[str, TestResult]]()


class FailOn(StrEnum):
    ANY = "any"  # any difference fails the test (strict mode's rule)
    BREAKING = "breaking"  # only breaking differences fail it


class Checked(Protocol):
    """A comparison result (live_tests.compare) or a Validation."""

    findings: list[Finding]

    def summary_text(self) -> str: ...

    def write_diff_files(self, directory: Path) -> list[Path]: ...


@dataclass
class TestFindings:
    """What `judge` saw in a test, for the report."""

    __test__ = False

    summary: str
    differences: list[Finding] = field(default_factory=list)
    failing: list[Finding] = field(default_factory=list)
    diff_files: list[Path] = field(default_factory=list)
    tolerated: bool = False  # failing findings let through by diagnostic mode
    message: str = ""  # one line for the report's test list


FINDINGS_KEY = pytest.StashKey[TestFindings]()
SETUP_S_KEY = pytest.StashKey[float]()


def test_dir_name(test_name: str) -> str:
    """`test_records[read-with-state]` -> `test_records_read-with-state` (a folder name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("_")


def session_of(item: pytest.Item) -> RegressionSession:
    return item.config.stash[SESSION_KEY]


def judge(request: pytest.FixtureRequest, result: Checked, fail_on: FailOn = FailOn.ANY) -> None:
    """Record the result for the report and fail the test when its differences say so."""
    item = request.node
    session = session_of(item)
    differences = [f for f in result.findings if f.severity is not Severity.INFO]
    failing = [f for f in differences if fail_on is FailOn.ANY or f.severity is Severity.BREAKING]
    diagnostic = item.get_closest_marker("diagnostic") is not None
    tolerated = bool(failing) and diagnostic and session.settings.evaluation_mode is EvaluationMode.DIAGNOSTIC
    title, _, _ = result.summary_text().partition("\n")[0].partition(": ")
    summary = session.mask(_with_verdict(result.summary_text(), title, _verdict(failing, differences, tolerated)))
    files: list[Path] = []
    if differences:
        directory = session.session_dir / test_dir_name(item.name)
        files = result.write_diff_files(directory)
        # The comparison's own verdict knows nothing of the test's rules and mode: show the test's.
        (directory / "summary.txt").write_text(summary, encoding="utf-8")
        scrub_tree(directory, session.masker)  # now, not only at session end: a killed run leaks nothing
    shown = failing or differences
    message = "; ".join(f.message for f in shown[:_REPORT_MESSAGE_FINDINGS])
    if len(shown) > _REPORT_MESSAGE_FINDINGS:
        message += f"; … {len(shown) - _REPORT_MESSAGE_FINDINGS} more"
    if tolerated:
        message = f"diagnostic mode: {len(failing)} difference(s) that fail this test in strict mode: {message}"
    elif differences and not failing:
        message = f"{len(differences)} non-breaking difference(s): {message}"
    item.stash[FINDINGS_KEY] = TestFindings(summary, differences, failing, files, tolerated, session.mask(message))
    if tolerated or (differences and not failing):
        item.user_properties.append(("live_tests_outcome", Outcome.PASSED_WITH_FINDINGS.value))
    if failing and not tolerated:
        lines = [f"{title}: {len(failing)} difference(s) fail this test"]
        lines += [f"  - {f.message}" for f in failing[:_MESSAGE_FINDINGS]]
        if len(failing) > _MESSAGE_FINDINGS:
            lines.append(f"  … and {len(failing) - _MESSAGE_FINDINGS} more")
        lines.append(f"Diff files: {files[0].parent if files else session.session_dir}")
        pytest.fail(session.mask("\n".join(lines)), pytrace=False)


def _verdict(failing: list[Finding], differences: list[Finding], tolerated: bool) -> str:
    if tolerated:
        return f"PASSED with findings (diagnostic mode: {len(failing)} difference(s) reported, not failed on)"
    if failing:
        return f"FAILED ({len(failing)} difference(s) fail this test)"
    if differences:
        return f"PASSED with findings ({len(differences)} non-breaking difference(s))"
    return "PASSED"


def _with_verdict(summary: str, title: str, verdict: str) -> str:
    _, newline, rest = summary.partition("\n")
    return f"{title}: {verdict}{newline}{rest}"


def require_success(request: pytest.FixtureRequest, pair: ExecutionPair) -> None:
    """Fail the test when the control or the target execution did not succeed."""
    failures = pair.failures()
    if not failures:
        return
    lines = [f"`{pair.command.value}` did not succeed on both versions:", *(f"  - {f}" for f in failures)]
    for side, result in (("control", pair.control), ("target", pair.target)):
        if not result.success and result.stderr_tail.strip():
            tail = "\n".join(f"    {line}" for line in result.stderr_tail.strip().splitlines()[-8:])
            lines.append(f"  {side} stderr (last lines):\n{tail}")
    lines.append(f"Artifacts: {pair.target.inputs.artifacts_dir.parent}")
    pytest.fail(session_of(request.node).mask("\n".join(lines)), pytrace=False)


def _failure_message(report: pytest.TestReport) -> str:
    """One line: the skip reason, or the start of the failure (up to a stderr tail)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = str(crash.message) if crash is not None else report.longreprtext.strip()
    lines = []
    for line in text.removeprefix("Failed: ").splitlines():
        if "stderr (last lines)" in line or len(lines) == 4:
            break
        lines.append(line.strip().removeprefix("- "))
    return " ".join(line for line in lines if line)


def record_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """Turn pytest's report of one phase into the test's entry of the session report."""
    if SESSION_KEY not in item.config.stash:
        return
    if report.when == "setup":
        # Executions run in (session) fixtures: their time belongs to the first test needing them.
        item.stash[SETUP_S_KEY] = report.duration
    if report.when in ("setup", "teardown") and report.passed:
        return
    session = session_of(item)
    results = item.config.stash.setdefault(RESULTS_KEY, {})
    seen = item.stash.get(FINDINGS_KEY, None)
    docstring = getattr(getattr(item, "obj", None), "__doc__", None) or ""
    message = session.mask(_failure_message(report)) if not report.passed else ""
    if seen is not None and (report.passed or report.when == "call"):
        message = seen.message if seen.differences else message
    if report.skipped:
        outcome = Outcome.SKIPPED
    elif report.failed:
        outcome = Outcome.FAILED if report.when == "call" else Outcome.ERROR
    elif seen is not None and seen.differences:
        outcome = Outcome.PASSED_WITH_FINDINGS
    else:
        outcome = Outcome.PASSED
    previous = results.get(item.nodeid)
    if previous is not None and report.when == "teardown":  # a teardown error spoils a passed test
        previous.outcome, previous.message = Outcome.ERROR, previous.message or message
        return
    diff_files = list(seen.diff_files) if seen else []
    summary = seen.summary if seen else ""
    if outcome in (Outcome.FAILED, Outcome.ERROR) and not diff_files:
        # No comparison got that far (an execution failed...): the failure itself is the diff file.
        directory = session.session_dir / test_dir_name(item.name)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "summary.txt"
        path.write_text(session.mask(report.longreprtext) + "\n", encoding="utf-8")
        diff_files, summary = [path], summary or session.mask(report.longreprtext)
    setup_s = item.stash.get(SETUP_S_KEY, 0.0) if report.when == "call" else 0.0
    results[item.nodeid] = TestResult(
        name=item.name,
        outcome=outcome,
        docstring=docstring,
        summary=summary,
        diff_files=diff_files,
        message=message,
        duration_s=round(report.duration + setup_s, 3),
    )
