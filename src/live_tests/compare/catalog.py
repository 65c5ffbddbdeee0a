"""Compare the discovered catalogs of control and target, stream by stream.

The catalog describes an output, so what breaks is what downstream syncs rely on: a stream or a
property disappearing, a property's type changing, primary key or cursor changing, a sync mode
no longer supported. New streams, new properties, nullability changes are non-breaking changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import duckdb

from live_tests.compare import jsonschema
from live_tests.compare.diff import Comparison, ExecutionKey, Finding, Severity, parse_json, short
from live_tests.compare.spec import jsonschema_display
from live_tests.sql import Scratch, both_params, canonical_sql, fetch_dicts, key_filter

# Stream keys compared with their own rules below; the schema is diffed property by property.
_STREAM_KEY_KINDS: dict[str, tuple[str, Severity]] = {
    "source_defined_primary_key": ("primary_key_changed", Severity.BREAKING),
    "default_cursor_field": ("cursor_field_changed", Severity.BREAKING),
    "source_defined_cursor": ("source_defined_cursor_changed", Severity.BREAKING),
}


@dataclass
class CatalogComparison(Comparison):
    title: ClassVar[str] = "Catalog comparison"

    control_streams: list[str] = field(default_factory=list)
    target_streams: list[str] = field(default_factory=list)

    @property
    def streams_added(self) -> list[str]:
        return sorted(set(self.target_streams) - set(self.control_streams))

    @property
    def streams_removed(self) -> list[str]:
        return sorted(set(self.control_streams) - set(self.target_streams))

    def overview_lines(self) -> list[str]:
        return [
            f"Streams: control {len(self.control_streams)}, target {len(self.target_streams)}"
            f" (added {len(self.streams_added)}, removed {len(self.streams_removed)})"
        ]


def compare_catalogs(con: duckdb.DuckDBPyConnection, control: ExecutionKey, target: ExecutionKey) -> CatalogComparison:
    """Diff the last CATALOG message of each execution (the `discover` command)."""
    c_key, t_key = ExecutionKey(*control), ExecutionKey(*target)
    result = CatalogComparison(c_key, t_key)
    with Scratch(con) as scratch:
        streams = scratch.create(
            "streams",
            f"""WITH docs AS (
                    SELECT 'control' AS side, catalog FROM
                        (SELECT catalog FROM catalog WHERE {key_filter("c")} ORDER BY seq DESC LIMIT 1)
                    UNION ALL
                    SELECT 'target', catalog FROM
                        (SELECT catalog FROM catalog WHERE {key_filter("t")} ORDER BY seq DESC LIMIT 1))
                SELECT d.side, s.value ->> '$.name' AS scope, s.value AS stream
                FROM docs d, json_each(d.catalog, '$.streams') s""",
            both_params(c_key, t_key),
        )
        present = dict(
            con.execute(
                f"""SELECT side, count(*) FROM (
                        SELECT side FROM {streams} UNION ALL
                        SELECT 'control' FROM catalog WHERE {key_filter("c")} UNION ALL
                        SELECT 'target' FROM catalog WHERE {key_filter("t")}) GROUP BY side""",
                both_params(c_key, t_key),
            ).fetchall()
        )
        if not result.both_emitted(present, "CATALOG"):
            return result
        for side, names in con.execute(
            f"SELECT side, list(scope ORDER BY scope) FROM {streams} GROUP BY side"
        ).fetchall():
            setattr(result, f"{side}_streams", names)
        for name in result.streams_removed:
            result.findings.append(
                Finding("stream_removed", Severity.BREAKING, f"stream `{name}` was removed", stream=name)
            )
        for name in result.streams_added:
            result.findings.append(Finding("stream_added", Severity.CHANGE, f"stream `{name}` was added", stream=name))

        # Only streams on both sides are diffed in detail; the others are one finding each.
        schemas = scratch.create(
            "schemas",
            f"""SELECT side, scope, stream -> '$.json_schema' AS schema FROM {streams}
                WHERE scope IN (SELECT scope FROM {streams} WHERE side = 'control'
                                INTERSECT SELECT scope FROM {streams} WHERE side = 'target')""",
        )
        nodes = scratch.create("nodes", jsonschema.nodes_sql(schemas))
        props = scratch.create("props", jsonschema.properties_sql(nodes))
        attrs = scratch.create("attrs", jsonschema.attributes_sql(props))
        for row in fetch_dicts(con, jsonschema.property_pairs_sql(props)):
            result.findings.append(_property_finding(row))
        for row in fetch_dicts(con, jsonschema.attribute_pairs_sql(attrs, props)):
            result.findings.append(_attribute_finding(row))
        result.findings += _stream_key_findings(con, scratch, streams, schemas)
    result.findings.sort(key=lambda f: (f.severity != Severity.BREAKING, f.stream or "", f.path or "", f.kind))
    return result


def _property_finding(row: dict[str, Any]) -> Finding:
    stream, path = row["scope"], row["display"]
    where = f"`{stream}`: property `{path}`"
    if not row["in_target"]:
        return Finding("property_removed", Severity.BREAKING, f"{where} was removed", stream=stream, path=path)
    if not row["in_control"]:
        return Finding("property_added", Severity.CHANGE, f"{where} was added", stream=stream, path=path)
    c_types, t_types = row["control_types"], row["target_types"]
    only_nullability = row["same_non_null_types"]
    return Finding(
        "property_nullability_changed" if only_nullability else "property_type_changed",
        Severity.CHANGE if only_nullability else Severity.BREAKING,
        f"{where} type changed: {'/'.join(c_types) or 'any'} -> {'/'.join(t_types) or 'any'}",
        stream=stream, path=path, control=c_types, target=t_types,
    )  # fmt: skip


def _attribute_finding(row: dict[str, Any]) -> Finding:
    stream, path, attr = row["scope"], jsonschema_display(row["path"]), row["attr"]
    c_val, t_val = parse_json(row["control_value"]), parse_json(row["target_value"])
    severity = Severity.INFO if attr in jsonschema.COSMETIC_ATTRIBUTES else Severity.CHANGE
    return Finding(
        "property_attribute_changed", severity,
        f"`{stream}`: `{path}`.{attr} changed: {_show(c_val)} -> {_show(t_val)}",
        stream=stream, path=path, control=c_val, target=t_val,
    )  # fmt: skip


def _stream_key_findings(con: duckdb.DuckDBPyConnection, scratch: Scratch, streams: str, schemas: str) -> list[Finding]:
    """Stream-level keys (primary key, cursor, sync modes, ...), canonicalised then compared."""
    entries = scratch.create(
        "stream_keys",
        f"""SELECT s.side, s.scope, e.key AS name, e.value AS v FROM {streams} s, json_each(s.stream) e
            WHERE e.key NOT IN ('name', 'json_schema')
              AND s.scope IN (SELECT scope FROM {schemas})""",
    )
    canon = canonical_sql(entries, "side, scope, name", "v")
    rows = con.execute(
        f"""WITH c AS ({canon}),
                 e AS (SELECT e.side, e.scope, e.name, e.v, c.canon FROM {entries} e JOIN c USING (side, scope, name))
            SELECT coalesce(a.scope, b.scope), coalesce(a.name, b.name), a.v::VARCHAR, b.v::VARCHAR
            FROM (SELECT * FROM e WHERE side = 'control') a
            FULL OUTER JOIN (SELECT * FROM e WHERE side = 'target') b ON a.scope = b.scope AND a.name = b.name
            WHERE a.canon IS DISTINCT FROM b.canon ORDER BY 1, 2"""
    ).fetchall()
    findings = []
    for stream, name, c_raw, t_raw in rows:
        c_val, t_val = parse_json(c_raw), parse_json(t_raw)
        if name == "supported_sync_modes":
            findings += _sync_mode_findings(stream, c_val or [], t_val or [])
            continue
        kind, severity = _STREAM_KEY_KINDS.get(name, ("stream_attribute_changed", Severity.CHANGE))
        findings.append(
            Finding(
                kind, severity, f"`{stream}`: {name} changed: {_show(c_val)} -> {_show(t_val)}",
                stream=stream, path=name, control=c_val, target=t_val,
            )
        )  # fmt: skip
    return findings


def _sync_mode_findings(stream: str, control: list[str], target: list[str]) -> list[Finding]:
    findings = []
    removed = sorted(set(control) - set(target))
    added = sorted(set(target) - set(control))
    if removed:
        findings.append(
            Finding(
                "sync_modes_removed", Severity.BREAKING,
                f"`{stream}`: sync modes no longer supported: {', '.join(removed)}",
                stream=stream, path="supported_sync_modes", control=control, target=target,
            )
        )  # fmt: skip
    if added:
        findings.append(
            Finding(
                "sync_modes_added", Severity.CHANGE, f"`{stream}`: sync modes added: {', '.join(added)}",
                stream=stream, path="supported_sync_modes", control=control, target=target,
            )
        )  # fmt: skip
    return findings


def _show(value: Any) -> str:
    return "(unset)" if value is None else short(value, 60)
