"""The run's DuckDB database (`duck.db`): every message of every execution, queryable.

One table per message kind, each keyed by (connector, version, command) so control and target
can be compared with SQL; `seq` is the message's position within its kind for that execution.
Loading is bulk: DuckDB reads the execution's JSONL files itself.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import duckdb

from live_tests.models import ExecutionResult

KEY_COLUMNS = "connector VARCHAR, version VARCHAR, command VARCHAR, seq BIGINT"

SCHEMA: dict[str, str] = {
    "executions": """connector VARCHAR, version VARCHAR, command VARCHAR, image VARCHAR,
        status VARCHAR, success BOOLEAN, exit_code INTEGER, duration_s DOUBLE,
        time_to_first_record_s DOUBLE, peak_memory_bytes BIGINT, stdout_lines BIGINT,
        error VARCHAR, stderr_tail VARCHAR, artifacts_dir VARCHAR""",
    "records": f"{KEY_COLUMNS}, stream VARCHAR, namespace VARCHAR, emitted_at BIGINT, data JSON",
    "states": f"{KEY_COLUMNS}, state_type VARCHAR, stream VARCHAR, namespace VARCHAR, state JSON",
    "logs": f"{KEY_COLUMNS}, level VARCHAR, message VARCHAR",
    "traces": f"{KEY_COLUMNS}, trace_type VARCHAR, emitted_at BIGINT, stream VARCHAR, status VARCHAR, trace JSON",
    "catalog": f"{KEY_COLUMNS}, catalog JSON",
    "spec": f"{KEY_COLUMNS}, spec JSON",
    "connection_status": f"{KEY_COLUMNS}, status VARCHAR, message VARCHAR",
    "controls": f"{KEY_COLUMNS}, control_type VARCHAR, control JSON",
    "invalid_lines": f"{KEY_COLUMNS}, line_number BIGINT, text VARCHAR",
}

# For each message kind: the JSON columns to read from its JSONL file, and the SELECT list
# (after the key columns) that turns them into the table's columns.
_LOADERS: dict[str, tuple[str, str]] = {
    "records": (
        "{'record': 'STRUCT(stream VARCHAR, namespace VARCHAR, emitted_at DOUBLE, data JSON)'}",
        "record.stream, record.namespace, record.emitted_at::BIGINT, record.data",
    ),
    "states": (
        "{'state': 'JSON'}",
        """coalesce(state->>'type', 'LEGACY'),
           state->'stream'->'stream_descriptor'->>'name',
           state->'stream'->'stream_descriptor'->>'namespace',
           state""",
    ),
    "logs": ("{'log': 'STRUCT(level VARCHAR, message VARCHAR)'}", "log.level, log.message"),
    "traces": (
        "{'trace': 'JSON'}",
        """trace->>'type', (trace->>'emitted_at')::DOUBLE::BIGINT,
           coalesce(trace->'stream_status'->'stream_descriptor'->>'name',
                    trace->'error'->'stream_descriptor'->>'name',
                    trace->'estimate'->>'name'),
           trace->'stream_status'->>'status', trace""",
    ),
    "catalog": ("{'catalog': 'JSON'}", "catalog"),
    "spec": ("{'spec': 'JSON'}", "spec"),
    "connection_status": (
        "{'connectionStatus': 'STRUCT(status VARCHAR, message VARCHAR)'}",
        "connectionStatus.status, connectionStatus.message",
    ),
    "controls": ("{'control': 'JSON'}", "control->>'type', control"),
    "invalid_lines": ("{'line_number': 'BIGINT', 'text': 'VARCHAR'}", "line_number, text"),
}

# DuckDB's default cap on one JSON line; raised to the execution's longest line when needed
# (a 20 MB record is legal). Not raised blindly: DuckDB sizes its read buffers by it.
_DEFAULT_MAX_OBJECT_SIZE = 16 * 1024 * 1024
# Keeps the harness's memory flat whatever the number of messages: DuckDB spills to disk beyond
# it. Its JSON reader needs a few buffers the size of the longest line, so huge lines raise it.
MEMORY_LIMIT_MB = int(os.environ.get("LIVE_TESTS_DUCKDB_MEMORY_LIMIT_MB", "192"))


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class SessionDatabase:
    """duck.db of one run. Thread-safe: executions finishing concurrently load one at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = duckdb.connect(str(path), config={"memory_limit": f"{MEMORY_LIMIT_MB}MB"})
        for table, columns in SCHEMA.items():
            self._con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")

    def load(self, result: ExecutionResult) -> None:
        """Replace the execution's rows with what its artifacts hold."""
        connector, version, command = result.inputs.key
        key_sql = f"{_sql_str(connector)}, {_sql_str(version)}, {_sql_str(command)}"
        where = f"connector = {_sql_str(connector)} AND version = {_sql_str(version)} AND command = {_sql_str(command)}"
        messages_dir = result.inputs.artifacts_dir / "airbyte_messages"
        max_object_size = max(_DEFAULT_MAX_OBJECT_SIZE, result.longest_line_bytes + 1024)
        with self._lock:
            con = self._con
            con.execute(f"SET memory_limit = '{MEMORY_LIMIT_MB + 8 * result.longest_line_bytes // 2**20}MB'")
            con.execute("BEGIN TRANSACTION")
            try:
                for table in SCHEMA:
                    con.execute(f"DELETE FROM {table} WHERE {where}")
                for table, (columns, select) in _LOADERS.items():
                    path = messages_dir / f"{table}.jsonl"
                    if not path.exists() or path.stat().st_size == 0:
                        continue
                    con.execute(
                        f"""INSERT INTO {table}
                        SELECT {key_sql}, ordinality, {select}
                        FROM read_json({_sql_str(str(path))}, format = 'newline_delimited',
                                       columns = {columns}, maximum_object_size = {max_object_size})
                             WITH ORDINALITY"""
                    )
                con.execute(
                    "INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        connector,
                        version,
                        command,
                        result.inputs.connector.reference,
                        result.status,
                        result.success,
                        result.exit_code,
                        result.duration_s,
                        result.time_to_first_record_s,
                        result.peak_memory_bytes,
                        result.stdout_lines,
                        result.error,
                        result.stderr_tail,
                        str(result.inputs.artifacts_dir),
                    ],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> SessionDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
