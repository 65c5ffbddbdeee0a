"""What a report shows: `ReportContext`, filled from duck.db and the suite's test results.

`build_report_context` counts messages, records per stream, stream coverage and HTTP traffic in
duck.db, and compares the executions' performance, for every command that ran, and takes the test
results from the caller (the suite).
The session's verdict is `live_tests.verdicts.decide_session`'s, nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from live_tests.compare import Comparison, HttpTraffic, catalog_streams, http_traffic, message_counts
from live_tests.compare import records_per_stream as count_records_per_stream
from live_tests.compare.performance import DEFAULT_TOLERANCE, PerformanceComparison, compare_performance
from live_tests.compare.volatility import NoiseBaseline
from live_tests.models import ALL_KINDS, Command, ExecutionKey
from live_tests.reports.evidence import FieldEvidence, record_evidence
from live_tests.reports.http_section import HttpCommandSection, http_sections
from live_tests.verdicts import EvaluationMode, Outcome, SessionVerdict, decide_session, decide_test

# Commands whose records are counted per stream.
READ_COMMANDS = (Command.READ.value, Command.READ_WITH_STATE.value)


@dataclass
class TestResult:
    """One test of the suite as the report shows it."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    outcome: Outcome
    docstring: str = ""
    summary: str = ""  # the diff summary text (e.g. Comparison.summary_text())
    diff_files: list[Path] = field(default_factory=list)
    message: str = ""  # why it failed, errored or was skipped, one or a few lines
    duration_s: float | None = None
    evidence: list[FieldEvidence] = field(default_factory=list)  # example records per changed field

    @classmethod
    def from_comparison(
        cls, name: str, comparison: Comparison, *, docstring: str = "", diff_dir: Path | None = None
    ) -> TestResult:
        """Outcome, summary and (if `diff_dir` is given) diff files from a comparison result."""
        outcome = decide_test(f.severity for f in comparison.findings).outcome
        files = comparison.write_diff_files(diff_dir) if diff_dir is not None else []
        message = "; ".join(f.message for f in comparison.breaking[:3])
        if len(comparison.breaking) > 3:
            message += f"; … {len(comparison.breaking) - 3} more"
        evidence = record_evidence(getattr(comparison, "streams", {}).values())
        return cls(name, outcome, docstring, comparison.summary_text(), files, message, evidence=evidence)


@dataclass(frozen=True)
class CountRow:
    """A tally on both sides, e.g. records of a stream or messages of a kind for one command."""

    command: str
    label: str  # the stream or the message kind
    control: int
    target: int

    @property
    def delta(self) -> int:
        return self.target - self.control

    @property
    def delta_pct(self) -> float | None:
        return None if self.control == 0 else 100.0 * self.delta / self.control


@dataclass(frozen=True)
class StreamCoverage:
    catalog: list[str]  # streams discovered (control and target together)
    configured: list[str]  # streams in the configured catalog the reads used
    with_data: list[str]  # streams with at least one record in a read, on either side

    @property
    def all_streams(self) -> list[str]:
        return sorted(set(self.catalog) | set(self.configured) | set(self.with_data))

    @property
    def untested(self) -> dict[str, str]:
        """Streams whose records nothing compared -> why."""
        reasons = {s: "not in the configured catalog" for s in self.catalog if s not in self.configured}
        reasons |= {s: "no records on either side" for s in self.configured if s not in self.with_data}
        return dict(sorted(reasons.items()))


@dataclass
class ReportContext:
    connector: str
    control_version: str
    target_version: str
    run_id: str
    test_results: list[TestResult]
    coverage: StreamCoverage
    message_counts: list[CountRow] = field(default_factory=list)  # label = message kind
    records_per_stream: list[CountRow] = field(default_factory=list)  # label = stream
    # version -> traffic; None: no traffic table in duck.db (not captured)
    http_traffic: dict[str, HttpTraffic | None] = field(default_factory=dict)
    http_capture: bool = True
    http_calls: list[HttpCommandSection] = field(default_factory=list)  # per command, control vs target
    pr_url: str | None = None
    evaluation_mode: EvaluationMode = EvaluationMode.STRICT
    date: datetime = field(default_factory=lambda: datetime.now(UTC))
    interrupted: bool = False  # Ctrl-C (or SIGTERM) before every test ran
    expected_tests: int | None = None  # tests collected; more than the results when interrupted
    noise: list[NoiseBaseline] = field(default_factory=list)  # run-time noise set aside, per read command
    performance: list[PerformanceComparison] = field(default_factory=list)  # per command that ran, control vs target

    @property
    def sorted_results(self) -> list[TestResult]:
        """Failures and errors first, then inconclusive, passed with findings, passed, skipped; by name within
        (a test's `[read]` before its `[read-with-state]`)."""
        return sorted(self.test_results, key=lambda r: (r.outcome.rank, r.name.partition("[")[0], len(r.name), r.name))

    @property
    def outcome_counts(self) -> dict[Outcome, int]:
        return {o: sum(1 for r in self.test_results if r.outcome is o) for o in Outcome}

    @property
    def session_verdict(self) -> SessionVerdict:
        return decide_session(
            (r.outcome for r in self.test_results),
            mode=self.evaluation_mode,
            interrupted=self.interrupted,
            expected=self.expected_tests,
        )

    @property
    def verdict(self) -> str:
        """ "failed", "passed", "inconclusive", "no tests ran" or "interrupted"."""
        return self.session_verdict.word

    @property
    def blocking(self) -> bool:
        """Whether the verdict should fail the run (a failure, in strict mode)."""
        return self.session_verdict.blocking


def build_report_context(
    con: duckdb.DuckDBPyConnection,
    *,
    connector: str,
    control_version: str,
    target_version: str,
    run_id: str,
    test_results: Sequence[TestResult],
    configured_streams: Iterable[str] = (),
    pr_url: str | None = None,
    evaluation_mode: EvaluationMode | str = EvaluationMode.STRICT,
    http_capture: bool = True,
    date: datetime | None = None,
    interrupted: bool = False,
    expected_tests: int | None = None,
    noise: Sequence[NoiseBaseline] = (),
    perf_tolerance: float = DEFAULT_TOLERANCE,
) -> ReportContext:
    """Fill a ReportContext from duck.db for every command that ran on either version."""
    ran = {
        command
        for (command,) in con.execute(
            "SELECT DISTINCT command FROM executions WHERE connector = ? AND version IN (?, ?)",
            [connector, control_version, target_version],
        ).fetchall()
    }
    commands = [c.value for c in Command if c.value in ran]
    counts: list[CountRow] = []
    per_stream: list[CountRow] = []
    for command in commands:
        c_counts = message_counts(con, ExecutionKey(connector, control_version, command))
        t_counts = message_counts(con, ExecutionKey(connector, target_version, command))
        counts += [
            CountRow(command, kind, c_counts[kind], t_counts[kind])
            for kind in ALL_KINDS
            if c_counts[kind] or t_counts[kind]
        ]
        if command in READ_COMMANDS:
            c_streams = count_records_per_stream(con, ExecutionKey(connector, control_version, command))
            t_streams = count_records_per_stream(con, ExecutionKey(connector, target_version, command))
            per_stream += [
                CountRow(command, s, c_streams.get(s, 0), t_streams.get(s, 0))
                for s in sorted(set(c_streams) | set(t_streams))
            ]
    discovered = set(catalog_streams(con, ExecutionKey(connector, control_version, Command.DISCOVER.value)))
    discovered |= set(catalog_streams(con, ExecutionKey(connector, target_version, Command.DISCOVER.value)))
    coverage = StreamCoverage(
        catalog=sorted(discovered),
        configured=sorted(set(configured_streams)),
        with_data=sorted({row.label for row in per_stream if row.control or row.target}),
    )
    traffic = {v: http_traffic(con, connector, v) for v in (control_version, target_version)}
    performance = [
        compare_performance(
            con,
            ExecutionKey(connector, control_version, command),
            ExecutionKey(connector, target_version, command),
            tolerance=perf_tolerance,
        )
        for command in commands
    ]
    return ReportContext(
        connector=connector,
        control_version=control_version,
        target_version=target_version,
        run_id=run_id,
        test_results=list(test_results),
        coverage=coverage,
        message_counts=counts,
        records_per_stream=per_stream,
        http_traffic=traffic,
        http_capture=http_capture,
        http_calls=http_sections(con, connector, control_version, target_version, commands),
        pr_url=pr_url,
        evaluation_mode=EvaluationMode(evaluation_mode),
        date=date or datetime.now(UTC),
        interrupted=interrupted,
        expected_tests=expected_tests,
        noise=list(noise),
        performance=performance,
    )
