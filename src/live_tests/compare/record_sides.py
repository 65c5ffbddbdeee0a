"""What every step of one records comparison reads: the connection, its scratch tables, the query
parameters of control (`c`) and target (`t`), and the ignore rules for record data."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from live_tests.compare.ignores import IgnoreRules
from live_tests.sql import Scratch, key_filter


@dataclass(frozen=True)
class Sides:
    con: duckdb.DuckDBPyConnection
    scratch: Scratch
    params: dict[str, str]  # both_params(control, target)
    ignore: IgnoreRules

    def records(self, side: str, alias: str = "r") -> str:
        """The records table restricted to one side ("c" or "t"), for joins on seq."""
        return f"(SELECT seq, data FROM records {alias} WHERE {key_filter(side, alias)})"

    def docs(self, rows: str) -> str:
        """Query joining `rows` (side, stream, seq) to their record data: (side, stream, seq, data)."""
        return f"""(SELECT l.side, l.stream, l.seq, r.data FROM {rows} l
                    JOIN {self.records("c", "rc")} r ON l.side = 'c' AND r.seq = l.seq
                   UNION ALL
                   SELECT l.side, l.stream, l.seq, r.data FROM {rows} l
                    JOIN {self.records("t", "rt")} r ON l.side = 't' AND r.seq = l.seq)"""
