"""Store stage without Docker: stdout chunks -> MessageWriter (fast path, segments) -> ExecutionStore -> duck.db.

The reference for every case is the slow path: every line parsed (`parse_every_line`), then one
bulk load from the JSONL files. The fast path must end in exactly the same files and rows.
"""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import orjson
import pytest

import live_tests.store.message_writer as message_writer
from live_tests.models import (
    Command,
    ConnectorImage,
    ConnectorInputs,
    ExecutionInputs,
    ExecutionResult,
    HttpCapture,
    RunOutcome,
)
from live_tests.store.execution_store import ExecutionStore
from live_tests.store.message_writer import SEGMENTS_DIR, MessageWriter
from live_tests.store.session_db import SCHEMA, SessionDatabase
from live_tests.store.stream_files import MANIFEST


def line(message: dict) -> bytes:
    return orjson.dumps(message) + b"\n"


def record(stream: str, i: int, namespace: str | None = None, spaced: bool = False) -> bytes:
    body: dict = {"stream": stream, "data": {"id": i, "name": f"n{i}"}, "emitted_at": 1000 + i}
    if namespace is not None:
        body = {"namespace": namespace, **body}  # the CDKs put the namespace first
    message = {"type": "RECORD", "record": body}
    return (orjson.dumps(message).replace(b'":', b'": ').replace(b',"', b', "') + b"\n") if spaced else line(message)


STATE = line({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"}}}})
LOG = line({"type": "LOG", "log": {"level": "INFO", "message": "hello"}})


def chunks(data: bytes, seed: int) -> list[bytes]:
    """The data cut at random places, as a socket delivers it (1 byte to 64 KiB)."""
    rng, out, i = random.Random(seed), [], 0
    while i < len(data):
        size = rng.choice([1, 7, 300, 4096, 65536])
        out.append(data[i : i + size])
        i += size
    return out


def execution(root: Path, version: str) -> ExecutionInputs:
    return ExecutionInputs(
        connector=ConnectorImage("airbyte/source-test", version),
        command=Command.READ,
        inputs=ConnectorInputs(),
        artifacts_dir=root / version,
        run_id="test",
    )


def stream_in(db: SessionDatabase, inputs: ExecutionInputs, data: bytes, seed: int = 0) -> tuple[ExecutionResult, bool]:
    """What the runner and the pipeline do with a connector's stdout, minus the container.

    Also says whether the fast path had to be undone."""
    store = ExecutionStore(db, inputs)
    for chunk in chunks(data, seed):
        store.writer.feed(chunk)
    output = store.finish()
    result = ExecutionResult.compose(inputs, RunOutcome(exit_code=0), output)
    store.commit(result)
    return result, output.refiled


def reference(db: SessionDatabase, inputs: ExecutionInputs, data: bytes) -> ExecutionResult:
    writer = MessageWriter(inputs.artifacts_dir, parse_every_line=True)
    writer.feed(data)
    writer.close()
    result = ExecutionResult.compose(inputs, RunOutcome(exit_code=0), writer.output())
    db.load(result)
    return result


def files(artifacts_dir: Path) -> dict[str, bytes]:
    root = artifacts_dir / "airbyte_messages"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.jsonl"))}


def rows(db_path: Path, version: str) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return {
            table: con.execute(
                f"SELECT * EXCLUDE (version) FROM {table} WHERE version = ? ORDER BY ALL", [version]
            ).fetchall()
            for table in SCHEMA
            if table != "executions"
        }


def assert_same_as_reference(tmp_path: Path, data: bytes, *, refiled: bool, seed: int = 0) -> ExecutionResult:
    with SessionDatabase(tmp_path / "duck.db") as db:
        fast, was_refiled = stream_in(db, execution(tmp_path, "fast"), data, seed)
    assert was_refiled is refiled
    with SessionDatabase(tmp_path / "duck.db") as db:
        slow = reference(db, execution(tmp_path, "slow"), data)
    assert files(tmp_path / "fast") == files(tmp_path / "slow")
    assert rows(tmp_path / "duck.db", "fast") == rows(tmp_path / "duck.db", "slow")
    for field in ("stdout_lines", "message_counts", "records_per_stream"):
        assert getattr(fast, field) == getattr(slow, field), field
    assert not (tmp_path / "fast" / SEGMENTS_DIR).exists()
    return fast


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(message_writer, "SEGMENT_BYTES", 2000)  # many segments from little data


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mixed_output_files_and_loads_like_the_slow_path(tmp_path: Path, small_segments: None, seed: int) -> None:
    users = [record("users", i) for i in range(3000)]
    orders = [record("orders", i, namespace="shop") for i in range(200)]
    spaced = [record("spaced", i, spaced=True) for i in range(50)]
    data = b"".join(
        [
            LOG,
            *users[:100],
            STATE,
            *[x for pair in zip(users[100:200], orders[:100], strict=True) for x in pair],  # interleaved
            b"not json at all\n",
            b"\n",
            *orders[100:],
            *spaced,
            LOG,
            *users[200:],  # long enough for whole chunks of one stream
            b'{"type":"RECORD","record":{"stream":"users","data":{"id":',  # died mid-line: not a record
        ]
    )
    result = assert_same_as_reference(tmp_path, data, refiled=False, seed=seed)
    assert result.records_per_stream == {"users": 3000, "shop.orders": 200, "spaced": 50}
    assert result.message_counts["invalid_lines"] == 2
    with duckdb.connect(str(tmp_path / "duck.db"), read_only=True) as con:
        seqs = con.execute("SELECT seq FROM records WHERE version = 'fast' ORDER BY seq").fetchall()
        assert [s for (s,) in seqs] == list(range(1, 3251))  # one numbering across all segments
        users_ids = con.execute(
            "SELECT data->>'id' FROM records WHERE version = 'fast' AND stream = 'users' ORDER BY seq"
        ).fetchall()
        assert [int(i) for (i,) in users_ids] == list(range(3000))  # stream order kept


def test_a_broken_line_with_a_known_start_is_found_and_filed_as_invalid(tmp_path: Path, small_segments: None) -> None:
    """The fast path takes the line as a record; DuckDB rejects it; the run is filed again."""
    good = [record("users", i) for i in range(100)]
    broken = b'{"type":"RECORD","record":{"stream":"users","data":{"id":1,,}}\n'
    data = b"".join([*good[:50], broken, *good[50:]])
    result = assert_same_as_reference(tmp_path, data, refiled=True)
    assert result.records_per_stream == {"users": 100}
    invalid = (tmp_path / "fast" / "airbyte_messages" / "invalid_lines.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x) for x in invalid] == [{"line_number": 51, "text": broken.decode().strip()}]


def test_a_namespace_after_the_stream_is_not_taken_for_no_namespace(tmp_path: Path, small_segments: None) -> None:
    """`{"stream":"users",...,"namespace":"x"}` starts like a record without namespace."""
    late_namespace = b'{"type":"RECORD","record":{"stream":"users","data":{"id":7},"emitted_at":1,"namespace":"x"}}\n'
    data = b"".join([*(record("users", i) for i in range(100)), late_namespace, record("users", 100)])
    result = assert_same_as_reference(tmp_path, data, refiled=True)
    assert result.records_per_stream == {"users": 101, "x.users": 1}
    assert (tmp_path / "fast" / "airbyte_messages" / "records_per_stream" / "x.users.jsonl").read_bytes() == (
        late_namespace
    )


def test_a_record_longer_than_the_default_json_reader_limit(tmp_path: Path) -> None:
    huge = record("big", 0).replace(b'"n0"', b'"' + b"x" * (17 * 2**20) + b'"')
    result = assert_same_as_reference(tmp_path, b"".join([record("big", 1), huge, record("big", 2)]), refiled=False)
    assert result.longest_line_bytes >= len(huge) - 1
    assert result.records_per_stream == {"big": 3}


def test_reloading_an_execution_replaces_its_rows(tmp_path: Path) -> None:
    inputs = execution(tmp_path, "1.0")
    with SessionDatabase(tmp_path / "duck.db") as db:
        stream_in(db, inputs, b"".join(record("users", i) for i in range(10)))
        stream_in(db, inputs, b"".join(record("users", i) for i in range(3)))
    with duckdb.connect(str(tmp_path / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM records").fetchone() == (3,)
        assert con.execute("SELECT count(*) FROM executions").fetchone() == (1,)


def _flow(i: int) -> bytes:
    return line({"method": "GET", "url": f"https://api.example/items?page={i}", "host": "api.example",
                 "path": "/items", "query": f"page={i}", "status": 200, "request_size": 0,
                 "response_size": 10 * i, "duration_ms": 1.5, "cache_hit": False, "error": None})  # fmt: skip


def _stored(db: SessionDatabase) -> dict[str, list[tuple]]:
    con = db.connection()
    try:
        return {
            table: con.execute(f"SELECT version, count(*) FROM {table} GROUP BY ALL ORDER BY ALL").fetchall()
            for table in ("executions", "records", "http_flows", "http_captures")
        }
    finally:
        con.close()


def test_messages_http_flows_and_the_execution_row_commit_together(tmp_path: Path) -> None:
    inputs = execution(tmp_path, "1.0")
    (tmp_path / "flows.jsonl").write_bytes(b"".join(_flow(i) for i in range(4)))
    capture = HttpCapture(enabled=True, mode="capture", flows_path=tmp_path / "flows.jsonl")
    with SessionDatabase(tmp_path / "duck.db") as db:
        store = ExecutionStore(db, inputs, http=True)
        store.writer.feed(b"".join(record("users", i) for i in range(5)))
        output = store.finish(capture)
        assert (output.http_flows, output.message_counts, output.error) == (4, {"records": 5}, None)
        # Nothing is visible before the commit: one transaction.
        assert _stored(db) == {"executions": [], "records": [], "http_flows": [], "http_captures": []}
        store.commit(ExecutionResult.compose(inputs, RunOutcome(exit_code=0), output, capture))
        assert _stored(db) == {
            "executions": [("1.0", 1)],
            "records": [("1.0", 5)],
            "http_flows": [("1.0", 4)],
            "http_captures": [("1.0", 1)],
        }


def test_unreadable_http_flows_roll_the_messages_back_and_keep_the_execution_row(tmp_path: Path) -> None:
    inputs = execution(tmp_path, "1.0")
    (tmp_path / "flows.jsonl").write_bytes(b'{"method": "GET", "status": "not a number"}\n')
    capture = HttpCapture(enabled=True, mode="capture", flows_path=tmp_path / "flows.jsonl")
    with SessionDatabase(tmp_path / "duck.db") as db:
        store = ExecutionStore(db, inputs, http=True)
        store.writer.feed(b"".join(record("users", i) for i in range(5)))
        output = store.finish(capture)
        result = ExecutionResult.compose(inputs, RunOutcome(exit_code=0), output, capture)
        store.commit(result)
        assert _stored(db) == {"executions": [("1.0", 1)], "records": [], "http_flows": [], "http_captures": []}
        con = db.connection()
        (status, error) = con.execute("SELECT status, error FROM executions").fetchone()
        con.close()
        assert status == "error" and error.startswith("could not load the messages into")
    assert output.message_counts == {"records": 5}  # the artifacts are complete
    assert result.error is not None and result.error.startswith("could not load the messages into")
    assert not result.success


def test_streams_whose_file_names_collide_get_files_of_their_own(tmp_path: Path, small_segments: None) -> None:
    keys = [("a/b", None), ("a_b", None), ("s", "ns"), ("ns.s", None), ("x" * 300, None)]
    data = b"".join(record(stream, i, namespace=ns) for i in range(40) for stream, ns in keys)  # interleaved
    result = assert_same_as_reference(tmp_path, data, refiled=False, seed=4)
    per_stream = tmp_path / "fast" / "airbyte_messages" / "records_per_stream"
    manifest = orjson.loads((per_stream / MANIFEST).read_bytes())
    assert manifest == orjson.loads(
        (tmp_path / "slow" / "airbyte_messages" / "records_per_stream" / "manifest.json").read_bytes()
    )
    assert {(entry["stream"], entry["namespace"]): entry["count"] for entry in manifest.values()} == dict.fromkeys(
        keys, 40
    )
    assert {"a_b.jsonl", "ns.s.jsonl"} <= set(manifest)
    assert result.records_per_stream == {name.removesuffix(".jsonl"): 40 for name in manifest}
    for name, entry in manifest.items():
        lines = [orjson.loads(x)["record"] for x in (per_stream / name).read_bytes().splitlines()]
        assert {(r["stream"], r.get("namespace")) for r in lines} == {(entry["stream"], entry["namespace"])}
        assert len(name.encode()) <= 255


def test_a_line_over_the_cap_is_kept_truncated_and_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(message_writer, "MAX_LINE_BYTES", 3 * 2**20)
    monkeypatch.setattr(message_writer, "TRUNCATED_LINE_BYTES", 1000)
    long_record = record("big", 1).replace(b'"n1"', b'"' + b"x" * (5 * 2**20) + b'"')
    data = b"".join([record("big", 0), long_record, record("big", 2)])
    result = assert_same_as_reference(tmp_path, data, refiled=False)
    assert result.records_per_stream == {"big": 2}
    assert result.warnings == (
        "line 2 of stdout is 5 MB, over the 3 MB cap (LIVE_TESTS_MAX_LINE_MB): not loaded as a message;"
        " invalid_lines keeps its first 0 MB, stdout.log all of it",
    )
    [invalid] = (tmp_path / "fast" / "airbyte_messages" / "invalid_lines.jsonl").read_bytes().splitlines()
    entry = orjson.loads(invalid)
    assert entry == {
        "line_number": 2,
        "text": long_record[:1000].decode(),
        "truncated_from_bytes": len(long_record) - 1,
    }
    with duckdb.connect(str(tmp_path / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT truncated_from_bytes FROM invalid_lines WHERE version = 'fast'").fetchall() == [
            (len(long_record) - 1,)
        ]


def test_flush_puts_on_disk_what_was_fed_since_the_last_flush(tmp_path: Path) -> None:
    """`feed` flushes at most once a second; the runner's flusher calls `flush` when stdout is silent."""
    writer = MessageWriter(tmp_path)
    writer.feed(record("users", 0))  # the first feed flushes
    writer.feed(record("users", 1) + LOG[:10])  # within the second: buffered
    records = tmp_path / "airbyte_messages" / "records.jsonl"
    assert records.read_bytes() == record("users", 0)
    writer.flush()
    assert records.read_bytes() == record("users", 0) + record("users", 1)
    assert (tmp_path / "stdout.log").read_bytes() == record("users", 0) + record("users", 1) + LOG[:10]
    writer.close()
    writer.flush()  # after close (the flusher may be a moment late): no error
