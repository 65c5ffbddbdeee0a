"""HTTP traffic of each execution in duck.db: one row per flow the proxy saw, and how it was captured.

`http_flows` comes from the proxy's `http_flows.jsonl` (bulk-read by DuckDB, like the message
tables); `http_captures` from the proxy's HttpCapture, so a report can say when capture was off
(`--disable-proxy`) or the proxy failed, rather than showing an empty table as "no traffic".
In cache and replay modes `replay` says how each request was answered (hit | miss | unmatched)
and `near_miss` names the closest recorded request of one that was not; `fault` names the
`--http-fault` scenario that hit the request.
"""

from __future__ import annotations

import duckdb

from live_tests.models import ExecutionKey, HttpCapture
from live_tests.store.session_db import KEY_COLUMNS

SCHEMA: dict[str, str] = {
    "http_flows": f"""{KEY_COLUMNS}, method VARCHAR, url VARCHAR, host VARCHAR, path VARCHAR, query VARCHAR,
        status INTEGER, request_size BIGINT, response_size BIGINT, duration_ms DOUBLE, cache_hit BOOLEAN,
        error VARCHAR, replay VARCHAR, near_miss VARCHAR, fault VARCHAR""",
    "http_captures": """connector VARCHAR, version VARCHAR, command VARCHAR, capture_enabled BOOLEAN, mode VARCHAR,
        proxy_image VARCHAR, recording VARCHAR, flows BIGINT, error VARCHAR""",
}

_FLOW_COLUMNS = """{'method': 'VARCHAR', 'url': 'VARCHAR', 'host': 'VARCHAR', 'path': 'VARCHAR', 'query': 'VARCHAR',
    'status': 'INTEGER', 'request_size': 'BIGINT', 'response_size': 'BIGINT', 'duration_ms': 'DOUBLE',
    'cache_hit': 'BOOLEAN', 'error': 'VARCHAR', 'replay': 'VARCHAR', 'near_miss': 'VARCHAR', 'fault': 'VARCHAR'}"""
_MAX_OBJECT_SIZE = 1 << 24  # one line per flow, with a URL: small


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    for table, columns in SCHEMA.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")


def insert_http_capture(con: duckdb.DuckDBPyConnection, key: ExecutionKey, capture: HttpCapture) -> int:
    """Replace the execution's flows and capture row; returns the number of flows.

    The tables must exist (SessionDatabase.create_tables(SCHEMA)); the caller owns the transaction.
    """
    for table in SCHEMA:
        con.execute(f"DELETE FROM {table} WHERE connector = ? AND version = ? AND command = ?", list(key))
    flows = capture.flows_path
    if flows is not None and flows.exists() and flows.stat().st_size > 0:
        con.execute(
            f"""INSERT INTO http_flows
            SELECT ?, ?, ?, ordinality, method, url, host, path, query, status, request_size,
                   response_size, duration_ms, coalesce(cache_hit, false), error, replay, near_miss, fault
            FROM read_json(?, format = 'newline_delimited', columns = {_FLOW_COLUMNS},
                           maximum_object_size = {_MAX_OBJECT_SIZE})
                 WITH ORDINALITY""",
            [*key, str(flows)],
        )
    count = con.execute(
        "SELECT count(*) FROM http_flows WHERE connector = ? AND version = ? AND command = ?", list(key)
    ).fetchone()[0]
    con.execute(
        "INSERT INTO http_captures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [*key, capture.enabled, capture.mode, capture.proxy_image, capture.recording, count, capture.error],
    )
    return count
