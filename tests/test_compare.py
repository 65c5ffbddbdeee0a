"""Comparison stage: each comparison finds exactly the differences planted in small duck.db files.

The files are built the way a run builds them: Airbyte message lines -> MessageWriter ->
SessionDatabase. Some lines are written raw to control the key order exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from live_tests.compare import (
    Comparison,
    FieldProfile,
    IgnoredPath,
    Severity,
    StreamState,
    compare_inferred_schemas,
    compare_invalid_lines,
    compare_records,
    compare_states,
    compare_traces,
    http_traffic,
    infer_schemas,
    message_counts,
    records_per_stream,
)
from live_tests.models import Command, ConnectorImage, ConnectorInputs, ExecutionInputs, ExecutionKey, ExecutionResult
from live_tests.store.message_writer import MessageWriter
from live_tests.store.session_db import SessionDatabase

CONNECTOR = "source-test"
Message = dict[str, Any] | str  # a str is written as the raw line (to control key order exactly)


def record(stream: str, data: dict[str, Any] | str, emitted_at: int = 1) -> Message:
    if isinstance(data, str):
        return f'{{"type":"RECORD","record":{{"stream":"{stream}","emitted_at":{emitted_at},"data":{data}}}}}'
    return {"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": emitted_at}}


def stream_state(stream: str, value: Any) -> Message:
    return {
        "type": "STATE",
        "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": stream}, "stream_state": value}},
    }


def global_state(value: Any) -> Message:
    return {"type": "STATE", "state": {"type": "GLOBAL", "global": value}}


def status(stream: str, value: str) -> Message:
    return {
        "type": "TRACE",
        "trace": {
            "type": "STREAM_STATUS",
            "emitted_at": 1,
            "stream_status": {"stream_descriptor": {"name": stream}, "status": value},
        },
    }


def error(message: str, failure_type: str = "system_error", stream: str | None = None) -> Message:
    err: dict[str, Any] = {"message": message, "failure_type": failure_type}
    if stream:
        err["stream_descriptor"] = {"name": stream}
    return {"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": 1, "error": err}}


def spec(connection_specification: dict[str, Any] | str, **extra: Any) -> Message:
    if isinstance(connection_specification, str):
        extras = "".join(f"{orjson.dumps(k).decode()}:{orjson.dumps(v).decode()}," for k, v in extra.items())
        return f'{{"type":"SPEC","spec":{{{extras}"connectionSpecification":{connection_specification}}}}}'
    return {"type": "SPEC", "spec": {"connectionSpecification": connection_specification, **extra}}


def catalog(streams: list[dict[str, Any]]) -> Message:
    return {"type": "CATALOG", "catalog": {"streams": streams}}


class SessionBuilder:
    """Loads executions into one duck.db, then hands out a plain DuckDB connection to it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.db_path = tmp_path / "duck.db"
        self.db = SessionDatabase(self.db_path)

    def load(self, version: str, command: str, messages: list[Message]) -> ExecutionKey:
        inputs = ExecutionInputs(
            connector=ConnectorImage(f"airbyte/{CONNECTOR}", version),
            command=Command(command),
            inputs=ConnectorInputs(),
            artifacts_dir=self.tmp_path / "artifacts" / command / version,
            run_id="test",
        )
        writer = MessageWriter(inputs.artifacts_dir)
        writer.feed(b"".join((m.encode() if isinstance(m, str) else orjson.dumps(m)) + b"\n" for m in messages))
        writer.close()
        self.db.load(ExecutionResult(inputs=inputs, exit_code=0, longest_line_bytes=writer.longest_line))
        return inputs.key

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        self.db.close()
        return duckdb.connect(str(self.db_path), read_only=read_only)


# ---------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def session(tmp_path: Path) -> SessionBuilder:
    return SessionBuilder(tmp_path)


def kinds(result: Comparison) -> list[tuple[str, str | None, str | None]]:
    return sorted((f.kind, f.stream, f.path) for f in result.findings)


def assert_no_scratch_tables(con: duckdb.DuckDBPyConnection) -> None:
    left = con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'lt_cmp_%'").fetchall()
    assert left == []


USERS = [
    {"id": i, "name": f"user{i}", "age": 20 + i, "address": {"city": f"c{i}", "zip": f"{i:05}"}, "tags": ["a", "b"]}
    for i in range(1, 11)
]


def reordered(data: dict[str, Any]) -> str:
    """The same record as JSON text with keys (top level and nested) in reverse order."""

    def rev(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: rev(value[k]) for k in reversed(list(value))}
        return value

    return orjson.dumps(rev(data)).decode()


# ---------------------------------------------------------------------------------------------
# Records


def test_records_identical_despite_order_key_order_and_emitted_at(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", [record("users", u, emitted_at=1) for u in USERS])
    target = session.load("2.0", "read", [record("users", reordered(u), emitted_at=999) for u in reversed(USERS)])
    con = session.connect()
    result = compare_records(con, control, target, {"users": [["id"]]})
    assert result.passed and not result.has_differences
    assert result.findings == []
    users = result.streams["users"]
    assert (users.control_count, users.target_count, users.missing_in_target, users.extra_in_target) == (10, 10, 0, 0)
    assert users.changed == 0 and users.examples == []
    assert result.summary[0] == "Records comparison: PASSED"
    assert_no_scratch_tables(con)


def test_records_keyed_planted_differences(session: SessionBuilder, tmp_path: Path) -> None:
    target_users: list[Message] = []
    for u in USERS:
        i = u["id"]
        if i == 3:
            continue  # missing in target
        changed = orjson.loads(orjson.dumps(u))
        if i == 5:
            changed["name"] = "renamed"
        elif i == 6:
            changed["address"]["city"] = "moved"  # nested change
        elif i == 7:
            changed["nickname"] = "n7"  # added field only
        elif i == 8:
            del changed["age"]  # removed field
        elif i == 2:
            changed["tags"] = ["a", "c"]  # array element change
        elif i == 4:
            changed["address"] = None  # object -> null: one difference, not one per nested field
        target_users.append(record("users", reordered(changed) if i in (9, 10) else changed))
    target_users.append(record("users", {"id": 11, "name": "new"}))
    control = session.load("1.0", "read", [record("users", u) for u in USERS])
    target = session.load("2.0", "read", target_users)
    con = session.connect()
    result = compare_records(con, control, target, {"users": [["id"]]}, max_examples=50)

    users = result.streams["users"]
    assert (users.control_count, users.target_count) == (10, 10)
    assert (users.missing_in_target, users.extra_in_target) == (1, 1)
    assert users.changed == 6  # ids 2, 4, 5, 6, 7, 8 - not 9, 10 (key order only)
    assert users.changed_values == 5  # all but 7 (only a field added)
    assert {(f.path, f.change, f.records) for f in users.field_diffs} == {
        ("$.name", "changed", 1),
        ("$.address.city", "changed", 1),
        ("$.address", "changed", 1),
        ("$.nickname", "added", 1),
        ("$.age", "removed", 1),
        ("$.tags[*]", "changed", 1),
    }
    assert users.top_level_field_diffs == {"address": 2, "age": 1, "name": 1, "nickname": 1, "tags": 1}
    assert not result.passed
    assert kinds(result) == [
        ("extra_primary_keys", "users", None),
        ("missing_primary_keys", "users", None),
        ("record_field_added", "users", "$.nickname"),
        ("record_field_changed", "users", "$.address"),
        ("record_field_changed", "users", "$.address.city"),
        ("record_field_changed", "users", "$.name"),
        ("record_field_changed", "users", "$.tags[*]"),
        ("record_field_removed", "users", "$.age"),
    ]
    missing = result.of_kind("missing_primary_keys")[0]
    assert missing.severity is Severity.BREAKING and missing.count == 1 and missing.control == [[3]]
    assert result.of_kind("extra_primary_keys")[0].target == [[11]]

    by_key = {tuple(e["key"]): e for e in users.examples}
    assert by_key[(6,)]["differences"] == [
        {"path": "$.address.city", "change": "changed", "control": "c6", "target": "moved"}
    ]
    assert by_key[(2,)]["differences"] == [{"path": "$.tags[1]", "change": "changed", "control": "b", "target": "c"}]
    assert by_key[(4,)]["differences"] == [
        {"path": "$.address", "change": "changed", "control": {"city": "c4", "zip": "00004"}, "target": None}
    ]
    assert by_key[(8,)]["differences"] == [{"path": "$.age", "change": "removed", "control": 28, "target": None}]
    assert by_key[(3,)]["kind"] == "missing_in_target" and by_key[(3,)]["target"] is None
    assert by_key[(3,)]["control"] == USERS[2]
    assert by_key[(11,)]["kind"] == "extra_in_target"
    assert (9,) not in by_key and (10,) not in by_key

    files = result.write_diff_files(tmp_path / "diff")
    assert sorted(p.name for p in files) == ["findings.json", "records_users.jsonl", "summary.txt"]
    summary = (tmp_path / "diff" / "summary.txt").read_text()
    assert "Records comparison: FAILED" in summary
    assert "`users`: 1 control primary keys not in target (e.g. [3])" in summary
    assert "$.address.city (changed): 1" in summary
    lines = [orjson.loads(line) for line in (tmp_path / "diff" / "records_users.jsonl").read_bytes().splitlines()]
    assert len(lines) == 8  # 6 changed + 1 missing + 1 extra
    assert {line["kind"] for line in lines} == {"changed", "missing_in_target", "extra_in_target"}
    assert all(line["stream"] == "users" for line in lines)
    assert_no_scratch_tables(con)


def test_records_deep_nesting_and_array_lengths(session: SessionBuilder) -> None:
    def doc(e: int, tags: list[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"id": 1, "a": {"b": {"c": 1, "d": [{"e": e, "f": [1, 2]}], **(extra or {})}}, "tags": tags}

    control = session.load("1.0", "read", [record("s", doc(1, ["x", "y"]))])
    target = session.load("2.0", "read", [record("s", reordered(doc(2, ["x", "y", "z"], {"g": {}})))])
    result = compare_records(session.connect(), control, target, {"s": [["id"]]})
    (example,) = result.streams["s"].examples
    assert example["differences"] == [
        {"path": "$.a.b.d[0].e", "change": "changed", "control": 1, "target": 2},
        {"path": "$.a.b.g", "change": "added", "control": None, "target": {}},
        {"path": "$.tags[2]", "change": "added", "control": None, "target": "z"},
    ]
    assert {(f.path, f.change) for f in result.streams["s"].field_diffs} == {
        ("$.a.b.d[*].e", "changed"), ("$.a.b.g", "added"), ("$.tags[*]", "added"),
    }  # fmt: skip
    assert result.streams["s"].top_level_field_diffs == {"a": 1, "tags": 1}


def test_records_max_examples_limits_each_kind(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", [record("s", {"id": i, "v": 0}) for i in range(100)])
    target = session.load("2.0", "read", [record("s", {"id": i, "v": 1}) for i in range(100)])
    result = compare_records(session.connect(), control, target, {"s": [["id"]]}, max_examples=5)
    s = result.streams["s"]
    assert s.changed == 100 and s.field_diffs[0].records == 100
    assert [e["key"] for e in s.examples] == [[0], [1], [2], [3], [4]]


def test_records_composite_nested_primary_key(session: SessionBuilder) -> None:
    def event(account: str, date: str, amount: int) -> dict[str, Any]:
        return {"account": {"id": account, "region": "eu"}, "date": date, "amount": amount}

    control = session.load(
        "1.0",
        "read",
        [record("events", event("a1", "d1", 1)), record("events", event("a1", "d2", 2)),
         record("events", event("a2", "d1", 3))],
    )  # fmt: skip
    target = session.load(
        "2.0",
        "read",
        [record("events", event("a1", "d1", 10)), record("events", event("a2", "d1", 3)),
         record("events", event("a2", "d2", 4))],
    )  # fmt: skip
    result = compare_records(session.connect(), control, target, {"events": [["account", "id"], ["date"]]})
    events = result.streams["events"]
    assert events.primary_key == [["account", "id"], ["date"]]
    assert (events.missing_in_target, events.extra_in_target, events.changed) == (1, 1, 1)
    assert result.of_kind("missing_primary_keys")[0].control == [["a1", "d2"]]
    assert result.of_kind("extra_primary_keys")[0].target == [["a2", "d2"]]
    changed = [e for e in events.examples if e["kind"] == "changed"]
    assert changed[0]["key"] == ["a1", "d1"]
    assert changed[0]["differences"] == [{"path": "$.amount", "change": "changed", "control": 1, "target": 10}]


def test_records_duplicate_keys_pair_in_order(session: SessionBuilder) -> None:
    control = session.load(
        "1.0", "read", [record("s", {"id": 1, "v": "a"}), record("s", {"id": 1, "v": "b"}), record("s", {"id": 2})]
    )
    target = session.load(
        "2.0",
        "read",
        [record("s", {"id": 1, "v": "a"}), record("s", {"id": 1, "v": "B"}), record("s", {"id": 1, "v": "c"}),
         record("s", {"id": 2})],
    )  # fmt: skip
    result = compare_records(session.connect(), control, target, {"s": [["id"]]})
    s = result.streams["s"]
    assert (s.duplicate_keys_control, s.duplicate_keys_target) == (1, 1)
    assert (s.changed, s.missing_in_target, s.extra_in_target) == (1, 0, 1)
    assert [(f.path, f.records) for f in s.field_diffs] == [("$.v", 1)]


def test_records_multiset_with_duplicates(session: SessionBuilder) -> None:
    a, b = {"x": 1, "y": {"p": 1, "q": 2}}, {"x": 2}
    c = {"x": 3, "y": {"p": 5, "q": 6}}
    control = session.load("1.0", "read", [record("logs", r) for r in (a, a, b, c)])
    # One `a` less, one `b` more, `c` with top-level and nested keys reordered (equal), a new `d`.
    target = session.load(
        "2.0", "read", [record("logs", a), record("logs", b), record("logs", b), record("logs", reordered(c)),
                        record("logs", {"x": 4})]
    )  # fmt: skip
    result = compare_records(session.connect(), control, target)
    logs = result.streams["logs"]
    assert logs.primary_key is None and not logs.keyed
    assert (logs.control_count, logs.target_count) == (4, 5)
    assert (logs.missing_in_target, logs.extra_in_target, logs.changed) == (1, 2, 0)
    missing = result.of_kind("records_missing_in_target")[0]
    assert missing.severity is Severity.BREAKING and missing.count == 1 and missing.control == [a]
    extra = result.of_kind("records_extra_in_target")[0]
    assert extra.count == 2 and sorted(orjson.dumps(r).decode() for r in extra.target) == sorted(
        [orjson.dumps(b).decode(), orjson.dumps({"x": 4}).decode()]
    )
    assert sorted(e["kind"] for e in logs.examples) == ["extra_in_target", "extra_in_target", "missing_in_target"]


def test_records_multiset_identical_when_only_key_order_differs(session: SessionBuilder) -> None:
    rows = [{"a": i % 3, "b": {"c": [1, {"d": i % 2, "e": None}]}} for i in range(30)]
    control = session.load("1.0", "read", [record("m", r) for r in rows])
    target = session.load("2.0", "read", [record("m", reordered(r)) for r in reversed(rows)])
    result = compare_records(session.connect(), control, target)
    assert result.passed and result.findings == []
    assert result.streams["m"].missing_in_target == 0


def test_records_multiset_null_is_not_absent_and_empty_containers_differ(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", [record("m", r) for r in ({"a": None, "b": 1}, {"o": {}}, {"n": 1})])
    target = session.load("2.0", "read", [record("m", r) for r in ({"b": 1}, {"o": []}, {"n": 1.0})])
    result = compare_records(session.connect(), control, target)
    m = result.streams["m"]
    # {"a": null, "b": 1} vs {"b": 1} pair up to null vs absent; {} vs [] and 1 vs 1.0 do not pair.
    assert (m.missing_in_target, m.extra_in_target, m.changed, m.changed_values) == (2, 2, 1, 0)
    assert [(f.path, f.change, f.records) for f in m.field_diffs] == [("$.a", "null_to_absent", 1)]


def test_records_ignore_fields(session: SessionBuilder) -> None:
    control = session.load(
        "1.0",
        "read",
        [record("k", {"id": 1, "v": 1, "updated_at": "t1", "meta": {"synced": "t1", "src": "x"},
                      "items": [{"n": 1, "ts": 1}]}),
         record("nokey", {"v": 1, "updated_at": "t1", "meta": {"synced": "t1"}})],
    )  # fmt: skip
    target = session.load(
        "2.0",
        "read",
        [record("k", {"id": 1, "v": 1, "updated_at": "t2", "meta": {"synced": "t2", "src": "x"},
                      "items": [{"n": 1, "ts": 2}]}),
         record("nokey", {"v": 1, "updated_at": "t2", "meta": {"synced": "t2"}})],
    )  # fmt: skip
    con = session.connect()
    strict = compare_records(con, control, target, {"k": [["id"]]})
    assert {f.path for f in strict.streams["k"].field_diffs} == {"$.updated_at", "$.meta.synced", "$.items[*].ts"}
    assert strict.streams["nokey"].missing_in_target == 1
    ignored = [IgnoredPath.parse(text) for text in ("*:$.updated_at", "*:$.meta.synced", "k:$.items[*].ts")]
    relaxed = compare_records(con, control, target, {"k": [["id"]]}, ignored=ignored)
    assert relaxed.passed and relaxed.findings == []
    assert relaxed.ignored == ignored
    assert (relaxed.streams["k"].changed, relaxed.streams["nokey"].missing_in_target) == (0, 0)


def test_records_streams_on_one_side_only(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", [record("old", {"id": 1}), record("both", {"id": 1})])
    target = session.load("2.0", "read", [record("new", {"id": 1}), record("both", {"id": 1})])
    result = compare_records(session.connect(), control, target, {"old": [["id"]], "new": [["id"]]})
    assert kinds(result) == [("stream_extra_in_target", "new", None), ("stream_missing_in_target", "old", None)]
    assert result.streams["old"].missing_in_target == 1 and result.streams["new"].extra_in_target == 1
    assert not result.passed


def test_records_read_only_connection(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", [record("s", {"id": 1, "v": 1})])
    target = session.load("2.0", "read", [record("s", {"id": 1, "v": 2})])
    result = compare_records(session.connect(read_only=True), control, target, {"s": ["id"]})
    assert result.streams["s"].changed == 1  # a bare string path is a top-level field


# ---------------------------------------------------------------------------------------------
# Inferred schemas


def test_inferred_schema_differences(session: SessionBuilder) -> None:
    control = session.load(
        "1.0", "read",
        [record("u", {"id": 1, "name": "a", "score": 1.5, "flag": True}),
         record("u", {"id": 2, "name": "b", "score": 2, "flag": False})],
    )  # fmt: skip
    target = session.load(
        "2.0", "read",
        [record("u", {"id": 1, "name": None, "score": "1.5", "extra": 1}),
         record("u", {"id": 2, "name": "b", "score": "2", "extra": {"x": 1}})],
    )  # fmt: skip
    con = session.connect()
    result = compare_inferred_schemas(con, control, target)
    assert result.control_fields["u"]["score"].types == ["integer", "number"]
    assert result.target_fields["u"]["extra"].types == ["integer", "object"]
    assert result.target_fields["u"]["name"].nulls == 1 and result.target_fields["u"]["name"].nullable
    got = {(f.kind, f.path, f.severity.value) for f in result.findings}
    assert got == {
        ("field_removed", "$.flag", "breaking"),
        ("field_added", "$.extra", "change"),
        ("field_type_changed", "$.score", "breaking"),
        ("field_nullability_changed", "$.name", "change"),
    }
    assert infer_schemas(con, control)["u"]["flag"] == FieldProfile(["boolean"], 2, 2, 0)


def test_inferred_schema_identical_and_absent_field_is_nullable(session: SessionBuilder) -> None:
    rows = [{"id": 1, "opt": "x"}, {"id": 2}]
    control = session.load("1.0", "read", [record("u", r) for r in rows])
    target = session.load("2.0", "read", [record("u", reordered(r)) for r in rows])
    result = compare_inferred_schemas(session.connect(), control, target)
    assert result.passed and result.findings == []
    assert result.control_fields["u"]["opt"] == FieldProfile(["string"], 2, 1, 0)
    assert result.control_fields["u"]["opt"].nullable and not result.control_fields["u"]["id"].nullable


# ---------------------------------------------------------------------------------------------
# States


def test_states_planted_differences(session: SessionBuilder) -> None:
    control = session.load(
        "1.0", "read-with-state",
        [stream_state("users", {"cursor": "2024-01-01", "page": 1}),
         stream_state("users", {"cursor": "2024-01-02", "page": 2}),
         stream_state("orders", {"cursor": 5})],
    )  # fmt: skip
    target = session.load(
        "2.0", "read-with-state",
        [stream_state("users", {"cursor": "2024-01-01", "page": 1}), stream_state("users", {"page": 1}),
         # The final users state has the control's value with keys in another order: equal.
         '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"users"},'
         '"stream_state":{"page":2,"cursor":"2024-01-02"}}}}',
         stream_state("orders", {"cursor": 6}), global_state({"shared_state": {"lsn": 1}})],
    )  # fmt: skip
    result = compare_states(session.connect(), control, target)
    assert (result.control_count, result.target_count) == (3, 5)
    assert result.control_states["users"] == StreamState("STREAM", 2, {"cursor": "2024-01-02", "page": 2})
    assert result.target_states["(global)"].final == {"shared_state": {"lsn": 1}}
    got = {(f.kind, f.stream, f.severity.value) for f in result.findings}
    assert got == {
        ("state_count_changed", None, "change"),
        ("stream_state_count_changed", "users", "info"),
        ("final_state_changed", "orders", "breaking"),
        ("state_added_in_target", "(global)", "change"),
    }
    changed = result.of_kind("final_state_changed")[0]
    assert (changed.control, changed.target) == ({"cursor": 5}, {"cursor": 6})
    # A stream read in full refresh is not resumed from its state: a changed final state is a change.
    full_refresh = compare_states(session.connect(), control, target, incremental_streams=["users"])
    assert full_refresh.of_kind("final_state_changed")[0].severity is Severity.CHANGE
    incremental = compare_states(session.connect(), control, target, incremental_streams=["orders"])
    assert incremental.of_kind("final_state_changed")[0].severity is Severity.BREAKING


def test_states_identical_and_missing(session: SessionBuilder) -> None:
    states = [stream_state("users", {"a": 1, "b": {"c": 2, "d": 3}})]
    control = session.load("1.0", "read-with-state", states)
    target = session.load(
        "2.0", "read-with-state",
        ['{"type":"STATE","state":{"stream":{"stream_state":{"b":{"d":3,"c":2},"a":1},'
         '"stream_descriptor":{"name":"users"}},"type":"STREAM"}}'],
    )  # fmt: skip
    empty = session.load("3.0", "read-with-state", [])
    con = session.connect()
    assert compare_states(con, control, target).findings == []
    missing = compare_states(con, control, empty)
    assert {f.kind for f in missing.findings} == {"state_count_changed", "state_missing_in_target"}
    assert not missing.passed


# ---------------------------------------------------------------------------------------------
# Traces


def test_traces_statuses_and_errors(session: SessionBuilder) -> None:
    control = session.load(
        "1.0", "read",
        [status("users", "STARTED"), status("users", "RUNNING"), status("users", "RUNNING"),
         status("users", "COMPLETE"), status("orders", "STARTED"), status("orders", "COMPLETE"),
         error("rate limited", "transient_error", "orders"), error("rate limited", "transient_error", "orders")],
    )  # fmt: skip
    target = session.load(
        "2.0", "read",
        [status("users", "STARTED"), status("users", "RUNNING"), status("users", "COMPLETE"),
         status("orders", "STARTED"), status("orders", "RUNNING"), status("orders", "INCOMPLETE"),
         status("x", "RUNNING"), status("x", "COMPLETE"),
         error("rate limited", "transient_error", "orders"), error("boom")],
    )  # fmt: skip
    result = compare_traces(session.connect(), control, target)
    assert result.control_statuses["users"] == result.target_statuses["users"] == ["STARTED", "RUNNING", "COMPLETE"]
    assert result.target_statuses["orders"] == ["STARTED", "RUNNING", "INCOMPLETE"]
    assert (len(result.control_errors), len(result.target_errors)) == (2, 2)
    got = {(f.kind, f.stream, f.severity.value) for f in result.findings}
    assert got == {
        ("stream_status_sequence_changed", "orders", "breaking"),
        ("stream_status_sequence_invalid", "x", "breaking"),
        ("stream_statuses_added", "x", "change"),
        ("error_trace_added", None, "breaking"),
        ("error_trace_resolved", "orders", "change"),
    }
    assert result.of_kind("error_trace_added")[0].target == "boom"
    assert result.of_kind("error_trace_resolved")[0].count == 1  # two in control, one in target


def test_traces_identical(session: SessionBuilder) -> None:
    messages = [status("users", "STARTED"), status("users", "COMPLETE"), error("e", stream="users")]
    control = session.load("1.0", "read", messages)
    target = session.load("2.0", "read", messages)
    result = compare_traces(session.connect(), control, target)
    assert result.passed and result.findings == []


# ---------------------------------------------------------------------------------------------
# Counts and traffic


def test_message_counts_and_records_per_stream(session: SessionBuilder) -> None:
    key = session.load(
        "1.0", "read",
        [record("a", {"id": 1}), record("a", {"id": 2}), record("b", {"id": 1}), stream_state("a", {}),
         status("a", "STARTED"), {"type": "LOG", "log": {"level": "INFO", "message": "x"}}, "not json"],
    )  # fmt: skip
    con = session.connect()
    counts = message_counts(con, key)
    assert counts == {
        "records": 3, "states": 1, "logs": 1, "traces": 1, "catalog": 0, "spec": 0,
        "connection_status": 0, "controls": 0, "invalid_lines": 1,
    }  # fmt: skip
    assert records_per_stream(con, key) == {"a": 2, "b": 1}
    assert message_counts(con, ExecutionKey("source-test", "9.9", "read"))["records"] == 0
    assert http_traffic(con, "source-test", "1.0") is None  # no http_flows table: not captured


def test_http_traffic_from_http_flows(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "d.db"))
    con.execute(
        """CREATE TABLE http_flows (connector VARCHAR, version VARCHAR, command VARCHAR, method VARCHAR,
           url VARCHAR, host VARCHAR, path VARCHAR, status INTEGER, request_size BIGINT, response_size BIGINT,
           duration_ms DOUBLE, cache_hit BOOLEAN)"""
    )
    con.execute(
        """INSERT INTO http_flows VALUES
           ('src', '1.0', 'read', 'GET', 'u', 'api.x', '/users', 200, 10, 100, 5, false),
           ('src', '1.0', 'read', 'GET', 'u', 'api.x', '/users', 200, 10, 100, 5, true),
           ('src', '1.0', 'check', 'GET', 'u', 'api.x', '/me', 401, 10, 20, 1, false),
           ('src', '1.0', 'read', 'POST', 'u', 'api.x', '/users', NULL, 10, 0, 1, false),
           ('src', '2.0', 'read', 'GET', 'u', 'api.x', '/users', 200, 10, 100, 5, false)"""
    )
    traffic = http_traffic(con, "src", "1.0")
    assert traffic is not None
    assert (traffic.requests, traffic.distinct_endpoints, traffic.cache_hits) == (4, 3, 1)
    assert traffic.statuses == {"200": 2, "401": 1, "none": 1}
    assert traffic.errors == 2
    assert (traffic.request_bytes, traffic.response_bytes) == (40, 220)
    assert traffic.top_endpoints[0] == ("GET api.x/users", 2)
    read_only = http_traffic(con, "src", "1.0", "read")
    assert read_only is not None and read_only.requests == 3


def test_records_count_lower_is_breaking_higher_is_a_change(session: SessionBuilder) -> None:
    control = session.load("1.0.0", "read", [record("events", {"n": i}) for i in range(5)])
    fewer = session.load("2.0.0", "read", [record("events", {"n": i}) for i in range(4)])
    more = session.load("3.0.0", "read", [record("events", {"n": i}) for i in range(6)])
    con = session.connect()
    for target, severity, counts in ((fewer, Severity.BREAKING, (5, 4)), (more, Severity.CHANGE, (5, 6))):
        (count,) = compare_records(con, control, target).of_kind("record_count_changed")
        assert (count.severity, count.control, count.target) == (severity, *counts)


def test_invalid_lines_new_in_target_are_breaking_more_is_a_change(session: SessionBuilder) -> None:
    clean = session.load("1.0.0", "read", [record("events", {"n": 1})])
    noisy = session.load("2.0.0", "read", [record("events", {"n": 1}), "DEBUG: fetched page 1", "{not json"])
    noisier = session.load("3.0.0", "read", ["DEBUG: fetched page 1", "{not json", "banner v3", record("events", {})])
    con = session.connect()
    assert compare_invalid_lines(con, clean, clean).findings == []
    (added,) = compare_invalid_lines(con, clean, noisy).findings
    assert (added.kind, added.severity, added.count, added.target) == (
        "invalid_lines_added", Severity.BREAKING, 2, ["DEBUG: fetched page 1", "{not json"]
    )  # fmt: skip
    (more,) = compare_invalid_lines(con, noisy, noisier).findings
    assert (more.kind, more.severity, more.count, more.target) == (
        "invalid_lines_increased",
        Severity.CHANGE,
        3,
        ["banner v3"],
    )
    (fewer,) = compare_invalid_lines(con, noisier, clean).findings
    assert (fewer.kind, fewer.severity) == ("invalid_lines_fewer", Severity.INFO)


def test_traces_a_sequence_that_still_completes_is_a_change(session: SessionBuilder) -> None:
    """[STARTED COMPLETE] -> [STARTED RUNNING COMPLETE]: the target now reads records; still a complete run."""
    control = session.load("1.0", "read", [status("users", "STARTED"), status("users", "COMPLETE")])
    target = session.load(
        "2.0", "read", [status("users", "STARTED"), status("users", "RUNNING"), status("users", "COMPLETE")]
    )
    (changed,) = compare_traces(session.connect(), control, target).findings
    assert (changed.kind, changed.severity) == ("stream_status_sequence_changed", Severity.CHANGE)
    (back,) = compare_traces(session.connect(), target, control).findings
    assert back.severity is Severity.CHANGE
