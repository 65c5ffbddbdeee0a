"""Validation of the target's read output, from duck.db.

Record schemas are checked with `jsonschema`, which needs each record in Python: the records are
streamed from DuckDB in batches (`fetchmany`), so memory stays bounded whatever the read size.
Streams with more than `MAX_VALIDATED_RECORDS` records are checked on a reproducible reservoir
sample of that many records (taken by DuckDB), and the summary says so. The other checks are
set-based SQL over every record, state and trace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson

from live_tests.compare.traces import status_sequence_is_valid
from live_tests.models import ExecutionKey
from live_tests.regression_tests.validation import Validation, schema_problem, validator_class
from live_tests.sql import json_pointer, literal

MAX_VALIDATED_RECORDS = 100_000
_BATCH = 2_000
_SAMPLE_SEED = 7
# Findings per stream for schema errors (grouped by path and keyword); the rest are counted.
_MAX_ERROR_KINDS = 20

Key = ExecutionKey


def _where(alias: str = "") -> str:
    col = f"{alias}." if alias else ""
    return f"{col}connector = $connector AND {col}version = $version AND {col}command = $command"


def _params(key: Key, **extra: Any) -> dict[str, Any]:
    connector, version, command = key
    return {"connector": connector, "version": version, "command": command, **extra}


def _streams(configured: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in configured if isinstance(c.get("stream"), Mapping) and c["stream"].get("name")]


@dataclass
class _ErrorTally:
    records: int
    example: str


def validate_record_schemas(
    con: duckdb.DuckDBPyConnection,
    key: Key,
    configured: Sequence[Mapping[str, Any]],
    max_records: int = MAX_VALIDATED_RECORDS,
) -> Validation:
    """Records conform to the JSON schema of their stream in the configured catalog."""
    result = Validation("Records conform to the configured catalog's schemas", " ".join(key))
    counts = dict(
        con.execute(f"SELECT stream, count(*) FROM records WHERE {_where()} GROUP BY stream", _params(key)).fetchall()
    )
    schemas = {c["stream"]["name"]: c["stream"].get("json_schema") for c in _streams(configured)}
    for stream in sorted(set(counts) - set(schemas)):
        result.add(
            "records_of_unconfigured_stream",
            f"`{stream}`: {counts[stream]} records of a stream that is not in the configured catalog",
            stream=stream, count=counts[stream],
        )  # fmt: skip
    for stream, schema in schemas.items():
        total = int(counts.get(stream, 0))
        if not total:
            continue
        problem = schema_problem(schema)
        if problem:
            result.note("schema_not_checked", f"`{stream}`: not checked, its json_schema is invalid: {problem}")
            continue
        validator = validator_class(schema)(schema)
        sampled = total > max_records
        source = f"SELECT data FROM records WHERE {_where()} AND stream = $stream"
        sql = (
            f"SELECT data::VARCHAR FROM ({source}) USING SAMPLE reservoir({int(max_records)} ROWS)"
            f" REPEATABLE ({_SAMPLE_SEED})"
            if sampled
            else f"SELECT data::VARCHAR FROM ({source})"
        )
        cursor = con.execute(sql, _params(key, stream=stream))
        checked = invalid = 0
        tallies: dict[tuple[str, str], _ErrorTally] = {}
        while batch := cursor.fetchmany(_BATCH):
            for (text,) in batch:
                checked += 1
                seen: set[tuple[str, str]] = set()
                for error in validator.iter_errors(orjson.loads(text)):
                    where = re.sub(r"\[\d+\]", "[*]", error.json_path)
                    seen.add((where, str(error.validator)))
                    tally = tallies.setdefault((where, str(error.validator)), _ErrorTally(0, error.message))
                    tally.example = tally.example or error.message
                invalid += bool(seen)
                for group in seen:
                    tallies[group].records += 1
        how = f"reservoir sample of {checked:,} of {total:,}" if sampled else f"all {checked:,}"
        result.overview.append(f"`{stream}`: {how} records checked, {invalid:,} do not conform")
        ranked = sorted(tallies.items(), key=lambda item: (-item[1].records, item[0]))
        for (where, keyword), tally in ranked[:_MAX_ERROR_KINDS]:
            result.add(
                "record_schema_mismatch",
                f"`{stream}`: {tally.records:,} of {checked:,} records: {where} fails `{keyword}`"
                f" (e.g. {_short(tally.example)})",
                stream=stream, path=where, count=tally.records,
            )  # fmt: skip
        if len(ranked) > _MAX_ERROR_KINDS:
            result.add(
                "record_schema_mismatch",
                f"`{stream}`: … and {len(ranked) - _MAX_ERROR_KINDS} more kinds of schema errors",
                stream=stream,
            )
    return result


def validate_primary_keys_not_null(
    con: duckdb.DuckDBPyConnection, key: Key, primary_keys: Mapping[str, Sequence[Sequence[str]]]
) -> Validation:
    """Every record of a stream with a primary key has a non-null value for each key field."""
    result = Validation("Primary keys are never null", " ".join(key))
    for stream, paths in sorted(primary_keys.items()):
        missing = " OR ".join(f"coalesce(json_type(data, {literal(json_pointer(p))}), 'NULL') = 'NULL'" for p in paths)
        row = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {missing}) FROM records WHERE {_where()} AND stream = $stream",
            _params(key, stream=stream),
        ).fetchone()
        total, nulls = (int(row[0]), int(row[1])) if row else (0, 0)
        shown = ", ".join(".".join(p) for p in paths)
        result.overview.append(f"`{stream}` ({shown}): {total:,} records, {nulls:,} with a null or missing key field")
        if nulls:
            result.add(
                "null_primary_key",
                f"`{stream}`: {nulls:,} of {total:,} records have a null or missing primary key field ({shown})",
                stream=stream, count=nulls,
            )  # fmt: skip
    return result


def validate_states(con: duckdb.DuckDBPyConnection, key: Key, configured: Sequence[Mapping[str, Any]]) -> Validation:
    """Each stream read incrementally gets at least one STATE (a GLOBAL or LEGACY state covers all)."""
    result = Validation("Incremental streams emit state", " ".join(key))
    rows = con.execute(
        f"SELECT state_type, coalesce(stream, ''), count(*) FROM states WHERE {_where()} GROUP BY ALL", _params(key)
    ).fetchall()
    per_stream = {stream: int(n) for state_type, stream, n in rows if state_type == "STREAM"}
    shared = sum(int(n) for state_type, _, n in rows if state_type != "STREAM")
    incremental = [c["stream"]["name"] for c in _streams(configured) if c.get("sync_mode") == "incremental"]
    if shared:
        result.note("shared_state", f"{shared} GLOBAL/LEGACY state messages: they cover every stream")
    for stream in incremental:
        count = per_stream.get(stream, 0)
        result.overview.append(f"`{stream}` (incremental): {count} STREAM states")
        if not count and not shared:
            result.add("no_state", f"`{stream}` is read incrementally but no STATE was emitted for it", stream=stream)
    if not incremental:
        result.overview.append("no stream is read incrementally")
    return result


def validate_stream_statuses(
    con: duckdb.DuckDBPyConnection, key: Key, configured: Sequence[Mapping[str, Any]]
) -> Validation:
    """Each configured stream's statuses follow the status rule (compare.traces) and end COMPLETE."""
    result = Validation("Stream statuses go STARTED → RUNNING* → COMPLETE", " ".join(key))
    rows = con.execute(
        f"""SELECT coalesce(stream, '(unnamed)'), list(status ORDER BY seq) FROM traces
            WHERE {_where()} AND trace_type = 'STREAM_STATUS' GROUP BY ALL""",
        _params(key),
    ).fetchall()
    sequences = {stream: list(statuses) for stream, statuses in rows}
    configured_names = [c["stream"]["name"] for c in _streams(configured)]
    for stream in configured_names:
        sequence = sequences.get(stream)
        if not sequence:
            result.add("no_stream_status", f"`{stream}`: no STREAM_STATUS trace", stream=stream)
            continue
        result.overview.append(f"`{stream}`: {_collapse(sequence)}")
        if not status_sequence_is_valid(sequence):
            result.add(
                "invalid_status_sequence",
                f"`{stream}`: statuses {_collapse(sequence)} are not STARTED, RUNNING*, COMPLETE/INCOMPLETE",
                stream=stream, target=sequence,
            )  # fmt: skip
        elif sequence[-1] != "COMPLETE":
            result.add(
                "stream_incomplete",
                f"`{stream}`: the stream ended {sequence[-1]}, not COMPLETE",
                stream=stream, target=sequence,
            )  # fmt: skip
    for stream in sorted(set(sequences) - set(configured_names)):
        result.add(
            "status_of_unconfigured_stream",
            f"`{stream}`: statuses {_collapse(sequences[stream])} for a stream that is not in the configured catalog",
            stream=stream,
        )
    return result


def _collapse(sequence: Sequence[str]) -> str:
    """STARTED RUNNING RUNNING RUNNING COMPLETE -> STARTED RUNNING×3 COMPLETE."""
    parts: list[str] = []
    previous, run = None, 0
    for status in [*sequence, None]:
        if status == previous:
            run += 1
            continue
        if previous is not None:
            parts.append(previous if run == 1 else f"{previous}×{run}")
        previous, run = status, 1
    return " ".join(parts)


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
