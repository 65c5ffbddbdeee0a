"""From findings to outcomes: how a test is judged, and what the report shows of it.

`Judge` (the `judge` fixture) records a comparison or validation for the report and fails the test
when `live_tests.verdicts.decide_test` says so. `Inconclusive` is raised by the run fixtures when
the control did not succeed: there is nothing to compare the target with. `record_report` turns
pytest's report of each phase into the test's `TestResult`. Diff files are written for every test
with differences into `<session>/<test name>/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from live_tests.compare import Finding, Severity
from live_tests.regression_tests.added import judged_severity
from live_tests.regression_tests.session import RegressionSession
from live_tests.reports import Example, FieldEvidence, Outcome, TestResult, record_evidence
from live_tests.secrets import scrub_tree
from live_tests.verdicts import TestVerdict, decide_test, fails

# Failing findings listed in a failure message; all of them are in the diff files.
_MESSAGE_FINDINGS = 10
# ...and in the one-line message of the report's test list.
_REPORT_MESSAGE_FINDINGS = 3

SESSION_KEY = pytest.StashKey[RegressionSession]()
RESULTS_KEY = pytest.StashKey[dict[str, TestResult]]()


class Inconclusive(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """The test cannot decide: the control failed, so the target has no baseline. Not a pass, not a failure."""


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
    verdict: TestVerdict
    differences: list[Finding] = field(default_factory=list)  # not INFO, not accepted
    failing: list[Finding] = field(default_factory=list)
    accepted: list[Finding] = field(default_factory=list)
    diff_files: list[Path] = field(default_factory=list)
    message: str = ""  # one line for the report's test list
    evidence: list[FieldEvidence] = field(default_factory=list)


FINDINGS_KEY = pytest.StashKey[TestFindings]()
SETUP_S_KEY = pytest.StashKey[float]()


def test_dir_name(test_name: str) -> str:
    """`test_records[read-with-state]` -> `test_records_read-with-state` (a folder name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("_")


def session_of(item: pytest.Item) -> RegressionSession:
    return item.config.stash[SESSION_KEY]


class Judge:
    """`judge(result)` in a test: record `result` for the report, fail the test when its findings say so."""

    def __init__(self, item: pytest.Item) -> None:
        self.item = item

    def __call__(self, result: Checked) -> None:
        item, session = self.item, session_of(self.item)
        accepted, open_findings = session.accepted_diffs.split(item.name, result.findings)
        configured = {c["stream"]["name"] for c in session.configured_streams()}
        severities = [judged_severity(f, configured) for f in open_findings]
        verdict = decide_test(
            severities,
            diagnostic_test=item.get_closest_marker("diagnostic") is not None,
            mode=session.settings.evaluation_mode,
            accepted=len(accepted),
        )
        session.record_findings(item.name, result.findings)  # for --update-accepted-diffs
        differences = [f for f in open_findings if f.severity is not Severity.INFO]
        failing = [f for f, sev in zip(open_findings, severities, strict=True) if fails(sev)]
        title, _, _ = result.summary_text().partition("\n")[0].partition(": ")
        text = _with_accepted(_with_verdict(result.summary_text(), title, _verdict_line(verdict)), accepted)
        summary = session.mask(text)
        files: list[Path] = []
        if open_findings or accepted:  # notes too: findings.json is where every finding can be read
            directory = session.session_dir / test_dir_name(item.name)
            files = result.write_diff_files(directory)
            # The comparison's own verdict knows nothing of the test's rules and mode: show the test's.
            (directory / "summary.txt").write_text(summary, encoding="utf-8")
            scrub_tree(directory, session.masker)  # now, not only at session end: a killed run leaks nothing
        message = session.mask(_message(verdict, failing, differences, accepted))
        evidence = _masked_evidence(record_evidence(getattr(result, "streams", {}).values()), session)
        item.stash[FINDINGS_KEY] = TestFindings(
            summary, verdict, differences, failing, accepted, files, message, evidence if differences else []
        )
        if verdict.outcome is Outcome.PASSED_WITH_FINDINGS:
            item.user_properties.append(("live_tests_outcome", verdict.outcome.value))
        if verdict.outcome is Outcome.FAILED:
            lines = [f"{title}: {len(failing)} difference(s) fail this test"]
            lines += [f"  - {f.message}" for f in failing[:_MESSAGE_FINDINGS]]
            if len(failing) > _MESSAGE_FINDINGS:
                lines.append(f"  … and {len(failing) - _MESSAGE_FINDINGS} more")
            lines.append(f"Diff files: {files[0].parent if files else session.session_dir}")
            pytest.fail(session.mask("\n".join(lines)), pytrace=False)


def _masked_evidence(evidence: list[FieldEvidence], session: RegressionSession) -> list[FieldEvidence]:
    for item in evidence:
        item.examples = [Example(*(session.mask(v) for v in (e.key, e.control, e.target))) for e in item.examples]
    return evidence


def _message(verdict: TestVerdict, failing: list[Finding], differences: list[Finding], accepted: list[Finding]) -> str:
    shown = failing or differences
    message = "; ".join(f.message for f in shown[:_REPORT_MESSAGE_FINDINGS])
    if len(shown) > _REPORT_MESSAGE_FINDINGS:
        message += f"; … {len(shown) - _REPORT_MESSAGE_FINDINGS} more"
    if verdict.tolerated:
        message = f"diagnostic mode: {len(failing)} difference(s) that fail this test in strict mode: {message}"
    elif differences and not failing:
        message = f"{len(differences)} non-breaking difference(s): {message}"
    if accepted:
        message = f"{message}; {len(accepted)} accepted" if message else f"{len(accepted)} accepted difference(s)"
    return message


def _verdict_line(verdict: TestVerdict) -> str:
    accepted = f", {verdict.accepted} accepted" if verdict.accepted else ""
    if verdict.tolerated:
        return (
            f"PASSED with findings (diagnostic mode: {verdict.failing} difference(s) reported, not failed on{accepted})"
        )
    if verdict.outcome is Outcome.FAILED:
        return f"FAILED ({verdict.failing} difference(s) fail this test{accepted})"
    if verdict.differences:
        return f"PASSED with findings ({verdict.differences} non-breaking difference(s){accepted})"
    if verdict.accepted:
        return f"PASSED with findings ({verdict.accepted} accepted difference(s))"
    return "PASSED"


def _with_verdict(summary: str, title: str, verdict: str) -> str:
    _, newline, rest = summary.partition("\n")
    return f"{title}: {verdict}{newline}{rest}"


def _with_accepted(summary: str, accepted: list[Finding]) -> str:
    if not accepted:
        return summary
    lines = ["", f"Accepted differences ({len(accepted)}, in --accepted-diffs: they do not fail):"]
    lines += [f"  - {f.message}" for f in accepted[: _MESSAGE_FINDINGS * 5]]
    return summary.rstrip("\n") + "\n" + "\n".join(lines) + "\n"


def _failure_message(report: pytest.TestReport) -> str:
    """One line: the skip reason, or the start of the failure (up to a stderr tail)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    return _first_lines(str(crash.message) if crash is not None else report.longreprtext.strip())


def _first_lines(text: str) -> str:
    """The start of a failure message as one line (up to a stderr tail)."""
    lines = []
    for line in text.removeprefix("Failed: ").splitlines():
        if "stderr (last lines)" in line or len(lines) == 4:
            break
        lines.append(line.strip().removeprefix("- "))
    return " ".join(line for line in lines if line)


def _outcome(report: pytest.TestReport, call: pytest.CallInfo[None], seen: TestFindings | None) -> Outcome:
    if call.excinfo is not None and call.excinfo.errisinstance(Inconclusive):
        return Outcome.INCONCLUSIVE
    if report.skipped:
        return Outcome.SKIPPED
    if report.failed:
        return Outcome.FAILED if report.when == "call" else Outcome.ERROR
    return seen.verdict.outcome if seen is not None else Outcome.PASSED


def record_report(item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
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
    outcome = _outcome(report, call, seen)
    if outcome is Outcome.INCONCLUSIVE:
        message = session.mask(_first_lines(str(call.excinfo.value.msg)))  # type: ignore[union-attr]
        item.user_properties.append(("live_tests_outcome", outcome.value))  # junit: more than "skipped"
    else:
        message = session.mask(_failure_message(report)) if not report.passed else ""
    if seen is not None and (report.passed or report.when == "call") and (seen.differences or seen.accepted):
        message = seen.message
    previous = results.get(item.nodeid)
    if previous is not None and report.when == "teardown":  # a teardown error spoils a passed test
        previous.outcome, previous.message = Outcome.ERROR, previous.message or message
        return
    diff_files = list(seen.diff_files) if seen else []
    summary = seen.summary if seen else ""
    if outcome in (Outcome.FAILED, Outcome.ERROR, Outcome.INCONCLUSIVE) and not diff_files:
        # No comparison got that far (an execution failed...): the failure itself is the diff file.
        directory = session.session_dir / test_dir_name(item.name)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "summary.txt"
        text = str(call.excinfo.value.msg) if outcome is Outcome.INCONCLUSIVE else report.longreprtext  # type: ignore[union-attr]
        path.write_text(session.mask(text) + "\n", encoding="utf-8")
        diff_files, summary = [path], summary or session.mask(text)
    setup_s = item.stash.get(SETUP_S_KEY, 0.0) if report.when == "call" else 0.0
    results[item.nodeid] = TestResult(
        name=item.name,
        outcome=outcome,
        docstring=docstring,
        summary=summary,
        diff_files=diff_files,
        message=message,
        duration_s=round(report.duration + setup_s, 3),
        evidence=list(seen.evidence) if seen else [],
    )
