"""HTTP traffic of one connector version, from the optional `http_flows` table of duck.db, and
whether an execution's traffic was captured at all (`http_captures`).

The proxy stage writes `http_flows(connector, version, command, seq, method, url, host, path, query,
status, request_size, response_size, duration_ms, cache_hit, error)`; without it traffic was not captured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from live_tests.models import ExecutionKey
from live_tests.sql import table_exists

HTTP_FLOWS_TABLE = "http_flows"
HTTP_CAPTURES_TABLE = "http_captures"


@dataclass(frozen=True)
class CaptureStatus:
    """How one execution's traffic was captured (its `http_captures` row)."""

    enabled: bool
    mode: str | None  # capture | cache | replay | disabled
    error: str | None  # why the proxy failed, one line

    @property
    def complete(self) -> bool:
        """Capture was on and did not fail: the flows are all the execution's traffic."""
        return self.enabled and not self.error

    def describe(self) -> str:
        if not self.enabled:
            return "capture was off (--disable-proxy)"
        return f"capture failed: {self.error}" if self.error else f"captured ({self.mode})"


@dataclass(frozen=True)
class HttpTraffic:
    requests: int
    distinct_endpoints: int  # distinct (method, host, path)
    statuses: dict[str, int]  # "200" -> count; "none" for requests without a response
    cache_hits: int
    request_bytes: int
    response_bytes: int
    total_duration_ms: float
    top_endpoints: list[tuple[str, int]] = field(default_factory=list)  # ("GET host/path", count), busiest first

    @property
    def errors(self) -> int:
        """Responses with status >= 400 or none at all."""
        return sum(n for status, n in self.statuses.items() if not status.isdigit() or int(status) >= 400)


def capture_status(con: duckdb.DuckDBPyConnection, key: ExecutionKey) -> CaptureStatus | None:
    """The execution's capture; None when duck.db has no record of one (older run, or it never ran)."""
    if not table_exists(con, HTTP_CAPTURES_TABLE):
        return None
    row = con.execute(
        f"""SELECT coalesce(capture_enabled, false), mode, error FROM {HTTP_CAPTURES_TABLE}
            WHERE connector = ? AND version = ? AND command = ? LIMIT 1""",
        list(key),
    ).fetchone()
    return None if row is None else CaptureStatus(bool(row[0]), row[1], row[2])


def http_traffic(
    con: duckdb.DuckDBPyConnection, connector: str, version: str, command: str | None = None, top: int = 10
) -> HttpTraffic | None:
    """Traffic of a connector version (all commands, or one); None when it was not captured."""
    if not table_exists(con, HTTP_FLOWS_TABLE):
        return None
    where = "connector = $connector AND version = $version" + (" AND command = $command" if command else "")
    params = {"connector": connector, "version": version, **({"command": command} if command else {})}
    row = con.execute(
        f"""SELECT count(*), count(DISTINCT (method, host, path)), count(*) FILTER (WHERE cache_hit),
                   coalesce(sum(request_size), 0), coalesce(sum(response_size), 0), coalesce(sum(duration_ms), 0)
            FROM {HTTP_FLOWS_TABLE} WHERE {where}""",
        params,
    ).fetchone()
    assert row is not None  # an aggregate always returns a row
    statuses = con.execute(
        f"""SELECT coalesce(status::VARCHAR, 'none') AS s, count(*) FROM {HTTP_FLOWS_TABLE} WHERE {where}
            GROUP BY s ORDER BY s""",
        params,
    ).fetchall()
    endpoints = con.execute(
        f"""SELECT method || ' ' || host || path AS endpoint, count(*) AS n FROM {HTTP_FLOWS_TABLE} WHERE {where}
            GROUP BY endpoint ORDER BY n DESC, endpoint LIMIT {int(top)}""",
        params,
    ).fetchall()
    return HttpTraffic(
        requests=int(row[0]),
        distinct_endpoints=int(row[1]),
        statuses={str(s): int(n) for s, n in statuses},
        cache_hits=int(row[2]),
        request_bytes=int(row[3]),
        response_bytes=int(row[4]),
        total_duration_ms=float(row[5]),
        top_endpoints=[(str(e), int(n)) for e, n in endpoints],
    )
