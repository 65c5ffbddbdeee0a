"""Compare the stdout lines that are not Airbyte messages (the `invalid_lines` table) of control and target.

A connector's stdout is the protocol: a target that starts printing lines the control did not
(debug prints, a library's banner, a half-written message) can break the platform reading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import duckdb

from live_tests.compare.diff import Comparison, ExecutionKey, Finding, Severity, short
from live_tests.models import INVALID_KIND
from live_tests.sql import both_params, key_filter, table_exists

_EXAMPLES = 3


@dataclass
class InvalidLinesComparison(Comparison):
    title: ClassVar[str] = "Non-protocol output comparison"

    control_lines: int = 0
    target_lines: int = 0

    def overview_lines(self) -> list[str]:
        return [f"stdout lines that are not Airbyte messages: control {self.control_lines}, target {self.target_lines}"]


def compare_invalid_lines(
    con: duckdb.DuckDBPyConnection, control: ExecutionKey, target: ExecutionKey
) -> InvalidLinesComparison:
    """Breaking when the target prints such lines and the control printed none; a change when it prints more."""
    result = InvalidLinesComparison(control, target)
    if not table_exists(con, INVALID_KIND):
        return result
    params = both_params(control, target)
    counts = con.execute(
        f"""SELECT count(*) FILTER (WHERE {key_filter("c")}), count(*) FILTER (WHERE {key_filter("t")})
            FROM {INVALID_KIND}""",
        params,
    ).fetchone()
    result.control_lines, result.target_lines = (int(n) for n in counts or (0, 0))
    if result.target_lines <= result.control_lines:
        if result.target_lines < result.control_lines:
            result.findings.append(
                Finding(
                    "invalid_lines_fewer", Severity.INFO,
                    f"the target prints {result.target_lines} non-protocol lines, the control {result.control_lines}",
                    control=result.control_lines, target=result.target_lines,
                )
            )  # fmt: skip
        return result
    # The first target lines whose text the control never printed: what is new.
    examples = [
        text
        for (text,) in con.execute(
            f"""SELECT text FROM {INVALID_KIND} WHERE {key_filter("t")}
                  AND text NOT IN (SELECT text FROM {INVALID_KIND} WHERE {key_filter("c")})
                ORDER BY line_number LIMIT {_EXAMPLES}""",
            params,
        ).fetchall()
    ]
    new = result.control_lines == 0
    result.findings.append(
        Finding(
            "invalid_lines_added" if new else "invalid_lines_increased",
            Severity.BREAKING if new else Severity.CHANGE,
            f"the target prints {result.target_lines} stdout lines that are not Airbyte messages"
            f" (the control {result.control_lines}), e.g. {short(examples[0] if examples else '', 80)}",
            control=result.control_lines,
            target=examples,
            count=result.target_lines,
        )
    )
    return result
