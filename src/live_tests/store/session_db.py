"""The run's DuckDB database (`duck.db`): every message of every execution, queryable.

One table per message kind, each keyed by (connector, version, command) so control and target
can be compared with SQL; `seq` is the message's position within its kind for that execution.
Loading is bulk: DuckDB reads JSONL files itself (see live_tests.store.execution_load for records
loaded while the connector streams).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import duckdb

from live_tests.models import ExecutionKey, ExecutionResult
from live_tests.sql import literal, table_columns

KEY_COLUMNS = "connector VARCHAR, version VARCHAR, command VARCHAR, seq BIGINT"

# The executions table's columns in order. New columns go at the end: `migrate` adds them to a
# duck.db written before they existed (rows are inserted by column name, so order does not matter).
EXECUTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("connector", "VARCHAR"),
    ("version", "VARCHAR"),
    ("command", "VARCHAR"),
    ("image", "VARCHAR"),
    ("status", "VARCHAR"),
    ("success", "BOOLEAN"),
    ("exit_code", "INTEGER"),
    ("duration_s", "DOUBLE"),
    ("time_to_first_record_s", "DOUBLE"),
    ("peak_memory_bytes", "BIGINT"),
    ("stdout_lines", "BIGINT"),
    ("error", "VARCHAR"),
    ("stderr_tail", "VARCHAR"),
    ("artifacts_dir", "VARCHAR"),
    ("started_at", "TIMESTAMPTZ"),
    ("finished_at", "TIMESTAMPTZ"),
    ("cpu_seconds", "DOUBLE"),
    ("oom_killed", "BOOLEAN"),
    ("memory_limit_bytes", "BIGINT"),
    ("cpus", "DOUBLE"),
    ("warnings", "VARCHAR[]"),
    # What the writer counted as it streamed (also when the messages could not be loaded).
    ("records", "BIGINT"),
    ("stdout_bytes", "BIGINT"),
)

SCHEMA: dict[str, str] = {
    "executions": ", ".join(f"{name} {kind}" for name, kind in EXECUTION_COLUMNS),
    # zstd: DuckDB's default picks a compression per segment by trying several, which costs more
    # CPU than parsing the records; zstd is cheaper to write and about as fast to scan.
    "records": f"{KEY_COLUMNS}, stream VARCHAR, namespace VARCHAR, emitted_at BIGINT, data JSON USING COMPRESSION zstd",
    "states": f"{KEY_COLUMNS}, state_type VARCHAR, stream VARCHAR, namespace VARCHAR, state JSON",
    "logs": f"{KEY_COLUMNS}, level VARCHAR, message VARCHAR",
    "traces": f"{KEY_COLUMNS}, trace_type VARCHAR, emitted_at BIGINT, stream VARCHAR, status VARCHAR, trace JSON",
    "catalog": f"{KEY_COLUMNS}, catalog JSON",
    "spec": f"{KEY_COLUMNS}, spec JSON",
    "connection_status": f"{KEY_COLUMNS}, status VARCHAR, message VARCHAR",
    "controls": f"{KEY_COLUMNS}, control_type VARCHAR, control JSON",
    # truncated_from_bytes: the line was over the cap; `text` is its start (stdout.log has it all).
    "invalid_lines": f"{KEY_COLUMNS}, line_number BIGINT, text VARCHAR, truncated_from_bytes BIGINT",
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
    "invalid_lines": (
        "{'line_number': 'BIGINT', 'text': 'VARCHAR', 'truncated_from_bytes': 'BIGINT'}",
        "line_number, text, truncated_from_bytes",
    ),
}
MESSAGE_TABLES: tuple[str, ...] = tuple(_LOADERS)

# DuckDB's default cap on one JSON line; raised to the execution's longest line when needed
# (a 20 MB record is legal). Not raised blindly: DuckDB sizes its read buffers by it.
_DEFAULT_MAX_OBJECT_SIZE = 16 * 1024 * 1024
# Keeps the harness's memory flat whatever the number of messages: DuckDB spills to disk beyond
# it. Its JSON reader needs a few buffers the size of the longest line, so huge lines raise it.
MEMORY_LIMIT_MB = int(os.environ.get("LIVE_TESTS_DUCKDB_MEMORY_LIMIT_MB", "192"))
_MEMORY_PER_LINE_BYTE = 16
# New session databases are written in a storage format that the DuckDB CLI users install from
# PyPI (duckdb-cli, a release line behind the Python package) can open.
STORAGE_VERSION = os.environ.get("LIVE_TESTS_DUCKDB_STORAGE_VERSION", "v1.5.0")


def _max_object_size(longest_line: int) -> int:
    return max(_DEFAULT_MAX_OBJECT_SIZE, longest_line + 1024)


def delete_execution(con: duckdb.DuckDBPyConnection, key: ExecutionKey) -> None:
    """Forget what an earlier load of this execution put into any table."""
    for table in SCHEMA:
        con.execute(f"DELETE FROM {table} WHERE connector = ? AND version = ? AND command = ?", list(key))


def insert_messages(
    con: duckdb.DuckDBPyConnection,
    key: ExecutionKey,
    table: str,
    path: Path,
    *,
    first_seq: int = 1,
    longest_line: int = 0,
) -> None:
    """Bulk-insert a JSONL file of one message kind; its lines get seq first_seq, first_seq + 1, ..."""
    columns, select = _LOADERS[table]
    key_sql = ", ".join(literal(part) for part in key)
    con.execute(
        f"""INSERT INTO {table}
        SELECT {key_sql}, ordinality + {first_seq - 1}, {select}
        FROM read_json({literal(str(path))}, format = 'newline_delimited', records = true,
                       columns = {columns}, maximum_object_size = {_max_object_size(longest_line)})
             WITH ORDINALITY"""
    )


def insert_message_files(
    con: duckdb.DuckDBPyConnection,
    key: ExecutionKey,
    artifacts_dir: Path,
    longest_line: int,
    tables: Iterable[str] = MESSAGE_TABLES,
) -> None:
    """Bulk-insert the execution's airbyte_messages/<kind>.jsonl files."""
    messages_dir = artifacts_dir / "airbyte_messages"
    for table in tables:
        path = messages_dir / f"{table}.jsonl"
        if path.exists() and path.stat().st_size > 0:
            insert_messages(con, key, table, path, longest_line=longest_line)


def insert_execution(con: duckdb.DuckDBPyConnection, result: ExecutionResult) -> None:
    values = {
        **dict(zip(("connector", "version", "command"), result.inputs.key, strict=True)),
        "image": result.inputs.connector.reference,
        "status": result.status,
        "success": result.success,
        "exit_code": result.exit_code,
        "duration_s": result.duration_s,
        "time_to_first_record_s": result.time_to_first_record_s,
        "peak_memory_bytes": result.peak_memory_bytes,
        "stdout_lines": result.stdout_lines,
        "error": result.error,
        "stderr_tail": result.stderr_tail,
        "artifacts_dir": str(result.inputs.artifacts_dir),
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "cpu_seconds": result.cpu_seconds,
        "oom_killed": result.oom_killed,
        "memory_limit_bytes": result.inputs.limits.memory_bytes,
        "cpus": result.inputs.limits.cpus,
        "warnings": list(result.warnings),
        "records": result.records,
        "stdout_bytes": result.stdout_bytes,
    }
    con.execute(
        f"INSERT INTO executions ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})", list(values.values())
    )


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Add the executions columns a duck.db from an older live-tests lacks; returns the ones added.

    Their values are NULL for the old rows: "not measured", never 0.
    """
    existing = table_columns(con, "executions")
    missing = [(name, kind) for name, kind in EXECUTION_COLUMNS if name not in existing]
    for name, kind in missing:
        con.execute(f"ALTER TABLE executions ADD COLUMN IF NOT EXISTS {name} {kind}")
    return [name for name, _ in missing]


class SessionDatabase:
    """duck.db of one run. Thread-safe: each execution loads through a connection of its own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._memory_limit_mb = MEMORY_LIMIT_MB
        # One thread per statement: loads run beside the connectors, and executions load side by
        # side, so more threads per statement only fight for the same cores.
        config = {
            "memory_limit": f"{MEMORY_LIMIT_MB}MB",
            "threads": 1,
            "storage_compatibility_version": STORAGE_VERSION,
        }
        self._con = duckdb.connect(str(path), config=config)
        self.create_tables(SCHEMA)
        with self._lock:
            migrate(self._con)

    def create_tables(self, schema: Mapping[str, str]) -> None:
        """Tables beside the message tables (e.g. HTTP flows), made outside any execution's transaction:
        two transactions creating one table would conflict."""
        with self._lock:
            for table, columns in schema.items():
                self._con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own (for one thread) to this database."""
        return self._con.cursor()

    def make_room_for(self, longest_line: int) -> None:
        """DuckDB's JSON reader needs a few buffers the size of the longest line: raise the cap for it.

        Measured (DuckDB 2.0.1, zstd column): a 60 MB line loads within 800 MB, not within 700 MB; 16x leaves a
        margin. The writer caps lines at LIVE_TESTS_MAX_LINE_MB (256 MB by default: at most about 4.3 GB here).
        """
        needed = MEMORY_LIMIT_MB + _MEMORY_PER_LINE_BYTE * longest_line // 2**20
        with self._lock:
            if needed > self._memory_limit_mb:
                self._con.execute(f"SET memory_limit = '{needed}MB'")
                self._memory_limit_mb = needed

    def load(self, result: ExecutionResult) -> None:
        """Replace the execution's rows with what its JSONL artifacts hold, in one transaction."""
        self.make_room_for(result.longest_line_bytes)
        con = self.connection()
        try:
            con.execute("BEGIN TRANSACTION")
            delete_execution(con, result.inputs.key)
            insert_message_files(con, result.inputs.key, result.inputs.artifacts_dir, result.longest_line_bytes)
            insert_execution(con, result)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> SessionDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
