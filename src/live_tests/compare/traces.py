"""Compare the TRACE messages of control and target: stream statuses and errors.

Stream statuses: per stream, the sequence of statuses by seq with repeats collapsed (how many
RUNNING traces a connector emits is not a behaviour worth diffing); a well-formed sequence is
STARTED, RUNNING*, then COMPLETE or INCOMPLETE. Errors: the multiset of (stream, failure type,
message) of ERROR traces, diffed both ways with EXCEPT ALL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import duckdb

from live_tests.compare.diff import Comparison, ExecutionKey, Finding, Severity, short
from live_tests.compare.ignores import TRACES, IgnoredPath, IgnoreRules
from live_tests.sql import Scratch, both_params, key_filter, literal

# The one ordering rule for stream statuses (this comparison and the suite's target-alone check):
# STARTED, RUNNING any number of times, then a terminal COMPLETE or INCOMPLETE. It holds for a
# sequence with repeats collapsed as for the raw one.
STATUS_SEQUENCE_REGEX = r"STARTED( RUNNING)*( COMPLETE| INCOMPLETE)"


def status_sequence_is_valid(sequence: Sequence[str]) -> bool:
    """Whether statuses (in seq order) follow STATUS_SEQUENCE_REGEX."""
    return re.fullmatch(STATUS_SEQUENCE_REGEX, " ".join(map(str, sequence))) is not None


@dataclass(frozen=True)
class TraceError:
    stream: str | None
    failure_type: str | None
    message: str | None


@dataclass
class TracesComparison(Comparison):
    title: ClassVar[str] = "Traces comparison"

    # stream -> collapsed status sequence, e.g. ["STARTED", "RUNNING", "COMPLETE"]
    control_statuses: dict[str, list[str]] = field(default_factory=dict)
    target_statuses: dict[str, list[str]] = field(default_factory=dict)
    control_errors: list[TraceError] = field(default_factory=list)
    target_errors: list[TraceError] = field(default_factory=list)

    def overview_lines(self) -> list[str]:
        lines = [f"ERROR traces: control {len(self.control_errors)}, target {len(self.target_errors)}"]
        for stream in sorted(set(self.control_statuses) | set(self.target_statuses)):
            c = " ".join(self.control_statuses.get(stream, [])) or "-"
            t = " ".join(self.target_statuses.get(stream, [])) or "-"
            lines.append(f"  {stream}: control [{c}]  target [{t}]")
        return lines


def compare_traces(
    con: duckdb.DuckDBPyConnection,
    control: ExecutionKey,
    target: ExecutionKey,
    *,
    ignored: Sequence[IgnoredPath] = (),
) -> TracesComparison:
    """Diff stream status sequences (and their validity) and ERROR traces.

    `ignored`: paths into the trace message; `$.error.message` (or `$.error.failure_type`, or `$.error`)
    for a stream (or `*`) leaves that text out of the comparison of its ERROR traces (those that apply
    to traces end up in `result.ignored`).
    """
    rules = IgnoreRules(con, ignored, TRACES)
    result = TracesComparison(control, target, ignored=rules.applied)
    params = both_params(control, target)
    # What the ERROR traces are compared on: their text, minus ignored parts (the lists keep it all).
    compared = {
        name: f"CASE WHEN {rules.sql('stream', literal(f'$.error.{name}'))} THEN NULL ELSE {name} END"
        for name in ("failure_type", "message")
    }
    with Scratch(con) as scratch:
        statuses = scratch.create(
            "statuses",
            " UNION ALL ".join(
                f"""SELECT '{side}' AS side, stream, list(status ORDER BY seq) AS sequence
                    FROM (SELECT stream, status, seq, lag(status) OVER (PARTITION BY stream ORDER BY seq) AS prev
                          FROM traces WHERE {key_filter(side)} AND trace_type = 'STREAM_STATUS')
                    WHERE prev IS DISTINCT FROM status GROUP BY stream"""
                for side in ("c", "t")
            ),
            params,
        )
        for side, stream, sequence, valid in con.execute(
            f"""SELECT side, coalesce(stream, '(unnamed)'), sequence,
                       regexp_full_match(array_to_string(sequence, ' '), '{STATUS_SEQUENCE_REGEX}')
                FROM {statuses} ORDER BY stream"""
        ).fetchall():
            (result.control_statuses if side == "c" else result.target_statuses)[stream] = list(sequence)
            if not valid:
                result.findings.append(
                    Finding(
                        "stream_status_sequence_invalid", Severity.BREAKING if side == "t" else Severity.INFO,
                        f"`{stream}`: {'target' if side == 't' else 'control'} status sequence"
                        f" [{' '.join(sequence)}] is not STARTED, RUNNING*, COMPLETE/INCOMPLETE",
                        stream=stream, **{"target" if side == "t" else "control": list(sequence)},
                    )
                )  # fmt: skip

        errors = scratch.create(
            "errors",
            " UNION ALL ".join(
                f"""SELECT '{side}' AS side, stream, trace ->> '$.error.failure_type' AS failure_type,
                           trace ->> '$.error.message' AS message
                    FROM traces WHERE {key_filter(side)} AND trace_type = 'ERROR'"""
                for side in ("c", "t")
            ),
            params,
        )
        for side, stream, failure_type, message in con.execute(
            f"SELECT side, stream, failure_type, message FROM {errors} ORDER BY side, stream, message"
        ).fetchall():
            (result.control_errors if side == "c" else result.target_errors).append(
                TraceError(stream, failure_type, message)
            )
        cols = f"stream, {compared['failure_type']} AS failure_type, {compared['message']} AS message"
        new_errors = con.execute(
            f"""SELECT *, count(*) FROM (SELECT {cols} FROM {errors} WHERE side = 't'
                EXCEPT ALL SELECT {cols} FROM {errors} WHERE side = 'c') GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
        gone_errors = con.execute(
            f"""SELECT *, count(*) FROM (SELECT {cols} FROM {errors} WHERE side = 'c'
                EXCEPT ALL SELECT {cols} FROM {errors} WHERE side = 't') GROUP BY ALL ORDER BY ALL"""
        ).fetchall()

    result.findings += _status_findings(result.control_statuses, result.target_statuses)
    for stream, failure_type, message, n in new_errors:
        result.findings.append(
            Finding(
                "error_trace_added", Severity.BREAKING,
                f"new ERROR trace in target{f' on `{stream}`' if stream else ''} ({failure_type or 'no type'},"
                f" x{n}): {short(message or '', 160)}",
                stream=stream, target=message, count=n,
            )
        )  # fmt: skip
    for stream, failure_type, message, n in gone_errors:
        result.findings.append(
            Finding(
                "error_trace_resolved", Severity.CHANGE,
                f"ERROR trace of control no longer in target{f' on `{stream}`' if stream else ''}"
                f" ({failure_type or 'no type'}, x{n}): {short(message or '', 160)}",
                stream=stream, control=message, count=n,
            )
        )  # fmt: skip
    if len(result.control_errors) != len(result.target_errors):
        result.findings.append(
            Finding(
                "error_count_changed", Severity.INFO,
                f"ERROR traces: {len(result.control_errors)} -> {len(result.target_errors)}",
                control=len(result.control_errors), target=len(result.target_errors),
            )
        )  # fmt: skip
    return result


def _status_findings(control: dict[str, list[str]], target: dict[str, list[str]]) -> list[Finding]:
    findings = []
    for stream in sorted(set(control) | set(target)):
        c, t = control.get(stream), target.get(stream)
        if t is None:
            findings.append(
                Finding(
                    "stream_statuses_missing", Severity.BREAKING,
                    f"`{stream}`: statuses [{' '.join(c or [])}] in control, none in target",
                    stream=stream, control=c,
                )
            )  # fmt: skip
        elif c is None:
            findings.append(
                Finding(
                    "stream_statuses_added", Severity.CHANGE,
                    f"`{stream}`: statuses [{' '.join(t)}] in target, none in control", stream=stream, target=t,
                )
            )  # fmt: skip
        elif c != t:
            # Still a well-formed run that completes (e.g. RUNNING now that it reads records): a change.
            completes = status_sequence_is_valid(t) and t[-1] == "COMPLETE"
            findings.append(
                Finding(
                    "stream_status_sequence_changed", Severity.CHANGE if completes else Severity.BREAKING,
                    f"`{stream}`: status sequence [{' '.join(c)}] -> [{' '.join(t)}]",
                    stream=stream, control=c, target=t,
                )
            )  # fmt: skip
    return findings
