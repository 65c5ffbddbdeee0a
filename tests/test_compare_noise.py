"""What is not a regression: fields null on one side and absent on the other, ignored paths, and
volatile paths found from two control runs.

Executions are planted in small duck.db files the way a run builds them (see tests/test_compare.py).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from live_tests.compare import (
    IgnoredPath,
    Severity,
    compare_inferred_schemas,
    compare_records,
    compare_states,
    compare_traces,
    volatility,
)
from live_tests.compare.volatility import find_volatile_paths
from tests.test_compare import (
    Message,
    SessionBuilder,
    error,
    global_state,
    kinds,
    record,
    reordered,
    session,
    stream_state,
)

__all__ = ["session"]  # the fixture, imported for pytest


# ---------------------------------------------------------------------------------------------
# Null versus absent


def test_records_keyed_null_vs_absent_is_its_own_non_breaking_change(session: SessionBuilder) -> None:
    control = session.load(
        "1.0",
        "read",
        [record("u", {"id": 1, "x": None, "o": {"p": None}}), record("u", {"id": 2, "x": None, "tags": [None]}),
         record("u", {"id": 3, "y": 5}), record("u", {"id": 4, "z": None})],
    )  # fmt: skip
    target = session.load(
        "2.0",
        "read",
        # id 1, 2: x dropped (null -> absent), also nested o.p; id 2: tags shorter (a real change);
        # id 3: a non-null y disappears (breaking); id 4: z null -> "" (a value change, breaking).
        [record("u", {"id": 1, "o": {}}), record("u", {"id": 2, "tags": []}), record("u", {"id": 3, "w": None}),
         record("u", {"id": 4, "z": ""})],
    )  # fmt: skip
    result = compare_records(session.connect(), control, target, {"u": [["id"]]}, max_examples=10)
    u = result.streams["u"]
    assert {(f.path, f.change, f.records) for f in u.field_diffs} == {
        ("$.x", "null_to_absent", 2),
        ("$.o.p", "null_to_absent", 1),
        ("$.tags[*]", "removed", 1),
        ("$.y", "removed", 1),
        ("$.w", "absent_to_null", 1),
        ("$.z", "changed", 1),
    }
    assert (u.changed, u.changed_values) == (4, 3)  # id 1 only has null-vs-absent differences
    null_findings = result.of_kind("record_field_null_vs_absent")
    assert {(f.path, f.severity, f.count, f.control, f.target) for f in null_findings} == {
        ("$.x", Severity.CHANGE, 2, "null", "absent"),
        ("$.o.p", Severity.CHANGE, 1, "null", "absent"),
        ("$.w", Severity.CHANGE, 1, "absent", "null"),
    }
    assert "`u`: `$.x` null in control, absent in target in 2 records" in [f.message for f in null_findings]
    assert "`u`: `$.w` absent in control, null in target in 1 records" in [f.message for f in null_findings]
    assert {(f.kind, f.path) for f in result.breaking} == {
        ("record_field_removed", "$.tags[*]"), ("record_field_removed", "$.y"), ("record_field_changed", "$.z"),
    }  # fmt: skip
    (example,) = [e for e in u.examples if e["key"] == [1]]
    assert example["differences"] == [
        {"path": "$.o.p", "change": "null_to_absent", "control": None, "target": None},
        {"path": "$.x", "change": "null_to_absent", "control": None, "target": None},
    ]


def test_records_only_null_vs_absent_passes(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", [record("u", {"id": i, "x": None}) for i in range(5)])
    target = session.load("2.0", "read", [record("u", {"id": i}) for i in range(5)])
    keyless_c = session.load("1.0", "read-with-state", [record("m", {"a": 1, "n": None}) for _ in range(3)])
    keyless_t = session.load("2.0", "read-with-state", [record("m", {"a": 1}) for _ in range(2)])
    con = session.connect()
    keyed = compare_records(con, control, target, {"u": [["id"]]})
    assert keyed.passed and kinds(keyed) == [("record_field_null_vs_absent", "u", "$.x")]
    keyless = compare_records(con, keyless_c, keyless_t)
    m = keyless.streams["m"]
    # Two control records pair with the target's up to `n`; the third is missing.
    assert (m.changed, m.missing_in_target, m.extra_in_target) == (2, 1, 0)
    assert [(f.path, f.change, f.records) for f in m.field_diffs] == [("$.n", "null_to_absent", 2)]
    assert sorted(kinds(keyless)) == [
        ("record_count_changed", "m", None),
        ("record_field_null_vs_absent", "m", "$.n"),
        ("records_missing_in_target", "m", None),
    ]
    assert {e["kind"] for e in m.examples} == {"changed", "missing_in_target"}


def test_inferred_schema_null_vs_absent(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", [record("u", {"id": i, "gone": None, "kept": i}) for i in range(3)])
    target = session.load("2.0", "read", [record("u", {"id": i, "new": None}) for i in range(3)])
    result = compare_inferred_schemas(session.connect(), control, target)
    assert kinds(result) == [
        ("field_null_vs_absent", "u", "$.gone"),
        ("field_null_vs_absent", "u", "$.new"),
        ("field_removed", "u", "$.kept"),
    ]
    assert [f.path for f in result.breaking] == ["$.kept"]
    assert (
        result.of_kind("field_null_vs_absent")[0].message
        == "`u`: `$.gone` null in control, absent in target (3 records)"
    )


# ---------------------------------------------------------------------------------------------
# Ignored paths


def test_ignored_path_parse() -> None:
    assert IgnoredPath.parse("users:$.updated_at") == IgnoredPath("users", "$.updated_at", "--ignore-field")
    assert IgnoredPath.parse(" * : $.items[*].ts ").label() == "*:$.items[*].ts"
    for bad, says in [
        ("updated_at", "expected STREAM:JSONPATH"),
        (":$.x", "expected STREAM:JSONPATH"),
        ("users:", "expected STREAM:JSONPATH"),
        ("users:updated_at", "must start with $"),
        ("users:$", "names no field"),
        ("users:$..x", "names no field"),
        ("users:$.items[0].ts", "can only be [*]"),
    ]:
        with pytest.raises(ValueError, match=re.escape(says)) as raised:
            IgnoredPath.parse(bad)
        assert "\n" not in str(raised.value)
    with pytest.raises(ValueError, match="applies_to"):
        IgnoredPath("*", "$.x", "r", applies_to="logs")


def test_records_ignored_per_stream_and_reported(session: SessionBuilder, tmp_path) -> None:
    control = session.load(
        "1.0", "read", [record("a", {"id": 1, "ts": 1, "o": {"ts": 1, "v": 1}}), record("b", {"id": 1, "ts": 1})]
    )
    target = session.load(
        "2.0", "read", [record("a", {"id": 1, "ts": 2, "o": {"ts": 2, "v": 1}}), record("b", {"id": 1, "ts": 2})]
    )
    ignored = [
        IgnoredPath("a", "$.ts", "differs between two control runs", records=1, applies_to="records"),
        IgnoredPath("*", "$.o.ts", "--ignore-field"),
        IgnoredPath("b", "$.ts", "a state path", applies_to="states"),  # not for records
    ]
    result = compare_records(session.connect(), control, target, {"a": [["id"]], "b": [["id"]]}, ignored=ignored)
    assert kinds(result) == [("record_field_changed", "b", "$.ts")]
    assert result.ignored == ignored[:2]
    assert result.to_dict()["ignored"][0] == {
        "stream": "a", "path": "$.ts", "reason": "differs between two control runs", "records": 1,
        "applies_to": "records",
    }  # fmt: skip
    summary = result.summary_text()
    assert (
        "Ignored paths (2):\n  a:$.ts: differs between two control runs (1 records)\n  *:$.o.ts: --ignore-field"
        in summary
    )


def test_records_keyless_ignored_nested_and_in_arrays(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", [record("m", {"v": i, "items": [{"ts": 1, "n": i}]}) for i in range(3)])
    target = session.load("2.0", "read", [record("m", {"v": i, "items": [{"ts": 9, "n": i}]}) for i in range(3)])
    con = session.connect()
    assert compare_records(con, control, target).streams["m"].missing_in_target == 3
    relaxed = compare_records(con, control, target, ignored=[IgnoredPath("m", "$.items[*].ts", "--ignore-field")])
    assert relaxed.passed and relaxed.findings == []


def test_states_ignored_paths(session: SessionBuilder) -> None:
    control = session.load(
        "1.0", "read", [stream_state("a", {"cursor": "c1", "synced_at": 1}), global_state({"at": 1, "lsn": 5})]
    )
    target = session.load(
        "2.0", "read", [stream_state("a", {"synced_at": 2, "cursor": "c1"}), global_state({"at": 2, "lsn": 5})]
    )
    con = session.connect()
    assert kinds(compare_states(con, control, target)) == [
        ("final_state_changed", "(global)", None), ("final_state_changed", "a", None),
    ]  # fmt: skip
    only_a = compare_states(con, control, target, ignored=[IgnoredPath("a", "$.synced_at", "r", applies_to="states")])
    assert kinds(only_a) == [("final_state_changed", "(global)", None)]
    # A stream's ignores never reach the global state; `*` ones do. Record-only paths are not applied.
    ignored = [
        IgnoredPath("a", "$.at", "r"),
        IgnoredPath("*", "$.at", "r", applies_to="records"),
        IgnoredPath("*", "$.synced_at", "r"),
    ]
    assert kinds(compare_states(con, control, target, ignored=ignored)) == [("final_state_changed", "(global)", None)]
    everything = compare_states(con, control, target, ignored=[*ignored, IgnoredPath("*", "$.at", "r")])
    assert everything.passed and everything.findings == []
    assert everything.ignored == [ignored[0], ignored[2], IgnoredPath("*", "$.at", "r")]


def test_inferred_schema_ignored_top_level_fields(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", [record("u", {"id": 1, "ts": "x", "o": {"a": 1}})])
    target = session.load("2.0", "read", [record("u", {"id": 1, "ts": 1, "o": 1})])
    con = session.connect()
    assert [f.path for f in compare_inferred_schemas(con, control, target).findings] == ["$.o", "$.ts"]
    ignored = [IgnoredPath("u", "$.ts", "r"), IgnoredPath("u", "$.o.a", "r")]  # $.o.a does not cover $.o
    result = compare_inferred_schemas(con, control, target, ignored=ignored)
    assert [f.path for f in result.findings] == ["$.o"]
    assert "ts" not in result.control_fields["u"]


# ---------------------------------------------------------------------------------------------
# Volatile paths

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _run(at: datetime, run: int, name_suffix: str = "") -> list[Message]:
    """One read, stamped with `at` like a connector reading "now"; `run` mints ids."""
    users = [
        record(
            "users",
            {"id": i, "name": f"u{i}{name_suffix}", "created_at": "2020-01-01T00:00:00Z", "updated_at": _iso(at),
             "request_id": str(uuid.UUID(int=run * 1000 + i)), "meta": {"synced_ms": int(at.timestamp() * 1000)},
             "last_login": _iso(at) if i % 2 else "2021-05-05T10:00:00+02:00", "score": 1.5, "tags": ["a"]},
        )
        for i in range(1, 5)
    ]  # fmt: skip
    events = [
        record("events", {"kind": "x", "n": i, "seen_at": int(at.timestamp()), "token": f"t{run}-{i}"})
        for i in range(3)
    ]
    state = stream_state("users", {"cursor": "2020-01-01", "synced_at": _iso(at)})
    return [*users, *events, state]


def _window(at: datetime) -> tuple[datetime, datetime]:
    return at - timedelta(milliseconds=200), at + timedelta(milliseconds=800)


def _found(paths: list[IgnoredPath]) -> set[tuple[str, str, str]]:
    return {(p.stream, p.path, p.applies_to) for p in paths}


def test_volatile_paths_from_a_rerun_and_now_stamps(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", _run(T0, run=1))
    rerun = session.load("1.0+rerun", "read", _run(T0 + timedelta(seconds=7), run=2))
    target = session.load("2.0", "read", _run(T0 + timedelta(seconds=20), run=3, name_suffix="!"))
    windows = {control: _window(T0), rerun: _window(T0 + timedelta(seconds=7))}
    windows[target] = _window(T0 + timedelta(seconds=20))
    con = session.connect()
    volatile = find_volatile_paths(con, control, rerun, windows, primary_keys={"users": [["id"]]})
    assert _found(volatile) == {
        ("users", "$.updated_at", "records"),
        ("users", "$.request_id", "records"),
        ("users", "$.meta.synced_ms", "records"),
        ("users", "$.last_login", "records"),  # differs between the runs in the records stamped now
        ("events", "$.seen_at", "records"),
        ("events", "$.token", "records"),
        ("users", "$.synced_at", "states"),
    }
    by_path = {(p.stream, p.path): p for p in volatile}
    assert by_path[("users", "$.updated_at")].records == 4
    assert by_path[("users", "$.last_login")].records == 2
    assert by_path[("users", "$.request_id")].reason == "differs between two control runs"
    assert by_path[("users", "$.updated_at")].reason == (
        "differs between two control runs; timestamps inside the run's wall-clock window"
        " (source-test 1.0 read, source-test 1.0+rerun read, source-test 2.0 read)"
    )
    assert by_path[("events", "$.token")].records == 3
    # Set aside, the noise no longer fails anything; the real change in target (name) still does.
    records = compare_records(con, control, target, {"users": [["id"]]}, ignored=volatile)
    assert [(f.kind, f.stream, f.path) for f in records.breaking] == [("record_field_changed", "users", "$.name")]
    assert records.streams["events"].identical
    assert compare_states(con, control, target, ignored=volatile).passed
    assert compare_states(con, control, target).of_kind("final_state_changed")


def test_volatile_paths_when_both_control_runs_share_a_second(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", _run(T0, run=1))
    rerun = session.load("1.0+rerun", "read", _run(T0, run=2))  # the same clock values
    con = session.connect()
    rerun_only = find_volatile_paths(con, control, rerun, {}, primary_keys={"users": [["id"]]})
    assert _found(rerun_only) == {("users", "$.request_id", "records"), ("events", "$.token", "records")}
    with_windows = find_volatile_paths(
        con, control, rerun, {control: _window(T0), rerun: _window(T0)}, primary_keys={"users": [["id"]]}
    )
    assert _found(with_windows) == {
        ("users", "$.request_id", "records"),
        ("events", "$.token", "records"),
        ("users", "$.updated_at", "records"),
        ("users", "$.meta.synced_ms", "records"),
        ("events", "$.seen_at", "records"),
        ("users", "$.synced_at", "states"),
    }  # not last_login: half its values are from 2021; not created_at, name, score, tags, cursor
    # The control run once (--no-noise-baseline): its clock alone, nothing compared with another run.
    control_only = find_volatile_paths(con, control, None, {control: _window(T0)}, primary_keys={"users": [["id"]]})
    assert _found(control_only) == _found(with_windows) - _found(rerun_only)
    stamped = {(p.stream, p.path): p for p in with_windows}[("users", "$.updated_at")]
    assert stamped.reason == (
        "timestamps inside the run's wall-clock window (source-test 1.0 read, source-test 1.0+rerun read)"
    )
    assert stamped.records == 4


def test_volatile_paths_none_when_runs_are_equal_and_keyless_without_keys(session: SessionBuilder) -> None:
    rows = [{"id": i, "at": "2020-01-01T00:00:00Z", "n": 1_600_000_000 + i, "o": {"k": [1, None]}} for i in range(5)]
    control = session.load("1.0", "read", [record("s", r) for r in rows] + [stream_state("s", {"c": 1})])
    rerun = session.load(
        "1.0+rerun", "read", [record("s", reordered(r)) for r in reversed(rows)] + [stream_state("s", {"c": 1})]
    )
    con = session.connect()
    windows = {control: _window(T0), rerun: _window(T0 + timedelta(seconds=3))}
    assert find_volatile_paths(con, control, rerun, windows) == []  # no keys given: compared as multisets
    assert find_volatile_paths(con, control, rerun, windows, primary_keys={"s": ["id"]}) == []


def test_volatile_error_trace_messages(session: SessionBuilder) -> None:
    control = session.load("1.0", "read", [error("timeout, request 1a2b", stream="s"), error("stable", stream="t")])
    rerun = session.load("1.0+rerun", "read", [error("timeout, request 9f8e", stream="s"), error("stable", stream="t")])
    target = session.load("2.0", "read", [error("timeout, request 7777", stream="s"), error("new", stream="t")])
    con = session.connect()
    volatile = find_volatile_paths(con, control, rerun, {})
    assert volatile == [
        IgnoredPath("s", "$.error.message", "ERROR trace messages differ between two control runs", 1, "traces")
    ]
    traces = compare_traces(con, control, target, ignored=volatile)
    assert [(f.kind, f.stream) for f in traces.breaking] == [("error_trace_added", "t")]
    assert traces.ignored == volatile
    strict = compare_traces(con, control, target)
    assert sorted((f.kind, f.stream) for f in strict.breaking) == [
        ("error_trace_added", "s"),
        ("error_trace_added", "t"),
    ]


def test_now_stamps_proposed_by_a_sample_are_checked_on_every_record(
    session: SessionBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(volatility, "STAMP_SAMPLE", 2)
    rows = [{"id": i, "seen": _iso(T0), "o": {"at": int(T0.timestamp())}, "late": _iso(T0)} for i in range(5)]
    rows[4]["late"] = "2019-01-01T00:00:00Z"  # after the sample: clears the path
    control = session.load("1.0", "read", [record("s", r) for r in rows])
    rerun = session.load("1.0+rerun", "read", [record("s", r) for r in rows])
    volatile = find_volatile_paths(session.connect(), control, rerun, {control: _window(T0)})
    assert [(p.path, p.records) for p in volatile] == [("$.o.at", 5), ("$.seen", 5)]
