"""Compare the STATE messages of control and target.

Per (state type, stream): how many states were emitted and the final value (last by seq).
STREAM states are keyed by their stream; GLOBAL and LEGACY states by "(global)"/"(legacy)".
Final values are compared in canonical form, so object key order does not matter; ignored paths
(into the state value: a stream's own and `*` ones for STREAM states, `*` ones for GLOBAL and
LEGACY states) are left out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import duckdb

from live_tests.compare.diff import Comparison, ExecutionKey, Finding, Severity, parse_json, short
from live_tests.compare.ignores import ANY_STREAM, STATES, IgnoredPath, IgnoreRules
from live_tests.sql import Scratch, both_params, canonical_sql, fetch_dicts, key_filter, literal

STREAM_NAME_SQL = """CASE state_type WHEN 'STREAM' THEN coalesce(stream, '(unnamed)')
                  WHEN 'GLOBAL' THEN '(global)' ELSE '(legacy)' END"""
# The state value of a STATE message row: what is compared (and what ignored paths point into).
STATE_VALUE_SQL = """CASE state_type WHEN 'STREAM' THEN state -> '$.stream.stream_state'
                  WHEN 'GLOBAL' THEN state -> '$.global' ELSE coalesce(state -> '$.data', state) END"""


@dataclass(frozen=True)
class StreamState:
    """States of one (state type, stream) on one side."""

    state_type: str  # STREAM | GLOBAL | LEGACY
    count: int
    final: Any  # the last state value (stream_state / global / data), parsed


@dataclass
class StatesComparison(Comparison):
    title: ClassVar[str] = "States comparison"

    control_count: int = 0
    target_count: int = 0
    # "stream" (or "(global)"/"(legacy)") -> state summary
    control_states: dict[str, StreamState] = field(default_factory=dict)
    target_states: dict[str, StreamState] = field(default_factory=dict)

    def overview_lines(self) -> list[str]:
        lines = [f"STATE messages: control {self.control_count}, target {self.target_count}"]
        for name in sorted(set(self.control_states) | set(self.target_states)):
            c, t = self.control_states.get(name), self.target_states.get(name)
            lines.append(f"  {name}: control {c.count if c else 0}, target {t.count if t else 0}")
        return lines


def compare_states(
    con: duckdb.DuckDBPyConnection,
    control: ExecutionKey,
    target: ExecutionKey,
    *,
    ignored: Sequence[IgnoredPath] = (),
    incremental_streams: Collection[str] | None = None,
) -> StatesComparison:
    """Diff state counts, the shape of the states (types, streams) and each stream's final state.

    `ignored`: paths into the state values left out of the final-state comparison (those that
    apply to states end up in `result.ignored`). `incremental_streams`: the streams read
    incrementally (from the configured catalog); a changed final state is breaking for them (the
    next sync resumes from it) and a change for the others (a full refresh ignores its state: the
    CDK's own checkpoint markers). None: every stream counts as incremental.
    """
    rules = IgnoreRules(con, ignored, STATES)
    result = StatesComparison(control, target, ignored=rules.applied)
    with Scratch(con) as scratch:
        finals = scratch.create(
            "finals",
            " UNION ALL ".join(
                f"""SELECT '{side}' AS side, state_type, {STREAM_NAME_SQL} AS name, count(*) AS n,
                           arg_max({STATE_VALUE_SQL}, seq) AS value
                    FROM states WHERE {key_filter(side)} GROUP BY ALL"""
                for side in ("c", "t")
            ),
            both_params(control, target),
        )
        canon = _canonical_finals(con, finals, rules)
        rows = fetch_dicts(
            con,
            f"""SELECT f.side, f.state_type, f.name, f.n, f.value::VARCHAR AS value, c.canon
                FROM {finals} f LEFT JOIN ({canon}) c USING (side, state_type, name)
                ORDER BY f.name, f.side""",
        )
    canon_of: dict[tuple[str, str], str | None] = {}
    for row in rows:
        states = result.control_states if row["side"] == "c" else result.target_states
        states[row["name"]] = StreamState(row["state_type"], int(row["n"]), parse_json(row["value"]))
        canon_of[(row["side"], row["name"])] = row["canon"]
    result.control_count = sum(s.count for s in result.control_states.values())
    result.target_count = sum(s.count for s in result.target_states.values())
    result.findings = _findings(result, canon_of, incremental_streams)
    return result


def _canonical_finals(con: duckdb.DuckDBPyConnection, finals: str, rules: IgnoreRules) -> str:
    """Canonical text of each final value, without the paths ignored for its stream: one canonical
    query per distinct set of patterns (a handful of streams, one row each)."""
    if not rules:
        return canonical_sql(finals, "side, state_type, name", "value")
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, state_type in con.execute(f"SELECT DISTINCT name, state_type FROM {finals} ORDER BY name").fetchall():
        stream = name if state_type == "STREAM" else ANY_STREAM
        groups.setdefault(tuple(rules.for_stream(stream)), []).append(name)
    parts = []
    for patterns, group in groups.items():
        source = f"(SELECT * FROM {finals} WHERE name IN ({', '.join(literal(n) for n in group)}))"
        parts.append(canonical_sql(source, "side, state_type, name", "value", patterns))
    return " UNION ALL ".join(f"SELECT * FROM ({part})" for part in parts)


def _findings(
    result: StatesComparison, canon_of: dict[tuple[str, str], str | None], incremental: Collection[str] | None
) -> list[Finding]:
    findings = []
    if result.control_count != result.target_count:
        findings.append(
            Finding(
                "state_count_changed", Severity.CHANGE,
                f"STATE messages: {result.control_count} -> {result.target_count}",
                control=result.control_count, target=result.target_count,
            )
        )  # fmt: skip
    for name in sorted(set(result.control_states) | set(result.target_states)):
        c, t = result.control_states.get(name), result.target_states.get(name)
        if t is None:
            findings.append(
                Finding(
                    "state_missing_in_target", Severity.BREAKING,
                    f"`{name}`: {c.count if c else 0} {c.state_type if c else ''} states in control, none in target",
                    stream=name, control=c.final if c else None,
                )
            )  # fmt: skip
            continue
        if c is None:
            findings.append(
                Finding(
                    "state_added_in_target", Severity.CHANGE,
                    f"`{name}`: {t.count} {t.state_type} states in target, none in control",
                    stream=name, target=t.final,
                )
            )  # fmt: skip
            continue
        if c.state_type != t.state_type:
            findings.append(
                Finding(
                    "state_type_changed", Severity.BREAKING, f"`{name}`: state type {c.state_type} -> {t.state_type}",
                    stream=name, control=c.state_type, target=t.state_type,
                )
            )  # fmt: skip
        if c.count != t.count:
            findings.append(
                Finding(
                    "stream_state_count_changed", Severity.INFO, f"`{name}`: {c.count} -> {t.count} states",
                    stream=name, control=c.count, target=t.count,
                )
            )  # fmt: skip
        if canon_of.get(("c", name)) != canon_of.get(("t", name)):
            resumed = incremental is None or name in incremental or t.state_type != "STREAM"
            findings.append(
                Finding(
                    "final_state_changed", Severity.BREAKING if resumed else Severity.CHANGE,
                    f"`{name}`: final state differs: {short(c.final, 70)} -> {short(t.final, 70)}",
                    stream=name, control=c.final, target=t.final,
                )
            )  # fmt: skip
    return findings
