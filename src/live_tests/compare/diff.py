"""Common result types of the comparisons: execution keys, findings, and the result base class.

Every comparison returns a subclass of `Comparison`: a list of structured `Finding`s (each with a
severity), a pass/fail verdict derived from them, human-readable summary lines, and a method that
writes the diff files of the comparison into a directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import orjson

from live_tests.compare.ignores import IgnoredPath
from live_tests.models import ExecutionKey
from live_tests.verdicts import Outcome, decide_test

# How many findings of one kind the summary lists before saying "… and N more".
_SUMMARY_FINDINGS_PER_KIND = 25


class Severity(StrEnum):
    BREAKING = "breaking"  # a regression: the comparison fails
    CHANGE = "change"  # a difference that is not a regression: reported, the comparison passes
    INFO = "info"  # context worth knowing (e.g. a problem already present in control)


@dataclass(frozen=True)
class Finding:
    """One difference between control and target."""

    kind: str  # machine-readable, e.g. "property_removed", "record_field_changed"
    severity: Severity
    message: str  # one line for humans
    stream: str | None = None
    path: str | None = None  # JSON path of the field/property concerned, when there is one
    control: Any = None  # the control side's value (or example), JSON-serialisable
    target: Any = None
    count: int | None = None  # how many records/items the finding covers, when it is a tally

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity.value,
            "message": self.message,
            "stream": self.stream,
            "path": self.path,
            "control": self.control,
            "target": self.target,
            "count": self.count,
        }


@dataclass
class Comparison:
    """Base of every comparison result. Subclasses add their structured statistics."""

    control: ExecutionKey
    target: ExecutionKey
    findings: list[Finding] = field(default_factory=list)
    # The ignored paths (volatile or user-given) this comparison left out, for the report.
    ignored: list[IgnoredPath] = field(default_factory=list)

    title: ClassVar[str] = "Comparison"

    @property
    def passed(self) -> bool:
        """True when no finding is breaking."""
        return not self.breaking

    @property
    def breaking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.BREAKING]

    @property
    def changes(self) -> list[Finding]:
        """Non-breaking differences."""
        return [f for f in self.findings if f.severity is Severity.CHANGE]

    @property
    def has_differences(self) -> bool:
        """True when there is any breaking or non-breaking difference (info findings aside)."""
        return any(f.severity is not Severity.INFO for f in self.findings)

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    @property
    def verdict(self) -> str:
        """The comparison on its own, by the suite's one rule (breaking findings fail)."""
        outcome = decide_test(f.severity for f in self.findings).outcome
        if outcome is Outcome.FAILED:
            return "FAILED"
        return "PASSED with differences" if outcome is Outcome.PASSED_WITH_FINDINGS else "PASSED"

    def both_emitted(self, sides: set[str], message_type: str) -> bool:
        """Record a breaking finding for each side that emitted no `message_type`; True when both did."""
        for side, key in (("control", self.control), ("target", self.target)):
            if side not in sides:
                self.findings.append(
                    Finding(
                        f"{message_type.lower()}_missing",
                        Severity.BREAKING,
                        f"{side} ({key}) produced no {message_type} message",
                    )
                )
        return len(sides) == 2

    def overview_lines(self) -> list[str]:
        """Statistics shown before the findings; subclasses override."""
        return []

    @property
    def summary(self) -> list[str]:
        """Human-readable lines: verdict, overview, then findings grouped by severity."""
        lines = [
            f"{self.title}: {self.verdict}",
            f"control: {self.control}",
            f"target:  {self.target}",
        ]
        overview = self.overview_lines()
        if overview:
            lines += ["", *overview]
        if self.ignored:
            lines += ["", f"Ignored paths ({len(self.ignored)}):"]
            lines += [
                f"  {p.label()}: {p.reason}{f' ({p.records} records)' if p.records is not None else ''}"
                for p in self.ignored
            ]
        for severity, heading in (
            (Severity.BREAKING, "Breaking differences"),
            (Severity.CHANGE, "Non-breaking differences"),
            (Severity.INFO, "Notes"),
        ):
            group = [f for f in self.findings if f.severity is severity]
            if not group:
                continue
            lines += ["", f"{heading} ({len(group)}):"]
            shown: dict[str, int] = {}
            hidden: dict[str, int] = {}
            for finding in group:
                if shown.get(finding.kind, 0) >= _SUMMARY_FINDINGS_PER_KIND:
                    hidden[finding.kind] = hidden.get(finding.kind, 0) + 1
                    continue
                shown[finding.kind] = shown.get(finding.kind, 0) + 1
                lines.append(f"  - {finding.message}")
            lines += [f"  … and {n} more {kind} findings (see findings.json)" for kind, n in hidden.items()]
        if not self.findings:
            lines += ["", "No differences."]
        return lines

    def summary_text(self) -> str:
        return "\n".join(self.summary) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "comparison": self.title,
            "passed": self.passed,
            "control": self.control._asdict(),
            "target": self.target._asdict(),
            "findings": [f.to_dict() for f in self.findings],
            "ignored": [p.to_dict() for p in self.ignored],
        }

    def write_diff_files(self, directory: Path) -> list[Path]:
        """Write `summary.txt`, `findings.json` and the comparison's own diff files; return their paths."""
        return [
            *write_summary_files(directory, self.summary_text(), self.to_dict()),
            *self._write_extra_files(directory),
        ]

    def _write_extra_files(self, directory: Path) -> list[Path]:
        return []


_ORJSON_OPTS = orjson.OPT_NON_STR_KEYS


def write_summary_files(directory: Path, summary_text: str, findings: dict[str, Any]) -> list[Path]:
    """`summary.txt` (for people) and `findings.json` (for tools) of one result."""
    directory.mkdir(parents=True, exist_ok=True)
    summary = directory / "summary.txt"
    summary.write_text(summary_text, encoding="utf-8")
    findings_file = directory / "findings.json"
    findings_file.write_bytes(orjson.dumps(findings, option=orjson.OPT_INDENT_2 | _ORJSON_OPTS, default=str))
    return [summary, findings_file]


def dumps_line(obj: Any) -> bytes:
    """One JSONL line."""
    return orjson.dumps(obj, option=_ORJSON_OPTS, default=str) + b"\n"


def parse_json(text: str | None) -> Any:
    """Parse JSON text that came out of DuckDB (None stays None)."""
    return None if text is None else orjson.loads(text)


def short(value: Any, limit: int = 120) -> str:
    """A value shown inline in a one-line message."""
    text = value if isinstance(value, str) else orjson.dumps(value, option=_ORJSON_OPTS, default=str).decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"
