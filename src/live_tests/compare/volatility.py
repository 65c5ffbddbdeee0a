"""Volatile paths: run-time noise the comparisons should leave out, found in SQL.

Two ways a path is found volatile (each `IgnoredPath.reason` says which):
(a) its values differ between two runs of the control (same image, same inputs, the second started
    a little later). Record streams with a primary key pair their records by key and count the
    records whose value at the path differs (the records comparison's own field diff); keyless
    streams compare, per (stream, path), the multiset of values of the records that did not pair by
    text. Final state values are compared path by path, ERROR trace messages per stream.
(b) every non-null value it has in one execution is a timestamp inside that execution's own
    wall-clock window (the connector stamped "now"): ISO-8601 strings, or epoch seconds or
    milliseconds. That catches noise even when both control runs share a second; a `created_at`
    from the past never counts, as one value outside the window is enough to clear a path.
A path that is equal in both control runs and not stamped with "now" is never volatile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from live_tests.compare.diff import ExecutionKey
from live_tests.compare.ignores import ANY_STREAM, RECORDS, STATES, TRACES, IgnoredPath, IgnoreRules
from live_tests.compare.json_walk import SkipSql, StreamFields, skip_nothing, stream_fields, walk_levels
from live_tests.compare.record_pairing import key_sql, keyed_field_diffs, number_records, pair_records
from live_tests.compare.record_results import PrimaryKeys, key_paths
from live_tests.compare.record_sides import Sides
from live_tests.compare.states import STATE_VALUE_SQL, STREAM_NAME_SQL
from live_tests.sql import WILDCARD_INDEX_SQL, Scratch, both_params, key_filter, literal, path_match_sql

DEFAULT_SLACK_S = 2.0
# Records per execution and stream that propose the paths stamped with "now" (see _now_stamped).
STAMP_SAMPLE = 2000
RERUN_DIFFERS = "differs between two control runs"
_STATE_STREAM = f"CASE WHEN state_type = 'STREAM' THEN {STREAM_NAME_SQL} ELSE '{ANY_STREAM}' END"
_WILDCARD_PATH = WILDCARD_INDEX_SQL.format("path")
# A node's value, for multiset comparisons: its type, and its text when it is a scalar.
_VALUE_HASH = "hash(json_type(v), CASE WHEN json_type(v) IN ('OBJECT', 'ARRAY') THEN NULL ELSE v::VARCHAR END)"
# Seconds since the epoch of an ISO-8601 date-time string (NULL for anything else); an offset-less
# one is taken as UTC, like Airbyte's own timestamp_without_timezone.
_ISO_EPOCH = r"""CASE WHEN NOT regexp_matches({s}, '^\d{{4}}-\d{{2}}-\d{{2}}[T ]\d{{2}}:\d{{2}}') THEN NULL
                      WHEN regexp_matches({s}, '([Zz]|[+-]\d{{2}}:?\d{{2}})$') THEN epoch(try_cast({s} AS TIMESTAMPTZ))
                      ELSE epoch(try_cast({s} AS TIMESTAMP)) END"""
_IN_WINDOW = f"""CASE WHEN json_type(v) = 'VARCHAR'
                      THEN coalesce(({_ISO_EPOCH.format(s="json_extract_string(v, '$')")}) BETWEEN lo AND hi, FALSE)
                      WHEN json_type(v) IN ('UBIGINT', 'BIGINT', 'HUGEINT', 'DOUBLE')
                      THEN v::DOUBLE BETWEEN lo AND hi OR v::DOUBLE BETWEEN lo * 1000 AND hi * 1000
                      ELSE FALSE END"""


@dataclass(frozen=True)
class NoiseBaseline:
    """The run-time noise found for one command's control: what the report lists as set aside."""

    command: str
    how: str  # how it was looked for, e.g. "control run twice"
    volatile: list[IgnoredPath]

    def to_dict(self) -> dict[str, Any]:
        return {"command": self.command, "how": self.how, "volatile": [p.to_dict() for p in self.volatile]}


def find_volatile_paths(
    con: duckdb.DuckDBPyConnection,
    control: ExecutionKey,
    rerun: ExecutionKey | None,
    windows: Mapping[ExecutionKey, tuple[datetime, datetime]],
    *,
    primary_keys: PrimaryKeys | None = None,
    slack_s: float = DEFAULT_SLACK_S,
) -> list[IgnoredPath]:
    """The volatile paths of records, final states and ERROR traces, sorted by (stream, path).

    `rerun`: a second run of the control (its version is "<version>+rerun"); None: only (b). `windows`: each
    execution's wall-clock (started_at, finished_at), UTC-aware; (b) looks at every execution given
    (control, rerun and target alike: a target stamps "now" too), widened by `slack_s` each side.
    `primary_keys` (optional, stream -> key paths as for compare_records): keyed streams pair their
    records by key, so a record present in one run only does not make every path look volatile;
    other streams are compared as multisets of values per path, where such a record does.
    Each result's `applies_to` is "records", "states" or "traces"; `records` counts the records
    (states, traces) concerned.
    """
    keys = key_paths(primary_keys)
    found: list[IgnoredPath] = []
    with Scratch(con) as scratch:
        if rerun is not None:
            params = both_params(control, rerun)
            found += _differing_records(con, scratch, params, keys)
            found += _differing_states(con, scratch, params)
            found += _differing_error_messages(con, params)
        if windows:
            window_table = _windows(scratch, windows, slack_s)
            found += _now_stamped(con, scratch, window_table, RECORDS)
            found += _now_stamped(con, scratch, window_table, STATES)
    return _merged(found)


def _differing_records(
    con: duckdb.DuckDBPyConnection, scratch: Scratch, params: dict[str, str], keys: dict[str, list[list[str]]]
) -> list[IgnoredPath]:
    sides = Sides(con, scratch, params, IgnoreRules(con, (), RECORDS))
    pairing_key = key_sql(keys)
    pairs = pair_records(sides, number_records(sides, "c", pairing_key), number_records(sides, "t", pairing_key))
    keyed = [
        (stream, path, int(n))
        for stream, path, n in con.execute(
            f"""SELECT stream, {_WILDCARD_PATH} AS wpath, count(DISTINCT (pkey, occ))
                FROM {keyed_field_diffs(sides, pairs)} GROUP BY ALL ORDER BY ALL"""
        ).fetchall()
    ]
    # Keyless streams: records with no identical record in the other run.
    unpaired = scratch.create(
        "volatile_unpaired",
        f"""SELECT 'c' AS side, stream, cseq AS seq FROM {pairs} WHERE NOT keyed AND tseq IS NULL
            UNION ALL
            SELECT 't', stream, tseq FROM {pairs} WHERE NOT keyed AND cseq IS NULL""",
    )
    keyless = _differing_values(con, scratch, sides.docs(unpaired), params)
    reason = RERUN_DIFFERS
    return [IgnoredPath(s, p, reason, n, RECORDS) for s, p, n in [*keyed, *keyless]]


def _differing_states(con: duckdb.DuckDBPyConnection, scratch: Scratch, params: dict[str, str]) -> list[IgnoredPath]:
    finals = scratch.create(
        "volatile_state_finals",
        " UNION ALL ".join(
            f"""SELECT side, stream, 0::BIGINT AS seq, data
                FROM (SELECT '{side}' AS side, {_STATE_STREAM} AS stream, arg_max({STATE_VALUE_SQL}, seq) AS data
                      FROM states WHERE {key_filter(side)} GROUP BY ALL)"""
            for side in ("c", "t")
        ),
        params,
    )
    reason = f"final state {RERUN_DIFFERS}"
    return [IgnoredPath(s, p, reason, n, STATES) for s, p, n in _differing_values(con, scratch, finals, None)]


def _differing_values(
    con: duckdb.DuckDBPyConnection, scratch: Scratch, docs: str, params: dict[str, str] | None
) -> list[tuple[str, str, int]]:
    """(stream, wildcarded path, values differing) where the multiset of a path's values differs
    between sides 'c' and 't' of `docs` (side, stream, seq, data).

    The top-level values are compared first, as text (a superset of the fields that really differ:
    nested key order counts there); only the subtrees of those fields are then walked.
    """
    fields = stream_fields(con, docs, ("data",), params)
    top = _value_differences(con, scratch, docs, params, fields, "hash(v::VARCHAR)", max_depth=1)
    if not top:
        return []
    candidates: dict[str, list[str]] = {}
    for stream, path, _ in top:
        candidates.setdefault(stream, []).append(path)

    def skip(stream_sql: str, path_sql: str) -> str:
        under = [f"({stream_sql} = {literal(s)} AND {path_match_sql(path_sql, p)})" for s, p in candidates.items()]
        return f"NOT ({' OR '.join(under)})"

    return _value_differences(con, scratch, docs, params, fields, _VALUE_HASH, skip=skip)


def _value_differences(
    con: duckdb.DuckDBPyConnection,
    scratch: Scratch,
    docs: str,
    params: dict[str, str] | None,
    fields: StreamFields,
    value_hash: str,
    *,
    skip: SkipSql = skip_nothing,
    max_depth: int | None = None,
) -> list[tuple[str, str, int]]:
    counts = scratch.create(
        "volatile_value_counts",
        "SELECT ''::VARCHAR AS side, ''::VARCHAR AS stream, ''::VARCHAR AS path, 0::UBIGINT AS h, 0::BIGINT AS n"
        " LIMIT 0",
    )

    def visit(level: str, depth: int) -> None:
        con.execute(
            f"""INSERT INTO {counts}
                SELECT side, stream, {_WILDCARD_PATH}, {value_hash}, count(*) FROM {level} GROUP BY ALL"""
        )

    walk_levels(con, scratch, docs, fields, visit, params=params, skip=skip, max_depth=max_depth)
    rows = con.execute(
        f"""WITH v AS (SELECT stream, path, h, coalesce(sum(n) FILTER (WHERE side = 'c'), 0) AS nc,
                              coalesce(sum(n) FILTER (WHERE side = 't'), 0) AS nt
                       FROM {counts} GROUP BY ALL)
            SELECT stream, path, greatest(sum(greatest(nc - nt, 0)), sum(greatest(nt - nc, 0))) AS n
            FROM v GROUP BY ALL HAVING n > 0 ORDER BY ALL"""
    ).fetchall()
    return [(stream, path, int(n)) for stream, path, n in rows]


def _differing_error_messages(con: duckdb.DuckDBPyConnection, params: dict[str, str]) -> list[IgnoredPath]:
    """Streams whose ERROR traces are as many in both runs but whose messages differ."""
    errors = " UNION ALL ".join(
        f"""SELECT '{side}' AS side, coalesce(stream, '{ANY_STREAM}') AS stream, trace ->> '$.error.message' AS m
            FROM traces WHERE {key_filter(side)} AND trace_type = 'ERROR'"""
        for side in ("c", "t")
    )
    rows = con.execute(
        f"""WITH e AS ({errors}),
                 n AS (SELECT stream, m, count(*) FILTER (WHERE side = 'c') AS nc,
                              count(*) FILTER (WHERE side = 't') AS nt FROM e GROUP BY ALL)
            SELECT stream, sum(greatest(nc - nt, 0)) AS differing FROM n GROUP BY stream
            HAVING differing > 0 AND sum(nc) = sum(nt) ORDER BY stream""",
        params,
    ).fetchall()
    reason = "ERROR trace messages differ between two control runs"
    return [IgnoredPath(stream, "$.error.message", reason, int(n), TRACES) for stream, n in rows]


def _windows(scratch: Scratch, windows: Mapping[ExecutionKey, tuple[datetime, datetime]], slack_s: float) -> str:
    """(side, connector, version, command, label, lo, hi): each execution's window in epoch seconds."""
    rows = []
    for i, (key, (started, finished)) in enumerate(sorted(windows.items())):
        if started.tzinfo is None or finished.tzinfo is None:
            raise ValueError(f"the wall-clock window of {key} must be timezone-aware (UTC)")
        rows.append(
            f"('w{i}', {literal(key.connector)}, {literal(key.version)}, {literal(key.command)}, {literal(str(key))},"
            f" {started.timestamp() - slack_s}::DOUBLE, {finished.timestamp() + slack_s}::DOUBLE)"
        )
    return scratch.create(
        "volatile_windows",
        f"SELECT * FROM (VALUES {', '.join(rows)}) w(side, connector, version, command, label, lo, hi)",
    )


def _now_stamped(con: duckdb.DuckDBPyConnection, scratch: Scratch, window_table: str, kind: str) -> list[IgnoredPath]:
    """Paths of records (or final state values) all of whose non-null values, in some execution, are
    timestamps inside that execution's window.

    Records are looked at twice: the first `STAMP_SAMPLE` records of each stream propose the
    candidate paths (a path stamped "now" everywhere is stamped in the sample too), then all records
    are walked along the candidates only (most of each document is never expanded).
    """
    on = "USING (connector, version, command)"
    if kind == STATES:
        docs = scratch.create(
            "volatile_state_docs",
            f"""SELECT side, stream, 0::BIGINT AS seq, data
                FROM (SELECT w.side, {_STATE_STREAM} AS stream, arg_max({STATE_VALUE_SQL}, s.seq) AS data
                      FROM states s JOIN {window_table} w {on} GROUP BY ALL)""",
        )
        rows = _stamped_paths(con, scratch, docs, window_table, skip_nothing)
    else:
        docs = f"(SELECT w.side, r.stream, r.seq, r.data FROM records r JOIN {window_table} w {on})"
        sample = scratch.create(
            "volatile_stamp_sample",
            f"""SELECT * FROM {docs}
                QUALIFY row_number() OVER (PARTITION BY side, stream ORDER BY seq) <= {STAMP_SAMPLE}""",
        )
        candidates = [(stream, path) for stream, path, _, _ in _stamped_paths(con, scratch, sample, window_table)]
        scratch.drop(sample)
        rows = _stamped_paths(con, scratch, docs, window_table, _off(candidates)) if candidates else []
    what = "timestamps" if kind == RECORDS else "final state timestamps"
    return [
        IgnoredPath(stream, path, f"{what} inside the run's wall-clock window ({labels})", records, kind)
        for stream, path, labels, records in rows
    ]


def _stamped_paths(
    con: duckdb.DuckDBPyConnection, scratch: Scratch, docs: str, window_table: str, skip: SkipSql = skip_nothing
) -> list[tuple[str, str, str, int]]:
    """(stream, wildcarded path, executions, records) of the paths of `docs` (side, stream, seq, data)
    whose non-null values in an execution are all inside its window; `skip` prunes the walk."""
    stamped = scratch.create(
        "volatile_stamped",
        "SELECT ''::VARCHAR AS side, ''::VARCHAR AS stream, ''::VARCHAR AS path, 0::BIGINT AS vals,"
        " 0::BIGINT AS inside, 0::BIGINT AS records LIMIT 0",
    )

    def visit(level: str, depth: int) -> None:
        con.execute(
            f"""INSERT INTO {stamped}
                SELECT side, stream, {_WILDCARD_PATH}, count(*) FILTER (WHERE json_type(v) <> 'NULL'),
                       count(*) FILTER (WHERE {_IN_WINDOW}), count(DISTINCT seq) FILTER (WHERE {_IN_WINDOW})
                FROM {level} JOIN {window_table} USING (side) GROUP BY ALL"""
        )

    walk_levels(con, scratch, docs, stream_fields(con, docs, ("data",), skip=skip), visit, skip=skip)
    rows = con.execute(
        f"""SELECT s.stream, s.path, string_agg(w.label, ', ' ORDER BY w.label) AS labels, max(s.records)
            FROM {stamped} s JOIN {window_table} w USING (side)
            WHERE s.vals > 0 AND s.inside = s.vals GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    return [(stream, path, labels, int(n)) for stream, path, labels, n in rows]


def _off(candidates: list[tuple[str, str]]) -> SkipSql:
    """Skip condition for a walk along `candidates` (stream, wildcarded path): every node that is
    neither a candidate nor on the way to one."""

    def skip(stream_sql: str, path_sql: str) -> str:
        checks = []
        for stream, path in candidates:
            lit = literal(path)
            on_the_way = f"starts_with({lit}, {path_sql} || '.') OR starts_with({lit}, {path_sql} || '[')"
            checks.append(f"({stream_sql} = {literal(stream)} AND ({path_sql} = {lit} OR {on_the_way}))")
        return f"NOT ({' OR '.join(checks)})"

    return skip


def _merged(found: list[IgnoredPath]) -> list[IgnoredPath]:
    """One entry per (stream, path, applies_to): reasons joined, the largest count kept."""
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for p in found:
        entry = merged.setdefault((p.stream, p.path, p.applies_to), {"reasons": [], "records": None})
        if p.reason not in entry["reasons"]:
            entry["reasons"].append(p.reason)
        if p.records is not None:
            entry["records"] = max(entry["records"] or 0, p.records)
    return [
        IgnoredPath(stream, path, "; ".join(entry["reasons"]), entry["records"], applies_to)
        for (stream, path, applies_to), entry in sorted(merged.items())
    ]
