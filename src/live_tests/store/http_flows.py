"""HTTP traffic of each execution in duck.db: one row per flow the proxy saw, and how it was captured.

`http_flows` comes from the proxy's `http_flows.jsonl` (bulk-read by DuckDB, like the message
tables); `http_captures` from `http_capture.json`, so a report can say when capture was off
(`--disable-proxy`) or the proxy failed, rather than showing an empty table as "no traffic".
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from live_tests.models import ExecutionInputs
from live_tests.store.session_db import KEY_COLUMNS, SessionDatabase

FLOWS_FILE = "http_flows.jsonl"
CAPTURE_FILE = "http_capture.json"

SCHEMA: dict[str, str] = {
    "http_flows": f"""{KEY_COLUMNS}, method VARCHAR, url VARCHAR, host VARCHAR, path VARCHAR, query VARCHAR,
        status INTEGER, request_size BIGINT, response_size BIGINT, duration_ms DOUBLE, cache_hit BOOLEAN,
        error VARCHAR""",
    "http_captures": """connector VARCHAR, version VARCHAR, command VARCHAR, capture_enabled BOOLEAN, mode VARCHAR,
        proxy_image VARCHAR, recording VARCHAR, flows BIGINT, error VARCHAR""",
}

_FLOW_COLUMNS = """{'method': 'VARCHAR', 'url': 'VARCHAR', 'host': 'VARCHAR', 'path': 'VARCHAR', 'query': 'VARCHAR',
    'status': 'INTEGER', 'request_size': 'BIGINT', 'response_size': 'BIGINT', 'duration_ms': 'DOUBLE',
    'cache_hit': 'BOOLEAN', 'error': 'VARCHAR'}"""
_MAX_OBJECT_SIZE = 1 << 24  # one line per flow, with a URL: small


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in SCHEMA.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")


def load_http_flows(con_or_db: duckdb.DuckDBPyConnection | SessionDatabase, inputs: ExecutionInputs) -> int:
    """Replace the execution's rows with what its artifacts hold; returns the number of flows."""
    if isinstance(con_or_db, SessionDatabase):
        # The session database serialises its writers; share its connection and lock.
        with con_or_db._lock:
            return _load(con_or_db._con, inputs)
    return _load(con_or_db, inputs)


def _load(con: duckdb.DuckDBPyConnection, inputs: ExecutionInputs) -> int:
    create_tables(con)
    key = list(inputs.key)
    flows_path = inputs.artifacts_dir / FLOWS_FILE
    capture = _read_capture(inputs.artifacts_dir / CAPTURE_FILE)
    con.execute("BEGIN TRANSACTION")
    try:
        for table in SCHEMA:
            con.execute(f"DELETE FROM {table} WHERE connector = ? AND version = ? AND command = ?", key)
        if flows_path.exists() and flows_path.stat().st_size > 0:
            con.execute(
                f"""INSERT INTO http_flows
                SELECT ?, ?, ?, ordinality, method, url, host, path, query, status, request_size,
                       response_size, duration_ms, coalesce(cache_hit, false), error
                FROM read_json(?, format = 'newline_delimited', columns = {_FLOW_COLUMNS},
                               maximum_object_size = {_MAX_OBJECT_SIZE})
                     WITH ORDINALITY""",
                [*key, str(flows_path)],
            )
        count = con.execute(
            "SELECT count(*) FROM http_flows WHERE connector = ? AND version = ? AND command = ?", key
        ).fetchone()[0]
        if capture is not None:
            con.execute(
                "INSERT INTO http_captures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    *key,
                    bool(capture.get("enabled")),
                    capture.get("mode"),
                    capture.get("proxy_image"),
                    capture.get("recording"),
                    count,
                    capture.get("error"),
                ],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return count


def _read_capture(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
