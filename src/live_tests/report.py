"""The report stage: one run's verdict as report.html (self-contained), report.md (PR comment), report.json.

`ReportContext` holds everything a report shows; `build_report_context` fills the numbers from
duck.db (message counts, records per stream, stream coverage, HTTP traffic) and takes the test
results from the caller (the regression suite). `write_reports` renders the three files.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import orjson

from live_tests.compare import Comparison, HttpTraffic, catalog_streams, http_traffic, message_counts
from live_tests.compare import records_per_stream as count_records_per_stream
from live_tests.models import ALL_KINDS, Command

TEMPLATES_PACKAGE = "live_tests.report_templates"
# Commands whose records are counted per stream.
READ_COMMANDS = (Command.READ.value, Command.READ_WITH_STATE.value)
# Lines of a diff summary shown inline; the whole text is in the test's summary.txt.
SUMMARY_LINES_HTML = 400
SUMMARY_LINES_MD = 60
# GitHub rejects comments over 65,536 characters.
MARKDOWN_MAX_CHARS = 60_000


class Outcome(StrEnum):
    FAILED = "failed"
    ERROR = "error"
    PASSED_WITH_FINDINGS = "passed with findings"
    PASSED = "passed"
    SKIPPED = "skipped"

    @property
    def rank(self) -> int:
        """Sort order in reports: failures first."""
        return list(Outcome).index(self)

    @property
    def css(self) -> str:
        return self.value.replace(" ", "-")


class EvaluationMode(StrEnum):
    STRICT = "strict"  # failures make the run fail
    DIAGNOSTIC = "diagnostic"  # failures are reported, the run does not fail on them


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

    @classmethod
    def from_comparison(
        cls, name: str, comparison: Comparison, *, docstring: str = "", diff_dir: Path | None = None
    ) -> TestResult:
        """Outcome, summary and (if `diff_dir` is given) diff files from a comparison result."""
        if not comparison.passed:
            outcome = Outcome.FAILED
        elif comparison.has_differences:
            outcome = Outcome.PASSED_WITH_FINDINGS
        else:
            outcome = Outcome.PASSED
        files = comparison.write_diff_files(diff_dir) if diff_dir is not None else []
        message = "; ".join(f.message for f in comparison.breaking[:3])
        if len(comparison.breaking) > 3:
            message += f"; … {len(comparison.breaking) - 3} more"
        return cls(name, outcome, docstring, comparison.summary_text(), files, message)


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
    pr_url: str | None = None
    evaluation_mode: EvaluationMode = EvaluationMode.STRICT
    date: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def sorted_results(self) -> list[TestResult]:
        """Failures and errors first, then passed with findings, passed, skipped; by name within."""
        return sorted(self.test_results, key=lambda r: (r.outcome.rank, r.name))

    @property
    def outcome_counts(self) -> dict[Outcome, int]:
        return {o: sum(1 for r in self.test_results if r.outcome is o) for o in Outcome}

    @property
    def verdict(self) -> str:
        """ "failed" when a test failed or errored, else "passed"."""
        counts = self.outcome_counts
        return "failed" if counts[Outcome.FAILED] or counts[Outcome.ERROR] else "passed"

    @property
    def blocking(self) -> bool:
        """Whether the verdict should fail the run (only in strict mode)."""
        return self.verdict == "failed" and self.evaluation_mode is EvaluationMode.STRICT


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
        c_counts = message_counts(con, (connector, control_version, command))
        t_counts = message_counts(con, (connector, target_version, command))
        counts += [
            CountRow(command, kind, c_counts[kind], t_counts[kind])
            for kind in ALL_KINDS
            if c_counts[kind] or t_counts[kind]
        ]
        if command in READ_COMMANDS:
            c_streams = count_records_per_stream(con, (connector, control_version, command))
            t_streams = count_records_per_stream(con, (connector, target_version, command))
            per_stream += [
                CountRow(command, s, c_streams.get(s, 0), t_streams.get(s, 0))
                for s in sorted(set(c_streams) | set(t_streams))
            ]
    discovered = set(catalog_streams(con, (connector, control_version, Command.DISCOVER.value)))
    discovered |= set(catalog_streams(con, (connector, target_version, Command.DISCOVER.value)))
    coverage = StreamCoverage(
        catalog=sorted(discovered),
        configured=sorted(set(configured_streams)),
        with_data=sorted({row.label for row in per_stream if row.control or row.target}),
    )
    traffic = {v: http_traffic(con, connector, v) for v in (control_version, target_version)}
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
        pr_url=pr_url,
        evaluation_mode=EvaluationMode(evaluation_mode),
        date=date or datetime.now(UTC),
    )


def write_reports(out_dir: Path, context: ReportContext) -> dict[str, Path]:
    """Write report.html, report.md and report.json into `out_dir`; returns {"html"|"md"|"json": path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"html": out_dir / "report.html", "md": out_dir / "report.md", "json": out_dir / "report.json"}
    view = _view(out_dir, context)
    paths["html"].write_text(_environment(autoescape=True).get_template("report.html.j2").render(view), "utf-8")
    markdown = _environment(autoescape=False).get_template("report.md.j2").render(view)
    if len(markdown) > MARKDOWN_MAX_CHARS:
        cut = markdown.rfind("\n", 0, MARKDOWN_MAX_CHARS - 200)
        markdown = markdown[:cut] + "\n\n… (truncated: see report.html for the full report)\n"
    paths["md"].write_text(markdown, "utf-8")
    paths["json"].write_bytes(orjson.dumps(report_json(out_dir, context), option=orjson.OPT_INDENT_2))
    return paths


def report_json(out_dir: Path, context: ReportContext) -> dict[str, Any]:
    """The machine-readable verdict and figures (what report.json holds)."""
    return {
        "connector": context.connector,
        "control_version": context.control_version,
        "target_version": context.target_version,
        "run_id": context.run_id,
        "pr_url": context.pr_url,
        "date": context.date.isoformat(),
        "evaluation_mode": context.evaluation_mode.value,
        "verdict": context.verdict,
        "blocking": context.blocking,
        "outcomes": {o.value: n for o, n in context.outcome_counts.items()},
        "tests": [
            {
                "name": r.name,
                "outcome": r.outcome.value,
                "message": r.message,
                "summary": r.summary,  # the same text as summary.txt; findings.json has every finding
                "duration_s": r.duration_s,
                "diff_files": [_link(out_dir, p) for p in r.diff_files],
            }
            for r in context.sorted_results
        ],
        "coverage": {
            "catalog": context.coverage.catalog,
            "configured": context.coverage.configured,
            "with_data": context.coverage.with_data,
            "untested": context.coverage.untested,
        },
        "message_counts": [_count_json(row) for row in context.message_counts],
        "records_per_stream": [_count_json(row) for row in context.records_per_stream],
        "http_capture": context.http_capture,
        "http_traffic": {
            version: None if t is None else {**vars(t), "top_endpoints": [list(e) for e in t.top_endpoints]}
            for version, t in context.http_traffic.items()
        },
    }


def _count_json(row: CountRow) -> dict[str, Any]:
    return {"command": row.command, "name": row.label, "control": row.control, "target": row.target, "delta": row.delta}


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["signed"] = lambda n: f"{n:+,}" if n else "0"
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["bytes"] = _human_bytes
    env.filters["md_cell"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    env.filters["md_code"] = _markdown_code_block
    return env


def _load_template(name: str) -> str:
    return resources.files(TEMPLATES_PACKAGE).joinpath(name).read_text("utf-8")


def _view(out_dir: Path, context: ReportContext) -> dict[str, Any]:
    """What the templates see: the context plus links and trimmed summaries."""
    results = []
    for r in context.sorted_results:
        lines = r.summary.rstrip("\n").splitlines()
        results.append(
            {
                "result": r,
                "links": [(p.name, _link(out_dir, p)) for p in r.diff_files],
                "summary_html": _trim(lines, SUMMARY_LINES_HTML),
                "summary_md": _trim(lines, SUMMARY_LINES_MD),
                "docstring": _dedent_docstring(r.docstring),
            }
        )
    return {
        "ctx": context,
        "results": results,
        "counts": context.outcome_counts,
        "Outcome": Outcome,
        "css": _load_template("report.css"),
        "date": context.date.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
    }


def _trim(lines: list[str], limit: int) -> str:
    if len(lines) <= limit:
        return "\n".join(lines)
    return "\n".join([*lines[:limit], f"… {len(lines) - limit} more lines in summary.txt"])


def _dedent_docstring(text: str) -> str:
    return inspect.cleandoc(text) if text else ""


def _link(out_dir: Path, path: Path) -> str:
    """Link to a diff file relative to the report, so the artifacts folder can move as a whole."""
    try:
        return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()
    except ValueError:  # another drive (Windows): keep it absolute
        return path.resolve().as_posix()


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _markdown_code_block(text: str) -> str:
    """A fenced block whose fence is longer than any backtick run inside (so the text can't end it)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"
