"""Spec and catalog comparisons: every difference between the two documents is found and classified.

Executions are planted in small duck.db files the way a run builds them (see tests/test_compare.py).
Each rule of `live_tests.compare.change_rules.RULES` has a case below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from live_tests.compare import (
    CatalogComparison,
    Severity,
    SpecComparison,
    compare_catalogs,
    compare_spec,
    document_diff,
)
from tests.test_compare import SessionBuilder, assert_no_scratch_tables, catalog, kinds, reordered, session, spec

__all__ = ["session"]  # the fixture, imported for pytest

B, C, I = "breaking", "change", "info"  # noqa: E741
CS = "$.connectionSpecification"
X = f"{CS}.properties.x"


def copy(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def found(result: SpecComparison | CatalogComparison) -> set[tuple[str, str, str | None]]:
    return {(f.kind, f.severity.value, f.path) for f in result.findings}


def diff_spec(tmp_path: Path, control: dict[str, Any], target: dict[str, Any]) -> SpecComparison:
    """Compare two whole SPEC objects (connectionSpecification and the keys beside it)."""
    s = SessionBuilder(tmp_path)
    c = s.load("1.0", "spec", [{"type": "SPEC", "spec": control}])
    t = s.load("2.0", "spec", [{"type": "SPEC", "spec": target}])
    con = s.connect()
    result = compare_spec(con, c, t)
    assert_no_scratch_tables(con)
    return result


def diff_catalog(tmp_path: Path, control: list[dict[str, Any]], target: list[dict[str, Any]]) -> CatalogComparison:
    s = SessionBuilder(tmp_path)
    c = s.load("1.0", "discover", [catalog(control)])
    t = s.load("2.0", "discover", [catalog(target)])
    con = s.connect()
    result = compare_catalogs(con, c, t)
    assert_no_scratch_tables(con)
    return result


# ---------------------------------------------------------------------------------------------
# Spec

SPEC = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["api_key", "start_date"],
    "properties": {
        "api_key": {"type": "string", "airbyte_secret": True, "title": "API key"},
        "start_date": {"type": "string", "format": "date"},
        "region": {"type": "string", "enum": ["us", "eu"]},
        "limit": {"type": ["integer", "string"]},
        "options": {
            "type": "object",
            "required": ["page_size"],
            "properties": {"page_size": {"type": "integer"}, "verbose": {"type": "boolean"}},
        },
    },
}


def test_spec_identical_up_to_key_order(session: SessionBuilder) -> None:
    control = session.load("1.0", "spec", [spec(SPEC, documentationUrl="https://docs")])
    target = session.load("2.0", "spec", [spec(reordered({**SPEC}), documentationUrl="https://docs")])
    result = compare_spec(session.connect(), control, target)
    assert result.passed and result.findings == []
    assert result.control_properties == result.target_properties == 7


def test_spec_breaking_and_non_breaking_changes(session: SessionBuilder) -> None:
    new = copy(SPEC)
    props = new["properties"]
    props["api_key"]["airbyte_secret"] = False  # secret un-marked: breaking
    props["api_key"]["title"] = "Key"  # cosmetic
    del props["start_date"]  # removed: breaking
    new["required"] = ["api_key", "account_id"]
    props["account_id"] = {"type": "string"}  # new required: breaking
    props["timeout"] = {"type": "integer"}  # new optional: change
    props["region"]["enum"] = ["us"]  # enum narrowed: breaking
    props["limit"]["type"] = "integer"  # type narrowed: breaking
    props["options"]["properties"]["page_size"]["type"] = "number"  # widened: change
    props["options"]["required"] = []  # no longer required: change
    props["options"]["properties"]["verbose"]["airbyte_secret"] = True  # newly secret: change
    control = session.load("1.0", "spec", [spec(SPEC)])
    target = session.load("2.0", "spec", [spec(new)])
    result = compare_spec(session.connect(), control, target)
    assert not result.passed
    p = f"{CS}.properties"
    assert found(result) == {
        ("secret_unmarked", B, f"{p}.api_key.airbyte_secret"),
        ("cosmetic_change", I, f"{p}.api_key.title"),
        ("property_removed", B, f"{p}.start_date"),
        ("required_property_added", B, f"{p}.account_id"),
        ("property_added", C, f"{p}.timeout"),
        ("enum_values_removed", B, f"{p}.region.enum"),
        ("property_type_narrowed", B, f"{p}.limit.type"),
        ("property_type_widened", C, f"{p}.options.properties.page_size.type"),
        ("property_no_longer_required", C, f"{p}.options.properties.page_size"),
        ("secret_marked", C, f"{p}.options.properties.verbose.airbyte_secret"),
    }
    assert result.of_kind("enum_values_removed")[0].message == f'`{p}.region.enum` no longer accepts "eu"'
    assert result.of_kind("property_type_narrowed")[0].message == (
        f"`{p}.limit.type` narrowed from [integer, string] to [integer]"
    )
    added = result.of_kind("required_property_added")[0]
    assert (added.control, added.target) == (None, {"type": "string"})
    assert result.findings[0].severity is Severity.BREAKING  # breaking first
    assert "Breaking differences (5):" in result.summary


def test_spec_property_becomes_required_and_missing_spec(session: SessionBuilder) -> None:
    new = copy(SPEC)
    new["required"].append("region")
    control = session.load("1.0", "spec", [spec(SPEC)])
    target = session.load("2.0", "spec", [spec(new)])
    nothing = session.load("3.0", "spec", [{"type": "LOG", "log": {"level": "INFO", "message": "hi"}}])
    con = session.connect()
    result = compare_spec(con, control, target)
    assert kinds(result) == [("property_became_required", None, f"{CS}.properties.region")]
    assert result.findings[0].message == f"`{CS}.properties.region` is now required"
    assert not result.passed
    missing = compare_spec(con, control, nothing)
    assert kinds(missing) == [("spec_missing", None, None)] and not missing.passed


def test_spec_issue_example_every_change_is_listed(tmp_path: Path) -> None:
    """documentationUrl and the schema title dropped, additionalProperties and order added."""
    schema = {"title": "Demo Spec", "type": "object", "properties": {"count": {"type": "integer"}}}
    control = {"documentationUrl": "https://docs.example/demo", "connectionSpecification": schema}
    new = copy(schema)
    del new["title"]
    new["additionalProperties"] = True
    new["properties"]["count"]["order"] = 0
    result = diff_spec(tmp_path, control, {"connectionSpecification": new})
    assert found(result) == {
        ("cosmetic_change", I, "$.documentationUrl"),
        ("cosmetic_change", I, f"{CS}.title"),
        ("equivalent_change", I, f"{CS}.additionalProperties"),
        ("cosmetic_change", I, f"{CS}.properties.count.order"),
    }
    assert result.passed and not result.has_differences  # listed as notes, nothing fails
    messages = {f.message for f in result.findings}
    assert "`$.documentationUrl` removed (was https://docs.example/demo)" in messages
    assert f"`{CS}.additionalProperties` added: true (true is the default)" in messages


def test_spec_order_of_sets_and_keys_is_no_change(tmp_path: Path) -> None:
    control = {
        "connectionSpecification": {"type": "object", "required": ["a", "b"], "properties": {
            "a": {"type": ["string", "null"], "enum": ["x", "y"]},
            "b": {"type": "string", "default": {"p": 1, "q": [1, {"r": 2, "s": 3}]}}}},
        "supportedDestinationSyncModes": ["append", "overwrite"],
    }  # fmt: skip
    target = {
        "supportedDestinationSyncModes": ["overwrite", "append"],
        "connectionSpecification": {"properties": {
            "b": {"default": {"q": [1, {"s": 3, "r": 2}], "p": 1}, "type": ["string"]},
            "a": {"enum": ["y", "x"], "type": ["null", "string"]}},
            "required": ["b", "a"], "type": "object"},
    }  # fmt: skip
    result = diff_spec(tmp_path, control, target)
    assert result.findings == []


def prop(**schema: Any) -> dict[str, Any]:
    """A spec whose config schema has one property `x` (omitted when `schema` is `{"absent": True}`)."""
    required = schema.pop("_required", [])
    props = {} if schema.pop("absent", False) else {"x": schema}
    return {"connectionSpecification": {"type": "object", "required": required, "properties": props}}


SPEC_RULES: dict[str, tuple[dict[str, Any], dict[str, Any], set[tuple[str, str, str | None]]]] = {
    # id: (control spec, target spec, expected findings)
    "property removed": (prop(type="string"), prop(absent=True), {("property_removed", B, X)}),
    "optional property added": (prop(absent=True), prop(type="string"), {("property_added", C, X)}),
    "required property added": (
        prop(absent=True), prop(type="string", _required=["x"]), {("required_property_added", B, X)}),
    "property newly required": (
        prop(type="string"), prop(type="string", _required=["x"]), {("property_became_required", B, X)}),
    "required relaxed": (
        prop(type="string", _required=["x"]), prop(type="string"), {("property_no_longer_required", C, X)}),
    "type narrowed": (
        prop(type=["string", "integer"]), prop(type="string"), {("property_type_narrowed", B, f"{X}.type")}),
    "type set where any was accepted": (prop(), prop(type="string"), {("property_type_narrowed", B, f"{X}.type")}),
    "type widened": (prop(type="integer"), prop(type="number"), {("property_type_widened", C, f"{X}.type")}),
    "type widened by null": (
        prop(type="string"), prop(type=["null", "string"]), {("property_type_widened", C, f"{X}.type")}),
    "enum values removed": (prop(enum=["a", "b"]), prop(enum=["a"]), {("enum_values_removed", B, f"{X}.enum")}),
    "enum values added": (prop(enum=["a"]), prop(enum=["a", "b"]), {("enum_values_added", C, f"{X}.enum")}),
    "enum values swapped": (prop(enum=["a"]), prop(enum=["b"]),
                            {("enum_values_removed", B, f"{X}.enum"), ("enum_values_added", C, f"{X}.enum")}),
    "enum added": (prop(type="string"), prop(type="string", enum=["a"]), {("enum_added", B, f"{X}.enum")}),
    "enum removed": (prop(enum=["a"]), prop(), {("enum_removed", C, f"{X}.enum")}),
    "format added": (prop(type="string"), prop(type="string", format="date"), {("format_tightened", B, f"{X}.format")}),
    "format changed": (prop(format="date"), prop(format="date-time"), {("format_tightened", B, f"{X}.format")}),
    "format removed": (prop(format="date"), prop(), {("format_relaxed", C, f"{X}.format")}),
    "pattern added": (prop(), prop(pattern="^[a-z]+$"), {("pattern_tightened", B, f"{X}.pattern")}),
    "pattern removed": (prop(pattern="^[a-z]+$"), prop(), {("pattern_relaxed", C, f"{X}.pattern")}),
    "minimum raised": (prop(minimum=1), prop(minimum=2), {("bound_tightened", B, f"{X}.minimum")}),
    "maximum lowered": (prop(maximum=10), prop(maximum=5), {("bound_tightened", B, f"{X}.maximum")}),
    "minLength added": (prop(), prop(minLength=3), {("bound_tightened", B, f"{X}.minLength")}),
    "maxLength raised": (prop(maxLength=3), prop(maxLength=8), {("bound_relaxed", C, f"{X}.maxLength")}),
    "maximum removed": (prop(maximum=10), prop(), {("bound_relaxed", C, f"{X}.maximum")}),
    "airbyte_secret removed": (prop(airbyte_secret=True), prop(), {("secret_unmarked", B, f"{X}.airbyte_secret")}),
    "airbyte_secret added": (prop(), prop(airbyte_secret=True), {("secret_marked", C, f"{X}.airbyte_secret")}),
    "airbyte_secret false made explicit": (
        prop(), prop(airbyte_secret=False), {("equivalent_change", I, f"{X}.airbyte_secret")}),
    "additionalProperties true to false": (
        prop(additionalProperties=True), prop(additionalProperties=False),
        {("additional_properties_restricted", B, f"{X}.additionalProperties")}),
    "additionalProperties added as false": (
        prop(), prop(additionalProperties=False),
        {("additional_properties_restricted", B, f"{X}.additionalProperties")}),
    "additionalProperties false to true": (
        prop(additionalProperties=False), prop(additionalProperties=True),
        {("additional_properties_allowed", C, f"{X}.additionalProperties")}),
    "additionalProperties added as true": (
        prop(), prop(additionalProperties=True), {("equivalent_change", I, f"{X}.additionalProperties")}),
    "oneOf option removed": (
        prop(oneOf=[{"title": "A", "properties": {"a": {"type": "string"}}}, {"title": "B"}]),
        prop(oneOf=[{"title": "A", "properties": {"a": {"type": "string"}}}]),
        {("one_of_option_removed", B, f"{X}.oneOf[1]")}),
    "oneOf option added": (prop(oneOf=[{"title": "A"}]), prop(oneOf=[{"title": "A"}, {"title": "B"}]),
                           {("one_of_option_added", C, f"{X}.oneOf[1]")}),
    "property removed inside a oneOf option": (
        prop(oneOf=[{"properties": {"a": {"type": "string"}, "b": {}}}]), prop(oneOf=[{"properties": {"b": {}}}]),
        {("property_removed", B, f"{X}.oneOf[0].properties.a")}),
    "destination sync mode removed": (
        {"supportedDestinationSyncModes": ["append", "overwrite"], **prop()},
        {"supportedDestinationSyncModes": ["append"], **prop()},
        {("destination_sync_modes_removed", B, "$.supportedDestinationSyncModes")}),
    "destination sync mode added": (
        {"supportedDestinationSyncModes": ["append"], **prop()},
        {"supportedDestinationSyncModes": ["append", "overwrite"], **prop()},
        {("destination_sync_modes_added", C, "$.supportedDestinationSyncModes")}),
    "cosmetic keys": (
        prop(title="X", description="old", examples=["a"], order=0, group="g", display_type="dropdown"),
        prop(title="Y", description="new", examples=["a", "b"], order=1, group="h", airbyte_hidden=True),
        {("cosmetic_change", I, f"{X}.{k}")
         for k in ("title", "description", "examples", "order", "group", "display_type", "airbyte_hidden")}),
    "documentation URLs": (
        {"documentationUrl": "https://a", **prop()}, {"changelogUrl": "https://c", **prop()},
        {("cosmetic_change", I, "$.documentationUrl"), ("cosmetic_change", I, "$.changelogUrl")}),
    "whole properties object removed": (
        prop(type="object", properties={"a": {}}), prop(type="object"), {("property_removed", B, f"{X}.properties")}),
    "a property named like a cosmetic keyword is a property": (
        {"connectionSpecification": {"properties": {"title": {"type": "string"}}}},
        {"connectionSpecification": {"properties": {}}},
        {("property_removed", B, f"{CS}.properties.title")}),
    "an unknown attribute": (prop(**{"x-custom": 1}), prop(**{"x-custom": 2}),
                             {("unclassified_change", C, f'{X}."x-custom"')}),
    "an unknown top-level key": (
        {"advanced_auth": {"auth_flow_type": "oauth2.0"}, **prop()},
        {"advanced_auth": {"auth_flow_type": "oauth1"}, **prop()},
        {("unclassified_change", C, "$.advanced_auth.auth_flow_type")}),
    "a default changed": (prop(default=[1, 2]), prop(default=[2, 1]), {("unclassified_change", C, f"{X}.default")}),
}  # fmt: skip


@pytest.mark.parametrize(("control", "target", "expected"), SPEC_RULES.values(), ids=SPEC_RULES.keys())
def test_spec_rule(
    tmp_path: Path, control: dict[str, Any], target: dict[str, Any], expected: set[tuple[str, str, str | None]]
) -> None:
    result = diff_spec(tmp_path, control, target)
    assert found(result) == expected
    assert result.passed is not any(severity == B for _, severity, _ in expected)


def auth(kind: str, *fields: str, title: str | None = None) -> dict[str, Any]:
    """A `oneOf` option named by its `const` discriminator, as Airbyte specs write them."""
    props = {"auth_type": {"type": "string", "const": kind}, **{f: {"type": "string"} for f in fields}}
    return {"title": title or kind, "properties": props}


def test_spec_one_of_options_are_paired_by_discriminator(tmp_path: Path) -> None:
    """An option added in front and the others reordered: only the new option is a change."""
    control = prop(oneOf=[auth("key", "api_key"), auth("oauth", "client_id", "client_secret")])
    target = prop(oneOf=[auth("token", "token"), auth("oauth", "client_id"), auth("key", "api_key")])
    result = diff_spec(tmp_path, control, target)
    assert found(result) == {
        ("one_of_option_added", C, f"{X}.oneOf[0]"),
        ("property_removed", B, f"{X}.oneOf[1].properties.client_secret"),
    }
    removed = result.of_kind("property_removed")[0]
    assert (removed.control, removed.target) == ({"type": "string"}, None)


def test_spec_one_of_options_without_unique_names_are_paired_by_index(tmp_path: Path) -> None:
    control = prop(oneOf=[{"properties": {"a": {}}}, {"properties": {"b": {}}}])
    target = prop(oneOf=[{"properties": {"b": {}}}, {"properties": {"a": {}}}])
    result = diff_spec(tmp_path, control, target)
    assert found(result) == {
        ("property_removed", B, f"{X}.oneOf[0].properties.a"),
        ("property_added", C, f"{X}.oneOf[0].properties.b"),
        ("property_removed", B, f"{X}.oneOf[1].properties.b"),
        ("property_added", C, f"{X}.oneOf[1].properties.a"),
    }


def test_spec_finding_carries_both_values_and_one_line_message(tmp_path: Path) -> None:
    result = diff_spec(tmp_path, prop(type=["integer", "null"]), prop(type="integer"))
    (finding,) = result.findings
    assert (finding.control, finding.target) == (["integer", "null"], ["integer"])
    assert finding.message == f"`{X}.type` narrowed from [integer, null] to [integer]"
    assert finding.stream is None


# ---------------------------------------------------------------------------------------------
# Catalog


def stream(name: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "json_schema": {"type": "object", "properties": properties},
        "supported_sync_modes": ["full_refresh", "incremental"],
        **extra,
    }


CATALOG_STREAMS = [
    stream(
        "users",
        {"id": {"type": "integer"}, "email": {"type": "string"}, "age": {"type": "integer"},
         "name": {"type": "string"}, "address": {"type": "object", "properties": {"city": {"type": "string"}}}},
        source_defined_primary_key=[["id"]], default_cursor_field=["updated_at"], source_defined_cursor=True,
    ),
    stream("orders", {"id": {"type": "integer"}}, source_defined_primary_key=[["id"]]),
    stream("legacy", {"id": {"type": "integer"}}),
]  # fmt: skip


def test_catalog_identical_up_to_key_order(session: SessionBuilder) -> None:
    control = session.load("1.0", "discover", [catalog(CATALOG_STREAMS)])
    target = session.load("2.0", "discover", [catalog([orjson.loads(reordered(s)) for s in CATALOG_STREAMS])])
    result = compare_catalogs(session.connect(), control, target)
    assert result.passed and result.findings == []
    assert result.control_streams == result.target_streams == ["legacy", "orders", "users"]


def test_catalog_planted_differences(session: SessionBuilder) -> None:
    streams = copy(CATALOG_STREAMS)
    users, orders = streams[0], streams[1]
    props = users["json_schema"]["properties"]
    del props["email"]
    props["age"]["type"] = "string"
    props["name"]["type"] = ["null", "string"]
    props["address"]["properties"]["zip"] = {"type": "string"}
    users["supported_sync_modes"] = ["full_refresh"]
    users["default_cursor_field"] = ["modified_at"]
    orders["source_defined_primary_key"] = [["id"], ["line"]]
    streams = [users, orders, stream("invoices", {"id": {"type": "integer"}})]  # legacy removed
    control = session.load("1.0", "discover", [catalog(CATALOG_STREAMS)])
    target = session.load("2.0", "discover", [catalog(streams)])
    result = compare_catalogs(session.connect(), control, target)
    assert result.streams_added == ["invoices"] and result.streams_removed == ["legacy"]
    got = {(f.kind, f.stream, f.path, f.severity.value) for f in result.findings}
    p = "$.json_schema.properties"
    assert got == {
        ("stream_removed", "legacy", None, B),
        ("stream_added", "invoices", None, C),
        ("property_removed", "users", f"{p}.email", B),
        ("property_type_changed", "users", f"{p}.age.type", B),
        ("property_nullability_added", "users", f"{p}.name.type", C),
        ("property_added", "users", f"{p}.address.properties.zip", C),
        ("sync_modes_removed", "users", "$.supported_sync_modes", B),
        ("cursor_field_changed", "users", "$.default_cursor_field", B),
        ("primary_key_changed", "orders", "$.source_defined_primary_key", B),
    }
    pk = result.of_kind("primary_key_changed")[0]
    assert (pk.control, pk.target) == ([["id"]], [["id"], ["line"]])
    assert (
        result.of_kind("sync_modes_removed")[0].message == "stream `users`: sync modes no longer supported: incremental"
    )
    assert not result.passed


def test_catalog_issue_example_additional_properties_listed(tmp_path: Path) -> None:
    new = copy(CATALOG_STREAMS)
    new[0]["json_schema"]["additionalProperties"] = True
    new[1]["json_schema"]["properties"]["id"]["description"] = "The order id."
    result = diff_catalog(tmp_path, CATALOG_STREAMS, new)
    assert {(f.kind, f.stream, f.path, f.severity.value) for f in result.findings} == {
        ("equivalent_change", "users", "$.json_schema.additionalProperties", I),
        ("cosmetic_change", "orders", "$.json_schema.properties.id.description", I),
    }
    assert result.passed and not result.has_differences  # strict mode fails on CHANGE, not on these


def one_stream(properties: dict[str, Any] | None = None, **extra: Any) -> list[dict[str, Any]]:
    props = {"id": {"type": "integer"}} if properties is None else properties
    return [stream("users", props, **extra)]


S = "$.json_schema.properties"
CATALOG_RULES: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]], set[tuple[str, str, str | None]]]] = {
    "property removed": (one_stream(), one_stream({}), {("property_removed", B, f"{S}.id")}),
    "property added": (one_stream({}), one_stream(), {("property_added", C, f"{S}.id")}),
    "type changed": (
        one_stream(), one_stream({"id": {"type": "string"}}), {("property_type_changed", B, f"{S}.id.type")}),
    "type widened": (one_stream(), one_stream({"id": {"type": ["integer", "string"]}}),
                     {("property_type_changed", B, f"{S}.id.type")}),
    "type set where any was emitted": (
        one_stream({"id": {}}), one_stream(), {("property_type_changed", B, f"{S}.id.type")}),
    "nullability removed": (one_stream({"id": {"type": ["integer", "null"]}}), one_stream(),
                            {("property_nullability_removed", B, f"{S}.id.type")}),
    "nullability added": (one_stream(), one_stream({"id": {"type": ["null", "integer"]}}),
                          {("property_nullability_added", C, f"{S}.id.type")}),
    "nested property type changed": (
        one_stream({"a": {"type": "array", "items": {"type": "integer"}}}),
        one_stream({"a": {"type": "array", "items": {"type": "number"}}}),
        {("property_type_changed", B, f"{S}.a.items.type")}),
    "primary key changed": (
        one_stream(source_defined_primary_key=[["id"]]), one_stream(source_defined_primary_key=[["uid"]]),
        {("primary_key_changed", B, "$.source_defined_primary_key")}),
    "cursor changed": (one_stream(default_cursor_field=["a"]), one_stream(default_cursor_field=["b"]),
                       {("cursor_field_changed", B, "$.default_cursor_field")}),
    "source defined cursor changed": (one_stream(source_defined_cursor=True), one_stream(source_defined_cursor=False),
                                      {("source_defined_cursor_changed", B, "$.source_defined_cursor")}),
    "sync mode removed": (one_stream(), one_stream(supported_sync_modes=["full_refresh"]),
                          {("sync_modes_removed", B, "$.supported_sync_modes")}),
    "sync mode added": (one_stream(supported_sync_modes=["full_refresh"]), one_stream(),
                        {("sync_modes_added", C, "$.supported_sync_modes")}),
    "sync modes reordered": (one_stream(), one_stream(supported_sync_modes=["incremental", "full_refresh"]), set()),
    "additionalProperties true to false": (
        [stream("users", {}, json_schema={"type": "object", "additionalProperties": True})],
        [stream("users", {}, json_schema={"type": "object", "additionalProperties": False})],
        {("additional_properties_restricted", B, "$.json_schema.additionalProperties")}),
    "additionalProperties false to true": (
        [stream("users", {}, json_schema={"type": "object", "additionalProperties": False})],
        [stream("users", {}, json_schema={"type": "object", "additionalProperties": True})],
        {("additional_properties_allowed", C, "$.json_schema.additionalProperties")}),
    "required relaxed": (
        [stream("users", {}, json_schema={"type": "object", "required": ["id"], "properties": {"id": {}}})],
        [stream("users", {}, json_schema={"type": "object", "properties": {"id": {}}})],
        {("property_no_longer_required", C, f"{S}.id")}),
    "cosmetic": (one_stream({"id": {"type": "integer", "title": "Id"}}), one_stream({"id": {"type": "integer"}}),
                 {("cosmetic_change", I, f"{S}.id.title")}),
    "resumability": (one_stream(is_resumable=True), one_stream(is_resumable=False),
                     {("resumability_changed", C, "$.is_resumable")}),
    "an unknown stream key": (one_stream(x_sharded=True), one_stream(x_sharded=False),
                              {("unclassified_change", C, "$.x_sharded")}),
    "an unknown schema attribute": (one_stream({"id": {"type": "integer", "airbyte_type": "integer"}}), one_stream(),
                                    {("unclassified_change", C, f"{S}.id.airbyte_type")}),
}  # fmt: skip


@pytest.mark.parametrize(("control", "target", "expected"), CATALOG_RULES.values(), ids=CATALOG_RULES.keys())
def test_catalog_rule(
    tmp_path: Path,
    control: list[dict[str, Any]],
    target: list[dict[str, Any]],
    expected: set[tuple[str, str, str | None]],
) -> None:
    result = diff_catalog(tmp_path, control, target)
    assert found(result) == expected
    assert all(f.stream == "users" for f in result.findings)
    assert result.passed is not any(severity == B for _, severity, _ in expected)


def test_catalog_nullability_removed_message(tmp_path: Path) -> None:
    result = diff_catalog(
        tmp_path, one_stream({"age": {"type": ["integer", "null"]}}), one_stream({"age": {"type": "integer"}})
    )
    (finding,) = result.findings
    assert (
        finding.message
        == "stream `users`: `$.json_schema.properties.age.type` narrowed from [integer, null] to [integer]"
    )
    assert (finding.stream, finding.control, finding.target) == ("users", ["integer", "null"], ["integer"])


def test_catalog_type_change_messages(tmp_path: Path) -> None:
    control = one_stream({"a": {}, "b": {"type": "integer"}, "c": {"type": "integer"}})
    target = one_stream({"a": {"type": "string"}, "b": {"type": ["integer", "string"]}, "c": {"type": "string"}})
    result = diff_catalog(tmp_path, control, target)
    assert sorted(f.message for f in result.findings) == [
        f"stream `users`: `{S}.a.type` narrowed from [any] to [string]",
        f"stream `users`: `{S}.b.type` widened from [integer] to [integer, string]",
        f"stream `users`: `{S}.c.type` changed from [integer] to [string]",
    ]


def test_catalog_streams_matched_by_name_and_namespace(tmp_path: Path) -> None:
    control = [stream("users", {}, namespace="a"), stream("users", {})]
    target = [stream("users", {}, namespace="b"), stream("users", {"id": {"type": "integer"}})]
    result = diff_catalog(tmp_path, control, target)
    assert (result.control_streams, result.target_streams) == (["a.users", "users"], ["b.users", "users"])
    assert {(f.kind, f.stream) for f in result.findings} == {
        ("stream_removed", "a.users"), ("stream_added", "b.users"), ("property_added", "users")
    }  # fmt: skip


def test_catalog_diffed_in_batches_finds_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Streams are diffed a batch at a time (memory); one stream per batch changes nothing."""
    new = copy(CATALOG_STREAMS)
    new[0]["json_schema"]["properties"]["age"]["type"] = "string"
    new[1]["json_schema"]["required"] = ["id"]
    new[2]["supported_sync_modes"] = ["full_refresh"]
    whole = diff_catalog(tmp_path / "whole", CATALOG_STREAMS, new)
    monkeypatch.setattr(document_diff, "_BATCH_BYTES", 1)
    batched = diff_catalog(tmp_path / "batched", CATALOG_STREAMS, new)
    assert batched.findings == whole.findings
    assert {f.stream for f in whole.findings} == {"users", "orders", "legacy"}
