"""Compare the SPEC of control and target: what a user's config must look like.

The spec describes an input, so a change is breaking when a config valid for control may be
rejected (or mishandled) by target: a property removed, a new required property, a type
narrowed, enum values removed, a secret no longer marked `airbyte_secret`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb

from live_tests.compare import jsonschema
from live_tests.compare.diff import Comparison, ExecutionKey, Finding, Severity, parse_json, short
from live_tests.sql import Scratch, both_params, canonical_sql, fetch_dicts, key_filter

# Spec keys besides the schema whose changes are documentation only.
_COSMETIC_SPEC_KEYS = ("documentationUrl", "changelogUrl")


@dataclass
class SpecComparison(Comparison):
    title: ClassVar[str] = "Spec comparison"

    control_properties: int = 0
    target_properties: int = 0

    def overview_lines(self) -> list[str]:
        return [f"Config properties: control {self.control_properties}, target {self.target_properties}"]


def compare_spec(con: duckdb.DuckDBPyConnection, control: ExecutionKey, target: ExecutionKey) -> SpecComparison:
    """Diff the last SPEC message of each execution (usually the `spec` command)."""
    c_key, t_key = ExecutionKey(*control), ExecutionKey(*target)
    result = SpecComparison(c_key, t_key)
    params = both_params(c_key, t_key)
    with Scratch(con) as scratch:
        docs = scratch.create(
            "docs",
            f"""SELECT 'control' AS side, 'spec' AS scope, spec FROM
                    (SELECT spec FROM spec WHERE {key_filter("c")} ORDER BY seq DESC LIMIT 1)
                UNION ALL
                SELECT 'target', 'spec', spec FROM
                    (SELECT spec FROM spec WHERE {key_filter("t")} ORDER BY seq DESC LIMIT 1)""",
            params,
        )
        sides = {row[0] for row in con.execute(f"SELECT side FROM {docs}").fetchall()}
        if not result.both_emitted(sides, "SPEC"):
            return result

        schemas = scratch.create(
            "schemas", f"SELECT side, scope, spec -> '$.connectionSpecification' AS schema FROM {docs}"
        )
        nodes = scratch.create("nodes", jsonschema.nodes_sql(schemas))
        props = scratch.create("props", jsonschema.properties_sql(nodes))
        attrs = scratch.create("attrs", jsonschema.attributes_sql(props))
        for side, count in con.execute(f"SELECT side, count(*) FROM {props} GROUP BY side").fetchall():
            if side == "control":
                result.control_properties = count
            else:
                result.target_properties = count

        for row in fetch_dicts(con, jsonschema.property_pairs_sql(props)):
            result.findings += _property_findings(row)
        for row in fetch_dicts(con, jsonschema.attribute_pairs_sql(attrs, props)):
            result.findings.append(_attribute_finding(row))
        result.findings += _top_level_findings(con, scratch, docs)
    result.findings.sort(key=lambda f: (f.severity != Severity.BREAKING, f.path or "", f.kind))
    return result


def _property_findings(row: dict[str, Any]) -> list[Finding]:
    path = row["display"]
    if not row["in_target"]:
        return [Finding("property_removed", Severity.BREAKING, f"property `{path}` was removed", path=path)]
    if not row["in_control"]:
        if row["target_required"]:
            return [
                Finding(
                    "required_property_added", Severity.BREAKING,
                    f"new required property `{path}` (existing configs lack it)", path=path,
                )
            ]  # fmt: skip
        return [Finding("property_added", Severity.CHANGE, f"optional property `{path}` was added", path=path)]
    findings = []
    c_types, t_types = row["control_types"], row["target_types"]
    if c_types != t_types:
        narrowed = row["narrowed"]
        findings.append(
            Finding(
                "property_type_narrowed" if narrowed else "property_type_widened",
                Severity.BREAKING if narrowed else Severity.CHANGE,
                f"type of `{path}` {'narrowed' if narrowed else 'widened'}: "
                f"{_types(c_types)} -> {_types(t_types)}",
                path=path, control=c_types, target=t_types,
            )
        )  # fmt: skip
    if row["control_required"] != row["target_required"]:
        became = bool(row["target_required"])
        findings.append(
            Finding(
                "property_became_required" if became else "property_no_longer_required",
                Severity.BREAKING if became else Severity.CHANGE,
                f"`{path}` is {'now required' if became else 'no longer required'}",
                path=path, control=row["control_required"], target=row["target_required"],
            )
        )  # fmt: skip
    if row["control_secret"] != row["target_secret"]:
        unmarked = bool(row["control_secret"])
        findings.append(
            Finding(
                "secret_unmarked" if unmarked else "secret_marked",
                Severity.BREAKING if unmarked else Severity.CHANGE,
                f"`{path}` {'is no longer' if unmarked else 'is now'} marked airbyte_secret",
                path=path, control=row["control_secret"], target=row["target_secret"],
            )
        )  # fmt: skip
    return findings


def _attribute_finding(row: dict[str, Any]) -> Finding:
    path = jsonschema_display(row["path"])
    attr = row["attr"]
    c_val, t_val = parse_json(row["control_value"]), parse_json(row["target_value"])
    change = f"{_show(c_val)} -> {_show(t_val)}"
    if attr == "enum" and row["enum_removed"]:
        return Finding(
            "enum_values_removed", Severity.BREAKING,
            f"`{path}` no longer accepts {', '.join(map(repr, row['enum_removed']))}",
            path=path, control=c_val, target=t_val,
        )  # fmt: skip
    severity = Severity.INFO if attr in jsonschema.COSMETIC_ATTRIBUTES else Severity.CHANGE
    return Finding(
        "property_attribute_changed", severity, f"`{path}`.{attr} changed: {change}",
        path=path, control=c_val, target=t_val,
    )  # fmt: skip


def jsonschema_display(path: str) -> str:
    """`$.properties.a.properties.b` -> `a.b` (same rule as the SQL `display` column)."""
    text = path.replace(".properties.", ".")
    return text.removeprefix("$.properties.").removeprefix("$.")


def _top_level_findings(con: duckdb.DuckDBPyConnection, scratch: Scratch, docs: str) -> list[Finding]:
    """Spec keys other than the config schema (sync modes supported, auth flow, URLs...)."""
    entries = scratch.create(
        "top",
        f"""SELECT d.side, e.key AS name, e.value AS v FROM {docs} d, json_each(d.spec) e
            WHERE e.key <> 'connectionSpecification'""",
    )
    canon = canonical_sql(entries, "side, name", "v")
    rows = con.execute(
        f"""WITH c AS ({canon})
            SELECT coalesce(a.name, b.name) AS name, ea.v::VARCHAR, eb.v::VARCHAR
            FROM (SELECT * FROM c WHERE side = 'control') a
            FULL OUTER JOIN (SELECT * FROM c WHERE side = 'target') b ON a.name = b.name
            LEFT JOIN {entries} ea ON ea.side = 'control' AND ea.name = a.name
            LEFT JOIN {entries} eb ON eb.side = 'target' AND eb.name = b.name
            WHERE a.canon IS DISTINCT FROM b.canon ORDER BY 1"""
    ).fetchall()
    findings = []
    for name, c_raw, t_raw in rows:
        c_val, t_val = parse_json(c_raw), parse_json(t_raw)
        severity = Severity.INFO if name in _COSMETIC_SPEC_KEYS else Severity.CHANGE
        findings.append(
            Finding(
                "spec_key_changed", severity,
                f"spec.{name} changed: {_show(c_val)} -> {_show(t_val)}",
                path=name, control=c_val, target=t_val,
            )
        )  # fmt: skip
    return findings


def _show(value: Any) -> str:
    return "(unset)" if value is None else short(value, 60)


def _types(types: list[str]) -> str:
    return "/".join(types) if types else "any"
