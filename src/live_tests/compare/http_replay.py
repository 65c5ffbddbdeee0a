"""How an execution in cache or replay mode was answered: from the recording, live, or not at all.

From `http_flows.replay` (hit | miss | unmatched, written by the proxy addon) and `near_miss` (the
closest recorded request of one not found, and what differed), plus the proxy's
`http_replay.json` in the execution's artifacts (flows left out of the recording because their
bodies were streamed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from live_tests.compare.http_traffic import HTTP_FLOWS_TABLE, capture_status
from live_tests.models import ExecutionKey

REPLAY_FILE = "http_replay.json"  # written by the proxy addon (live_tests.proxy.container.REPLAY_FILE)
NEAR_MISSES_SHOWN = 10
REPLAYING_MODES = ("cache", "replay")


@dataclass(frozen=True)
class NearMiss:
    request: str  # "GET https://..."
    closest: str | None  # "closest recorded: GET ... (query parameter per_page: 50, recorded 20)"


@dataclass(frozen=True)
class ReplayCounts:
    mode: str  # cache | replay
    from_recording: int
    live: int  # cache misses that went upstream
    unmatched: int  # replay: answered with the unmatched error
    near_misses: list[NearMiss] = field(default_factory=list)  # the first NEAR_MISSES_SHOWN not found
    left_out_streamed: list[str] = field(default_factory=list)  # recorded flows that could not be replayed

    def summary(self) -> str:
        text = f"{self.from_recording} answered from the recording, {self.live} live, {self.unmatched} unmatched"
        if self.left_out_streamed:
            text += f"; {len(self.left_out_streamed)} recorded flows left out (streamed bodies, not replayable)"
        return text


def flow_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Columns of http_flows (a duck.db from before `replay`, `near_miss` and `fault` has fewer)."""
    rows = con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [HTTP_FLOWS_TABLE]).fetchall()
    return {str(name) for (name,) in rows}


def replay_counts(
    con: duckdb.DuckDBPyConnection, key: ExecutionKey, artifacts_dir: Path | None = None
) -> ReplayCounts | None:
    """None unless the execution ran in cache or replay mode."""
    capture = capture_status(con, key)
    if capture is None or capture.mode not in REPLAYING_MODES or "replay" not in flow_columns(con):
        return None
    where = "connector = ? AND version = ? AND command = ?"
    row = con.execute(
        f"""SELECT count(*) FILTER (WHERE replay = 'hit'), count(*) FILTER (WHERE replay = 'miss'),
                   count(*) FILTER (WHERE replay = 'unmatched')
            FROM {HTTP_FLOWS_TABLE} WHERE {where}""",
        list(key),
    ).fetchone()
    assert row is not None
    misses = con.execute(
        f"""SELECT method || ' ' || url, near_miss FROM {HTTP_FLOWS_TABLE}
            WHERE {where} AND replay IN ('miss', 'unmatched') ORDER BY seq LIMIT {NEAR_MISSES_SHOWN}""",
        list(key),
    ).fetchall()
    left_out: list[str] = []
    info = artifacts_dir / REPLAY_FILE if artifacts_dir is not None else None
    if info is not None and info.is_file():
        left_out = list(json.loads(info.read_text()).get("left_out_streamed") or [])
    return ReplayCounts(
        capture.mode or "",
        int(row[0]),
        int(row[1]),
        int(row[2]),
        [NearMiss(str(request), closest) for request, closest in misses],
        left_out,
    )
