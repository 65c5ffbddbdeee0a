"""The reports' HTTP section: per command, control vs target endpoint by endpoint, how each side was
answered (capture, cache, replay, faults), and links to each execution's dumps.

Counted in duck.db by `compare_http_calls` and `replay_counts`; links are relative to the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from live_tests.compare.http_calls import HttpCallsComparison, compare_http_calls
from live_tests.compare.http_replay import ReplayCounts, flow_columns, replay_counts
from live_tests.compare.http_traffic import HTTP_FLOWS_TABLE
from live_tests.models import ExecutionKey
from live_tests.sql import table_exists

HAR_FILE, MITM_FILE = "http_dump.har", "http_dump.mitm"
ENDPOINTS_SHOWN = 40


@dataclass(frozen=True)
class HttpSide:
    key: ExecutionKey
    artifacts_dir: Path | None
    replay: ReplayCounts | None
    faults: dict[str, int]  # --http-fault scenario -> requests it hit

    def dumps(self) -> list[Path]:
        folder = self.artifacts_dir
        return [folder / name for name in (HAR_FILE, MITM_FILE) if folder is not None and (folder / name).exists()]


@dataclass(frozen=True)
class HttpCommandSection:
    command: str
    calls: HttpCallsComparison
    control: HttpSide
    target: HttpSide


def http_sections(
    con: duckdb.DuckDBPyConnection, connector: str, control_version: str, target_version: str, commands: list[str]
) -> list[HttpCommandSection]:
    """One section per command whose traffic either side captured (commands in the order given)."""
    if not table_exists(con, HTTP_FLOWS_TABLE):
        return []
    with_flows = {
        c
        for (c,) in con.execute(
            f"SELECT DISTINCT command FROM {HTTP_FLOWS_TABLE} WHERE connector = ? AND version IN (?, ?)",
            [connector, control_version, target_version],
        ).fetchall()
    }
    sections = []
    for command in (c for c in commands if c in with_flows):
        control = ExecutionKey(connector, control_version, command)
        target = ExecutionKey(connector, target_version, command)
        records = {"control": _records(con, control), "target": _records(con, target)}
        sections.append(
            HttpCommandSection(
                command,
                compare_http_calls(con, control, target, records=records),
                _side(con, control),
                _side(con, target),
            )
        )
    return sections


def http_view(sections: list[HttpCommandSection], link: Callable[[Path], str]) -> list[dict[str, Any]]:
    """What the templates show: endpoints trimmed, dumps as links (`link`: relative to the report)."""
    view = []
    for section in sections:
        sides = []
        for role, side in (("control", section.control), ("target", section.target)):
            sides.append(
                {
                    "role": role,
                    "version": side.key.version,
                    "replay": side.replay,
                    "faults": side.faults,
                    "dumps": [(p.name, link(p)) for p in side.dumps()],
                    "mitmweb": next((f"mitmweb --rfile {p}" for p in side.dumps() if p.name == MITM_FILE), None),
                }
            )
        view.append(
            {
                "section": section,
                "sides": sides,
                "endpoints": section.calls.endpoints[:ENDPOINTS_SHOWN],
                "more_endpoints": max(0, len(section.calls.endpoints) - ENDPOINTS_SHOWN),
                "findings": [f for f in section.calls.findings if f.kind != "http_not_captured"],
            }
        )
    return view


def _side(con: duckdb.DuckDBPyConnection, key: ExecutionKey) -> HttpSide:
    row = con.execute(
        "SELECT artifacts_dir FROM executions WHERE connector = ? AND version = ? AND command = ? LIMIT 1", list(key)
    ).fetchone()
    artifacts = Path(row[0]) if row and row[0] else None
    faults = (
        []
        if "fault" not in flow_columns(con)
        else con.execute(
            f"""SELECT fault, count(*) FROM {HTTP_FLOWS_TABLE}
            WHERE connector = ? AND version = ? AND command = ? AND fault IS NOT NULL GROUP BY fault ORDER BY fault""",
            list(key),
        ).fetchall()
    )
    return HttpSide(key, artifacts, replay_counts(con, key, artifacts), {str(f): int(n) for f, n in faults})


def _records(con: duckdb.DuckDBPyConnection, key: ExecutionKey) -> int:
    if not table_exists(con, "records"):
        return 0
    row = con.execute(
        "SELECT count(*) FROM records WHERE connector = ? AND version = ? AND command = ?", list(key)
    ).fetchone()
    return int(row[0]) if row else 0


def http_json(sections: list[HttpCommandSection], link: Callable[[Path], str]) -> list[dict[str, Any]]:
    """report.json's `http_calls`: per command, each side's dumps, replay counts and faults, and the findings."""
    out = []
    for section in sections:
        sides = {}
        for role, side in (("control", section.control), ("target", section.target)):
            replay = side.replay
            sides[role] = {
                "version": side.key.version,
                "dumps": [link(p) for p in side.dumps()],
                "replay": None if replay is None else {
                    "mode": replay.mode, "from_recording": replay.from_recording, "live": replay.live,
                    "unmatched": replay.unmatched, "near_misses": [vars(m) for m in replay.near_misses],
                    "left_out_streamed": replay.left_out_streamed,
                },
                "faults": side.faults,
            }  # fmt: skip
        calls = section.calls
        out.append(
            {
                "command": section.command,
                **sides,
                "requests": {"control": calls.control_requests, "target": calls.target_requests},
                "endpoints": len(calls.endpoints),
                "findings": [f.to_dict() for f in calls.findings],
            }
        )
    return out
