"""Per-execution tallies for the report: messages per kind, records per stream, catalog streams."""

from __future__ import annotations

import duckdb

from live_tests.compare.diff import ExecutionKey
from live_tests.models import ALL_KINDS
from live_tests.sql import key_filter, key_params, table_exists


def message_counts(con: duckdb.DuckDBPyConnection, key: ExecutionKey) -> dict[str, int]:
    """Messages of one execution per kind (records, states, logs, traces, ..., invalid_lines); 0 if none."""
    params = key_params("c", key)
    kinds = [kind for kind in ALL_KINDS if table_exists(con, kind)]
    if not kinds:
        return {kind: 0 for kind in ALL_KINDS}
    union = " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, count(*) AS n FROM {kind} WHERE {key_filter('c')}" for kind in kinds
    )
    counts = dict(con.execute(union, params).fetchall())
    return {kind: int(counts.get(kind, 0)) for kind in ALL_KINDS}


def records_per_stream(con: duckdb.DuckDBPyConnection, key: ExecutionKey) -> dict[str, int]:
    """Record count per stream of one execution, sorted by stream name."""
    rows = con.execute(
        f"SELECT stream, count(*) FROM records WHERE {key_filter('c')} GROUP BY stream ORDER BY stream",
        key_params("c", key),
    ).fetchall()
    return {stream: int(n) for stream, n in rows}


def catalog_streams(con: duckdb.DuckDBPyConnection, key: ExecutionKey) -> list[str]:
    """Stream names in the last CATALOG message of one execution (usually `discover`), sorted."""
    rows = con.execute(
        f"""SELECT DISTINCT s.value ->> '$.name' AS name
            FROM (SELECT catalog FROM catalog WHERE {key_filter("c")} ORDER BY seq DESC LIMIT 1) c,
                 json_each(c.catalog, '$.streams') s
            ORDER BY name""",
        key_params("c", key),
    ).fetchall()
    return [name for (name,) in rows if name is not None]
