"""HTTP traffic of one connector version, from the optional `http_flows` table of duck.db.

The proxy stage writes `http_flows(connector, version, command, method, url, host, path, status,
request_size, response_size, duration_ms, cache_hit)`; without it traffic was not captured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from live_tests.sql import table_exists

HTTP_FLOWS_TABLE = "http_flows"


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
