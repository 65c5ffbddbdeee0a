"""Spec and catalog comparisons: every difference between the two documents is found and classified.

Executions are planted in small duck.db files the way a run builds them (see tests/test_compare.py).
"""

from __future__ import annotations

from typing import Any

import orjson

from live_tests.compare import Severity, compare_catalogs, compare_spec
from tests.test_compare import SessionBuilder, catalog, kinds, reordered, session, spec

__all__ = ["session"]  # the fixture, imported for pytest


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
    new = orjson.loads(orjson.dumps(SPEC))
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
    got = {(f.kind, f.path, f.severity.value) for f in result.findings}
    assert got == {
        ("secret_unmarked", "api_key", "breaking"),
        ("property_attribute_changed", "api_key", "info"),
        ("property_removed", "start_date", "breaking"),
        ("required_property_added", "account_id", "breaking"),
        ("property_added", "timeout", "change"),
        ("enum_values_removed", "region", "breaking"),
        ("property_type_narrowed", "limit", "breaking"),
        ("property_type_widened", "options.page_size", "change"),
        ("property_no_longer_required", "options.page_size", "change"),
        ("secret_marked", "options.verbose", "change"),
    }
    assert result.of_kind("enum_values_removed")[0].message == "`region` no longer accepts 'eu'"
    assert result.findings[0].severity is Severity.BREAKING  # breaking first
    assert "Breaking differences (5):" in result.summary


def test_spec_property_becomes_required_and_missing_spec(session: SessionBuilder) -> None:
    new = orjson.loads(orjson.dumps(SPEC))
    new["required"].append("region")
    control = session.load("1.0", "spec", [spec(SPEC)])
    target = session.load("2.0", "spec", [spec(new)])
    nothing = session.load("3.0", "spec", [{"type": "LOG", "log": {"level": "INFO", "message": "hi"}}])
    con = session.connect()
    result = compare_spec(con, control, target)
    assert kinds(result) == [("property_became_required", None, "region")]
    assert not result.passed
    missing = compare_spec(con, control, nothing)
    assert kinds(missing) == [("spec_missing", None, None)] and not missing.passed


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
    streams = orjson.loads(orjson.dumps(CATALOG_STREAMS))
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
    assert got == {
        ("stream_removed", "legacy", None, "breaking"),
        ("stream_added", "invoices", None, "change"),
        ("property_removed", "users", "email", "breaking"),
        ("property_type_changed", "users", "age", "breaking"),
        ("property_nullability_changed", "users", "name", "change"),
        ("property_added", "users", "address.zip", "change"),
        ("sync_modes_removed", "users", "supported_sync_modes", "breaking"),
        ("cursor_field_changed", "users", "default_cursor_field", "breaking"),
        ("primary_key_changed", "orders", "source_defined_primary_key", "breaking"),
    }
    pk = result.of_kind("primary_key_changed")[0]
    assert (pk.control, pk.target) == ([["id"]], [["id"], ["line"]])
    assert not result.passed
