"""End of a session: the reports, then the secrets scrub over the whole session folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from live_tests.compare import Finding
from live_tests.regression_tests.accepted import write_accepted_diffs
from live_tests.regression_tests.session import RegressionSession
from live_tests.reports import Outcome, TestResult, build_report_context, write_reports
from live_tests.secrets import ScrubReport, SecretMasker, scrub_session
from live_tests.verdicts import EvaluationMode


@dataclass
class SessionSummary:
    session_dir: Path
    reports: dict[str, Path] = field(default_factory=dict)
    verdict: str = ""
    # The run could not decide (a control failed): in strict mode that is no green run either.
    undecided: bool = False
    counts: dict[Outcome, int] = field(default_factory=dict)
    scrub: ScrubReport = field(default_factory=ScrubReport)
    secrets: int = 0
    short_secrets: int = 0
    error: str | None = None
    accepted_written: int | None = None  # findings written by --update-accepted-diffs
    accepted_path: Path | None = None
    accepted_unused: int = 0  # entries of --accepted-diffs no finding of this run matched


SUMMARY_KEY = pytest.StashKey[SessionSummary]()


def finish_session(
    session: RegressionSession, results: list[TestResult], interrupted: bool, expected_tests: int | None = None
) -> SessionSummary:
    """Write report.html/.md/.json, close everything, mask the secrets in every file. Never raises."""
    summary = SessionSummary(session.session_dir, accepted_path=session.settings.accepted_diffs.path)
    if interrupted:
        session.frozen = True  # Ctrl-C: no new container, even to learn the secrets from the spec
    masker = session.masker
    s = session.settings
    try:
        context = build_report_context(
            session.query(),
            connector=s.connector,
            control_version=s.control.version,
            target_version=s.target.version,
            run_id=s.run_id,
            test_results=results,
            configured_streams=[c["stream"]["name"] for c in session.configured_streams()],
            pr_url=s.pr_url,
            evaluation_mode=s.evaluation_mode,
            http_capture=s.proxy.enabled,
            interrupted=interrupted,
            expected_tests=expected_tests,
            noise=session.noise_baselines() if not interrupted else [],
            perf_tolerance=s.perf_tolerance,
        )
        summary.reports = write_reports(session.session_dir, context)
        summary.verdict = context.session_verdict.text
        summary.undecided = (
            context.session_verdict.word == "inconclusive" and s.evaluation_mode is EvaluationMode.STRICT
        )
        summary.counts = context.outcome_counts
        summary.accepted_unused = len(s.accepted_diffs.unused())
        if s.update_accepted_diffs and s.accepted_diffs.path is not None:
            summary.accepted_written = write_accepted_diffs(
                s.accepted_diffs.path,
                {name: [_masked(f, masker) for f in fs] for name, fs in session.findings_seen.items()},
                connector=s.connector,
                control_version=s.control.version,
                target_version=s.target.version,
                reasons=s.accepted_diffs.entries,
            )
    except Exception as exc:  # the scrub below must happen whatever went wrong
        summary.error = f"could not write the reports: {type(exc).__name__}: {masker.mask_text(str(exc))}"
    finally:
        session.frozen = True
        session.close()
        summary.scrub = scrub_session(session.session_dir, masker)
        summary.secrets, summary.short_secrets = len(masker.secrets), len(masker.skipped)
    return summary


def terminal_lines(summary: SessionSummary) -> list[str]:
    lines = [f"Session folder: {summary.session_dir}"]
    if summary.reports:
        lines.append(f"Report: {summary.reports['html']}  (also report.md, report.json)")
        shown = ", ".join(f"{n} {o.value}" for o, n in summary.counts.items() if n)
        lines.append(f"Verdict: {summary.verdict}" + (f" ({shown})" if shown else ""))
    if summary.accepted_written is not None:
        lines.append(f"Accepted differences: {summary.accepted_written} finding(s) written to {summary.accepted_path}")
    elif summary.accepted_unused:
        lines.append(
            f"Accepted differences: {summary.accepted_unused} entr(y/ies) of {summary.accepted_path} matched no"
            " finding of this run (fixed, or the test did not run): --update-accepted-diffs rewrites the file"
        )
    if summary.error:
        lines.append(summary.error)
    scrub = summary.scrub
    if summary.secrets:
        lines.append(
            f"Secrets: {summary.secrets} config value(s) masked in {len(scrub.files_masked)} file(s),"
            f" {len(scrub.binary_dumps_masked)} .mitm dump(s) (same-length masks) and"
            f" {scrub.database_cells_masked} duck.db cell(s)"
        )
    if summary.short_secrets:
        lines.append(f"Warning: {summary.short_secrets} secret value(s) shorter than 4 characters were not masked")
    return lines


def _masked(finding: Finding, masker: SecretMasker) -> Finding:
    """The finding as the accepted-differences file may show it: no secret in its message or values."""
    if not masker:
        return finding
    values = {side: getattr(finding, side) for side in ("control", "target")}
    hidden = {side: None if masker.contains_secret(repr(v)) else v for side, v in values.items()}
    return dataclasses.replace(finding, message=masker.mask_text(finding.message), **hidden)
