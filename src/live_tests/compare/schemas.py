"""Compare the schema inferred from the records of control and target, per stream.

For each top-level field, on each side: the JSON types seen (null aside), how many records have
the field and how many have it null. Computed in two passes over `records`: the field names per
stream (`json_keys`), then one scan per stream with a constant list of JSON pointers (`json_type`
with constant paths is fast; json_each over every record would be ~20x slower). Ignored paths
that name a top-level field leave that field out. A field that is only ever null on one side and
absent on the other is listed as such, not as removed or added.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import duckdb

from live_tests.compare.diff import Comparison, ExecutionKey, Finding, Severity
from live_tests.compare.ignores import RECORDS, IgnoredPath, IgnoreRules
from live_tests.sql import Scratch, both_params, fetch_dicts, json_pointer, key_filter, literal

# DuckDB's json_type names -> JSON schema type names.
_TYPE_NAMES = """CASE t WHEN 'UBIGINT' THEN 'integer' WHEN 'BIGINT' THEN 'integer' WHEN 'HUGEINT' THEN 'integer'
                 WHEN 'DOUBLE' THEN 'number' WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean'
                 WHEN 'OBJECT' THEN 'object' WHEN 'ARRAY' THEN 'array' ELSE lower(t) END"""


@dataclass(frozen=True)
class FieldProfile:
    """What the records of one stream showed about one top-level field."""

    types: list[str]  # JSON types seen, sorted, null excluded ("integer", "number", "string", ...)
    records: int  # records in the stream
    present: int  # records that have the field
    nulls: int  # records where it is null

    @property
    def nullable(self) -> bool:
        """Null or absent in at least one record."""
        return self.nulls > 0 or self.present < self.records

    def describe(self) -> str:
        types = "/".join(self.types) or "null only"
        return f"{types}{', nullable' if self.nullable else ''}"


@dataclass
class InferredSchemaComparison(Comparison):
    title: ClassVar[str] = "Inferred schema comparison"

    # stream -> field -> profile
    control_fields: dict[str, dict[str, FieldProfile]] = field(default_factory=dict)
    target_fields: dict[str, dict[str, FieldProfile]] = field(default_factory=dict)

    def overview_lines(self) -> list[str]:
        streams = sorted(set(self.control_fields) | set(self.target_fields))
        return [
            f"`{s}`: {len(self.control_fields.get(s, {}))} fields in control,"
            f" {len(self.target_fields.get(s, {}))} in target"
            for s in streams
        ]


def infer_schemas(con: duckdb.DuckDBPyConnection, key: ExecutionKey) -> dict[str, dict[str, FieldProfile]]:
    """Per stream, per top-level field: types seen and nullability, for one execution."""
    params = {f"c_{name}": value for name, value in key._asdict().items()}
    with Scratch(con) as scratch:
        rows = _profile_rows(con, scratch, params, ("c",), IgnoreRules(con, (), RECORDS))
    return _profiles(rows, "c")


def compare_inferred_schemas(
    con: duckdb.DuckDBPyConnection,
    control: ExecutionKey,
    target: ExecutionKey,
    *,
    ignored: Sequence[IgnoredPath] = (),
) -> InferredSchemaComparison:
    """Diff the schema inferred from each execution's records (fields, types, nullability).

    `ignored`: paths into the record data; a top-level field they cover is left out (those that
    apply to records end up in `result.ignored`).
    """
    rules = IgnoreRules(con, ignored, RECORDS)
    result = InferredSchemaComparison(control, target, ignored=rules.applied)
    with Scratch(con) as scratch:
        rows = _profile_rows(con, scratch, both_params(control, target), ("c", "t"), rules)
    result.control_fields = _profiles(rows, "c")
    result.target_fields = _profiles(rows, "t")
    result.findings = _findings(result.control_fields, result.target_fields)
    return result


def _profile_rows(
    con: duckdb.DuckDBPyConnection,
    scratch: Scratch,
    params: dict[str, str],
    sides: tuple[str, ...],
    rules: IgnoreRules,
) -> list[dict[str, Any]]:
    names = scratch.create(
        "field_names",
        " UNION ALL ".join(
            f"""SELECT '{side}' AS side, n.stream, f.fields, n.records
                FROM (SELECT stream, count(*) AS records FROM records WHERE {key_filter(side)} GROUP BY stream) n
                LEFT JOIN (SELECT d.stream, list_sort(list(d.name)) AS fields
                           FROM (SELECT DISTINCT stream, unnest(json_keys(data)) AS name
                                 FROM records WHERE {key_filter(side)}) d,
                                json_tree(json_object(d.name, 0)) j
                           WHERE j.fullkey <> '$' AND NOT {rules.sql("d.stream", "j.fullkey")}
                           GROUP BY d.stream) f USING (stream)"""
            for side in sides
        ),
        params,
    )
    per_stream = con.execute(f"SELECT side, stream, fields, records FROM {names} ORDER BY side, stream").fetchall()
    selects = []
    for side, stream, fields, records in per_stream:
        if not fields:
            selects.append(
                f"SELECT '{side}' AS side, {literal(stream)} AS stream, NULL AS name, []::VARCHAR[] AS types,"
                f" {records}::BIGINT AS records, 0::BIGINT AS present, 0::BIGINT AS nulls"
            )
            continue
        field_list = "[" + ", ".join(literal(f) for f in fields) + "]"
        pointers = "[" + ", ".join(literal(json_pointer([f])) for f in fields) + "]"
        selects.append(
            f"""SELECT '{side}' AS side, {literal(stream)} AS stream, name,
                       list_sort(list_distinct(list({_TYPE_NAMES}) FILTER (WHERE t <> 'NULL'))) AS types,
                       {records}::BIGINT AS records, count(t) AS present,
                       count(*) FILTER (WHERE t = 'NULL') AS nulls
                FROM (SELECT unnest({field_list}) AS name, unnest(json_type(data, {pointers})) AS t
                      FROM records WHERE {key_filter(side)} AND stream = {literal(stream)})
                GROUP BY name"""
        )
    if not selects:
        return []
    return fetch_dicts(con, " UNION ALL ".join(selects) + " ORDER BY side, stream, name", params)


def _profiles(rows: list[dict[str, Any]], side: str) -> dict[str, dict[str, FieldProfile]]:
    profiles: dict[str, dict[str, FieldProfile]] = {}
    for row in rows:
        if row["side"] != side:
            continue
        fields = profiles.setdefault(row["stream"], {})
        if row["name"] is not None:
            fields[row["name"]] = FieldProfile(
                list(row["types"] or []), int(row["records"]), int(row["present"]), int(row["nulls"])
            )
    return profiles


def _findings(control: dict[str, dict[str, FieldProfile]], target: dict[str, dict[str, FieldProfile]]) -> list[Finding]:
    """Classify the (small) per-field profiles; the heavy lifting happened in SQL."""
    findings = []
    for stream in sorted(set(control) | set(target)):
        if stream not in target or stream not in control:
            side = "control" if stream in control else "target"
            findings.append(
                Finding(
                    "stream_only_in_" + side, Severity.INFO, f"`{stream}` has records only in {side}", stream=stream
                )
            )
            continue
        c_fields, t_fields = control[stream], target[stream]
        for name in sorted(set(c_fields) | set(t_fields)):
            path = f"$.{name}"
            c, t = c_fields.get(name), t_fields.get(name)
            if t is None and c is not None and not c.types:
                findings.append(
                    Finding(
                        "field_null_vs_absent", Severity.CHANGE,
                        f"`{stream}`: `{path}` null in control, absent in target ({c.nulls} records)",
                        stream=stream, path=path, control="null", target="absent", count=c.nulls,
                    )
                )  # fmt: skip
            elif c is None and t is not None and not t.types:
                findings.append(
                    Finding(
                        "field_null_vs_absent", Severity.CHANGE,
                        f"`{stream}`: `{path}` absent in control, null in target ({t.nulls} records)",
                        stream=stream, path=path, control="absent", target="null", count=t.nulls,
                    )
                )  # fmt: skip
            elif t is None:
                findings.append(
                    Finding(
                        "field_removed", Severity.BREAKING, f"`{stream}`: field `{name}` no longer appears",
                        stream=stream, path=path, control=c.describe() if c else None,
                    )
                )  # fmt: skip
            elif c is None:
                findings.append(
                    Finding(
                        "field_added", Severity.CHANGE, f"`{stream}`: new field `{name}` ({t.describe()})",
                        stream=stream, path=path, target=t.describe(),
                    )
                )  # fmt: skip
            else:
                if c.types != t.types:
                    lost = sorted(set(c.types) - set(t.types))
                    findings.append(
                        Finding(
                            "field_type_changed", Severity.BREAKING if lost else Severity.CHANGE,
                            f"`{stream}`: field `{name}` types {'/'.join(c.types) or 'null only'}"
                            f" -> {'/'.join(t.types) or 'null only'}",
                            stream=stream, path=path, control=c.types, target=t.types,
                        )
                    )  # fmt: skip
                if c.nullable != t.nullable:
                    findings.append(
                        Finding(
                            "field_nullability_changed", Severity.CHANGE,
                            f"`{stream}`: field `{name}` is {'now' if t.nullable else 'no longer'} null or absent"
                            f" in some records (control: {c.nulls} null, {c.records - c.present} absent;"
                            f" target: {t.nulls} null, {t.records - t.present} absent)",
                            stream=stream, path=path, control=c.nullable, target=t.nullable,
                        )
                    )  # fmt: skip
    return findings
