"""The performance diff: its rules on planted duck.db files, and the suite flagging a planted slowdown of the demo.

The rules (src/live_tests/compare/performance.py): a target worse than the control beyond the
tolerance AND the absolute floor is a change (never breaking); a figure a side lacks is a note.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from live_tests.compare import PerformanceComparison, Severity, compare_performance
from live_tests.models import ExecutionKey
from live_tests.store import http_flows
from live_tests.store.session_db import SessionDatabase
from tests.conftest import DEMO_DIR

CONTROL = ExecutionKey("source-x", "1.0.0", "read")
TARGET = ExecutionKey("source-x", "2.0.0", "read")
# A control whose every figure is above the floors, so ratios decide.
BASE: dict[str, Any] = {
    "duration_s": 10.0,
    "time_to_first_record_s": 4.0,
    "records": 1000,
    "stdout_bytes": 500_000,
    "peak_memory_bytes": 200 * 2**20,
    "cpu_seconds": 8.0,
}


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A real duck.db with the store's tables (HTTP ones included)."""
    path = tmp_path / "duck.db"
    with SessionDatabase(path) as db:
        db.create_tables(http_flows.SCHEMA)
    connection = duckdb.connect(str(path))
    yield connection
    connection.close()


def plant(con: duckdb.DuckDBPyConnection, key: ExecutionKey, calls: int | None = None, **figures: Any) -> None:
    """An executions row (and `calls` captured HTTP flows; None: capture off)."""
    row = {**BASE, **figures}
    con.execute(
        f"INSERT INTO executions (connector, version, command, {', '.join(row)}) VALUES "
        f"(?, ?, ?, {', '.join('?' * len(row))})",
        [*key, *row.values()],
    )
    con.execute("INSERT INTO http_captures (connector, version, command, capture_enabled) VALUES (?, ?, ?, ?)",
                [*key, calls is not None])  # fmt: skip
    for seq in range(calls or 0):
        con.execute(
            "INSERT INTO http_flows (connector, version, command, seq, method, host, path)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [*key, seq + 1, "GET", "api.example.com", "/items"],
        )


def compare(con: duckdb.DuckDBPyConnection, control: dict[str, Any], target: dict[str, Any]) -> PerformanceComparison:
    plant(con, CONTROL, **control)
    plant(con, TARGET, **target)
    return compare_performance(con, CONTROL, TARGET, tolerance=0.25)


def changes(result: PerformanceComparison) -> list[str]:
    assert all(f.severity is not Severity.BREAKING for f in result.findings)  # performance never fails a test
    return sorted(f.kind for f in result.findings if f.severity is Severity.CHANGE)


def notes(result: PerformanceComparison) -> list[str]:
    return [f.message for f in result.findings if f.severity is Severity.INFO]


def test_a_target_within_the_controls_own_spread_is_not_flagged(con):
    """The control's second run (noise baseline) took 6 s longer than its first: a target 5 s slower is
    within what the control does to itself; 7 s slower is flagged, and the floor is shown raised."""
    rerun = CONTROL._replace(version="1.0.0+rerun")
    plant(con, CONTROL, calls=10)
    plant(con, rerun, calls=10, duration_s=16.0, cpu_seconds=12.0)
    plant(con, TARGET, calls=10, duration_s=15.0, cpu_seconds=11.0)
    within = compare_performance(con, CONTROL, TARGET, tolerance=0.25, baseline=rerun)
    assert changes(within) == []
    assert (within.floors.time_s, within.floors.cpu_s) == (6.0, 4.0)
    assert "floors raised to how much the control's two runs differed" in within.summary_text()
    without = compare_performance(con, CONTROL, TARGET, tolerance=0.25)  # no baseline: the plain floors
    assert changes(without) == ["cpu_time_increased", "records_per_second_decreased", "wall_time_increased"]
    slower = TARGET._replace(version="3.0.0")
    plant(con, slower, calls=10, duration_s=17.0, cpu_seconds=8.0)
    assert changes(compare_performance(con, CONTROL, slower, tolerance=0.25, baseline=rerun)) == [
        "records_per_second_decreased",
        "wall_time_increased",
    ]


def test_the_same_figures_are_not_flagged(con):
    result = compare(con, {"calls": 10}, {"calls": 10})
    assert changes(result) == [] and notes(result) == []
    assert result.passed and not result.has_differences
    assert [r.metric.name for r in result.rows()] == [
        "wall_time", "time_to_first_record", "records_per_second", "bytes_per_second",
        "peak_memory", "cpu_time", "http_calls", "http_calls_per_record",
    ]  # fmt: skip


def test_a_slower_target_beyond_the_tolerance_is_flagged(con):
    result = compare(con, {}, {"duration_s": 13.0, "time_to_first_record_s": 6.0})
    assert changes(result) == ["records_per_second_decreased", "time_to_first_record_increased",
                               "wall_time_increased"]  # fmt: skip
    wall = result.of_kind("wall_time_increased")[0]
    assert (wall.control, wall.target) == (10.0, 13.0)
    assert wall.message == "wall time: the target 13.00 s, the control 10.00 s (+30%)"
    assert result.passed  # a change: listed, never failing
    assert {r.metric.name for r in result.rows() if r.flagged} == {
        "wall_time",
        "time_to_first_record",
        "records_per_second",
    }


def test_within_the_tolerance_nothing_is_flagged(con):
    result = compare(con, {}, {"duration_s": 12.4, "time_to_first_record_s": 4.9, "peak_memory_bytes": 240 * 2**20,
                               "cpu_seconds": 9.9})  # fmt: skip
    assert changes(result) == []


def test_the_tolerance_is_the_callers(con):
    plant(con, CONTROL)
    plant(con, TARGET, duration_s=12.0)
    assert changes(compare_performance(con, CONTROL, TARGET, tolerance=0.1)) == [
        "records_per_second_decreased", "wall_time_increased",
    ]  # fmt: skip
    assert changes(compare_performance(con, CONTROL, TARGET, tolerance=0.25)) == []


def test_differences_under_the_floors_are_not_flagged(con):
    """Ten times the control, but a short run: 1.9 s, 19 MiB, 0.4 s of CPU, 4 calls more are noise."""
    small = {"duration_s": 0.2, "time_to_first_record_s": 0.1, "records": 10, "peak_memory_bytes": 2**20,
             "cpu_seconds": 0.04, "calls": 1}  # fmt: skip
    bigger = {"duration_s": 2.0, "time_to_first_record_s": 1.9, "records": 10, "peak_memory_bytes": 20 * 2**20,
              "cpu_seconds": 0.44, "calls": 5}  # fmt: skip
    assert changes(compare(con, small, bigger)) == []


def test_more_memory_and_cpu_are_flagged(con):
    result = compare(con, {}, {"peak_memory_bytes": 300 * 2**20, "cpu_seconds": 11.0})
    assert changes(result) == ["cpu_time_increased", "peak_memory_increased"]
    assert result.of_kind("peak_memory_increased")[0].message == (
        "peak memory: the target 300.0 MiB, the control 200.0 MiB (+50%)"
    )


def test_more_http_calls_per_record_are_flagged(con):
    """Twice the calls for the same records; calls alone do not count when records differ in proportion."""
    result = compare(con, {"calls": 20}, {"calls": 40})
    assert changes(result) == ["http_calls_per_record_increased"]
    assert result.of_kind("http_calls_per_record_increased")[0].message == (
        "the target makes 0.04 HTTP calls per record, the control 0.02 (40 calls for 1,000 records,"
        " the control 20 for 1,000)"
    )


def test_more_calls_for_more_records_are_not_flagged(con):
    """Twice the records in twice the time with twice the calls: the same pace (only the wall time is longer)."""
    result = compare(con, {"calls": 20}, {"calls": 40, "records": 2000, "duration_s": 20.0, "stdout_bytes": 10**6})
    assert changes(result) == ["wall_time_increased"]


def test_without_records_the_calls_themselves_are_compared(con):
    control, target = CONTROL._replace(command="check"), TARGET._replace(command="check")
    plant(con, control, calls=1, records=0, time_to_first_record_s=None)
    plant(con, target, calls=9, records=0, time_to_first_record_s=None)
    result = compare_performance(con, control, target)
    assert changes(result) == ["http_calls_increased"]
    assert {r.metric.name for r in result.rows()} >= {"http_calls"}
    assert "time_to_first_record" not in {r.metric.name for r in result.rows()}  # no record: no figure, no note
    assert notes(result) == []


def test_missing_figures_are_said_not_taken_as_zero(con):
    """A side without cgroup figures (a remote engine), or with capture off: a note each, no flag."""
    result = compare(con, {"calls": 10}, {"peak_memory_bytes": None, "cpu_seconds": None, "calls": None})
    assert changes(result) == []
    assert notes(result) == [
        "peak memory not compared: not measured for the target (no memory sample: no cgroup figure)",
        "CPU time not compared: not measured for the target (no CPU sample: no cgroup figure)",
        "HTTP calls not compared (target: capture was off (--disable-proxy))",
    ]
    memory = next(r for r in result.rows() if r.metric.name == "peak_memory")
    assert (memory.control_text, memory.target_text) == ("200.0 MiB", "-")
    assert result.to_dict()["figures"]["target"]["peak_memory_bytes"] is None


def test_a_side_without_an_executions_row_says_so(con):
    plant(con, CONTROL)
    result = compare_performance(con, CONTROL, TARGET)
    assert changes(result) == []
    assert notes(result) == ["no figures for the target (source-x 2.0.0 read): no executions row"]


def test_a_failed_capture_is_no_count(con):
    plant(con, CONTROL, calls=3)
    plant(con, TARGET, calls=30)
    con.execute("UPDATE http_captures SET error = 'proxy died' WHERE version = '2.0.0'")
    result = compare_performance(con, CONTROL, TARGET)
    assert changes(result) == []
    assert notes(result) == ["HTTP calls not compared (target: capture failed: proxy died)"]


def test_summary_shows_the_table_with_the_flag(con):
    summary = compare(con, {}, {"duration_s": 20.0}).summary_text()
    assert "tolerance 25%; floors: time 2 s, memory 20 MiB, CPU 0.5 s, HTTP 5 calls" in summary
    wall = next(line for line in summary.splitlines() if line.startswith("wall time"))
    assert wall.split() == ["wall", "time", "10.00", "s", "20.00", "s", "(+100%)", "<-", "flagged"]


def test_an_old_duck_db_gets_the_new_columns(tmp_path):
    """A duck.db written before `records` and `stdout_bytes` existed: opened, the columns are added (NULL for
    the old rows), new rows insert, and the comparison counts the old rows' records from the records table."""
    path = tmp_path / "duck.db"
    old = duckdb.connect(str(path))
    old.execute("""CREATE TABLE executions (connector VARCHAR, version VARCHAR, command VARCHAR, image VARCHAR,
        status VARCHAR, success BOOLEAN, exit_code INTEGER, duration_s DOUBLE, time_to_first_record_s DOUBLE,
        peak_memory_bytes BIGINT, stdout_lines BIGINT, error VARCHAR, stderr_tail VARCHAR, artifacts_dir VARCHAR,
        started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ)""")
    old.execute("INSERT INTO executions (connector, version, command) VALUES ('source-x', '1.0.0', 'read')")
    old.close()
    with SessionDatabase(path) as db:
        con = db.connection()
        columns = [name for (name,) in con.execute("SELECT column_name FROM information_schema.columns"
                                                   " WHERE table_name = 'executions'").fetchall()]  # fmt: skip
        assert columns[-7:] == ["cpu_seconds", "oom_killed", "memory_limit_bytes", "cpus", "warnings", "records",
                                "stdout_bytes"]  # fmt: skip
        con.execute("INSERT INTO records (connector, version, command, seq) VALUES ('source-x', '1.0.0', 'read', 1)")
        _insert_a_result(con, tmp_path)
        figures = compare_performance(con, CONTROL, TARGET).control_figures
        assert figures is not None and (figures.records, figures.stdout_bytes) == (1, None)
        rows = con.execute("SELECT version, records, stdout_bytes FROM executions ORDER BY version").fetchall()
        assert rows == [("1.0.0", None, None), ("2.0.0", 5, 1234)]
        con.close()


def _insert_a_result(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    from live_tests.models import Command, ConnectorImage, ConnectorInputs, ExecutionInputs, ExecutionResult
    from live_tests.store.session_db import insert_execution

    inputs = ExecutionInputs(ConnectorImage.parse("source-x:2.0.0"), Command.READ, ConnectorInputs(), tmp_path, "r")
    insert_execution(con, ExecutionResult(inputs, exit_code=0, message_counts={"records": 5}, stdout_bytes=1234))


def test_the_reports_show_the_performance_per_command(con, tmp_path):
    """report.json's `performance`, report.md's and report.html's table: per command, the flagged rows marked."""
    from live_tests.reports import build_report_context, write_reports

    plant(con, CONTROL, calls=10)
    plant(con, TARGET, calls=10, duration_s=20.0, peak_memory_bytes=None)
    context = build_report_context(con, connector="source-x", control_version="1.0.0", target_version="2.0.0",
                                   run_id="r", test_results=[], perf_tolerance=0.5)  # fmt: skip
    paths = write_reports(tmp_path / "report", context)
    [read] = json.loads(paths["json"].read_text())["performance"]
    assert (read["command"], read["tolerance"], read["target"]["peak_memory_bytes"]) == ("read", 0.5, None)
    assert {r["metric"]: r["flagged"] for r in read["rows"]} == {
        "wall_time": True, "time_to_first_record": False, "records_per_second": True, "bytes_per_second": False,
        "peak_memory": False, "cpu_time": False, "http_calls": False, "http_calls_per_record": False,
    }  # fmt: skip
    md = paths["md"].read_text()
    assert "⚠️ The target is slower or heavier beyond 50% in `read`" in md
    assert "| read | wall time | 10.00 s | 20.00 s | +100% | ⚠️ flagged |" in md
    assert "| read | peak memory | 200.0 MiB | - |  |  |" in md
    html = paths["html"].read_text()
    assert "<h2>Performance</h2>" in html and html.count('<tr class="flagged">') == 2
    assert "peak memory not compared: not measured for the target (no memory sample: no cgroup figure)" in html


# --- the suite on the demo: a slowdown planted in the target ------------------------------------------------

PERF_TEST = "test_performance_is_comparable"


def _suite(tmp_path: Path, name: str, *extra: str, **config: Any) -> Any:
    from tests.test_regression_suite import DEMO_CATALOG, demo_args, run_suite

    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**json.loads((DEMO_DIR / "config.json").read_text()), **config}))
    state = f"--state-path={DEMO_DIR / 'state.json'}"
    args = demo_args("1.0.0", "2.0.0", f"--config-path={path}", DEMO_CATALOG, state, "-k", PERF_TEST, *extra)
    return run_suite(*args, session_dir=tmp_path / name)


@pytest.mark.docker
def test_the_suite_flags_a_slowdown_planted_in_the_target(demo_images, tmp_path):
    """40 ms per record in 2.0.0 alone: its reads are flagged (slower, fewer records/s), not failed; without
    the knob nothing is flagged. Every figure is there, and not zero, for runs of a fraction of a second."""
    slow = _suite(tmp_path, "slow", "--perf-tolerance=0.3", slowdown={"version": "2.0.0", "ms_per_record": 40})
    assert slow.returncode == 0, slow.stdout[-3000:] + slow.stderr  # strict mode: performance never fails a run
    reads = {f"{PERF_TEST}[{c}]" for c in ("read", "read-with-state")}
    others = {f"{PERF_TEST}[{c}]" for c in ("spec", "check", "discover")}
    assert slow.outcomes() == {**dict.fromkeys(reads, "passed with findings"), **dict.fromkeys(others, "passed")}
    for name in reads:
        flagged = {f["kind"]: f for f in slow.findings(name) if f["severity"] == "change"}
        # Each record is flushed before the sleep: the first comes as early as the control's (not flagged).
        assert set(flagged) == {"wall_time_increased", "records_per_second_decreased"}, name
        wall = flagged["wall_time_increased"]
        assert wall["target"] >= 79 * 0.04 > wall["control"]  # at least the sleeps (read-with-state: 79 records)
    performance = {p["command"]: p for p in slow.report["performance"]}
    assert {p["tolerance"] for p in performance.values()} == {0.3}
    assert list(performance) == ["spec", "check", "discover", "read", "read-with-state"]
    for command, p in performance.items():
        for side in ("control", "target"):
            figures = p[side]
            assert figures["duration_s"] > 0 and figures["stdout_bytes"] > 0 and figures["bytes_per_s"] > 0
            assert 2**20 < figures["peak_memory_bytes"] < 2**30 and figures["cpu_seconds"] > 0, (command, side)
            assert figures["http_calls"] == 0 and figures["http_note"] is None  # captured: local mode calls nothing
            if command.startswith("read"):
                assert figures["records"] > 0 and figures["records_per_s"] > 0
                assert figures["time_to_first_record_s"] > 0 and figures["http_calls_per_record"] == 0
            else:
                assert figures["records"] == 0 and figures["records_per_s"] is None
    assert (
        "⚠️ The target is slower or heavier beyond 30% in `read`, `read-with-state`"
        in (tmp_path / "slow" / "report.md").read_text()
    )

    plain = _suite(tmp_path, "plain")
    assert plain.returncode == 0, plain.stdout[-3000:] + plain.stderr
    assert plain.outcomes() == dict.fromkeys(reads | others, "passed")
    assert all(not any(r["flagged"] for r in p["rows"]) for p in plain.report["performance"])


def test_an_old_duck_db_read_as_it_is_has_its_figures_and_says_what_it_lacks(tmp_path):
    """Not opened by the store since (nothing migrated): what it has is compared, the rest is said missing."""
    path = tmp_path / "duck.db"
    old = duckdb.connect(str(path))
    old.execute("CREATE TABLE executions (connector VARCHAR, version VARCHAR, command VARCHAR, duration_s DOUBLE,"
                " time_to_first_record_s DOUBLE, peak_memory_bytes BIGINT)")  # fmt: skip
    rows = "('source-x', '1.0.0', 'read', 10, 1, 2e8), ('source-x', '2.0.0', 'read', 30, 1, 2e8)"
    old.execute(f"INSERT INTO executions VALUES {rows}")
    result = compare_performance(old, CONTROL, TARGET)
    assert changes(result) == ["wall_time_increased"]
    assert notes(result) == [
        "CPU time not compared: not measured for the control and target (no CPU sample: no cgroup figure)",
        "stdout bytes not compared: not measured for the control and target (a duck.db of an older version)",
        "HTTP calls not compared (control: no record of an HTTP capture; target: no record of an HTTP capture)",
    ]
    old.close()


def test_the_debug_summary_shows_the_figures_it_has(tmp_path):
    from live_tests.console import figures
    from live_tests.models import (
        Command,
        ConnectorImage,
        ConnectorInputs,
        ExecutionInputs,
        ExecutionResult,
        HttpCapture,
    )

    inputs = ExecutionInputs(ConnectorImage.parse("source-x:1"), Command.READ, ConnectorInputs(), tmp_path, "r")
    measured = ExecutionResult(inputs, exit_code=0, duration_s=2.0, time_to_first_record_s=0.25,
                               peak_memory_bytes=3 * 2**20, cpu_seconds=0.5, stdout_bytes=4096,
                               message_counts={"records": 100},
                               http=HttpCapture(enabled=True, mode="capture"), http_flows=7)  # fmt: skip
    assert figures(measured).splitlines() == [
        "1st record 0.25 s", "records/s 50/s", "stdout/s 2.0 KiB/s", "peak mem 3.0 MiB", "cpu 0.50 s", "http calls 7",
    ]  # fmt: skip
    # A remote engine without samples, capture off, no record: those figures are left out, not shown as 0.
    bare = ExecutionResult(inputs, exit_code=0, duration_s=1.0, stdout_bytes=100)
    assert figures(bare).splitlines() == ["stdout/s 100 B/s"]
