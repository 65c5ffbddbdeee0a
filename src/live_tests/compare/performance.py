"""Compare how fast and how heavy control and target ran one command, from duck.db's `executions` row
of each (and their `http_flows`).

Per execution: wall time, time to first record, records/s, stdout bytes/s, peak memory, CPU seconds
and HTTP calls (total and per record). A target is flagged when it is worse than the control by more
than `tolerance` (a fraction: 0.25 = 25 %) AND by more than an absolute floor, so that the jitter of
short runs (a container start, an interpreter's memory) is not reported as a regression:

    time (wall, time to first record, records/s)  2 s      starting a container (and its interpreter)
                                                           on a busy machine varies by a second or more
    peak memory                                   20 MiB   an interpreter's footprint varies by MBs
    CPU time                                      0.5 s
    HTTP calls                                    5 calls  a retry or two is not a pattern

Findings are changes (Severity.CHANGE), never breaking: performance is shown, it does not fail a
run. A figure one side lacks (a remote engine without cgroup files, capture off) is said in a note
(INFO), never taken as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import duckdb

from live_tests.compare.diff import Comparison, ExecutionKey, Finding, Severity
from live_tests.compare.http_traffic import HTTP_CAPTURES_TABLE, HTTP_FLOWS_TABLE
from live_tests.sql import both_params, fetch_dicts, key_filter, table_columns, table_exists

DEFAULT_TOLERANCE = 0.25


@dataclass(frozen=True)
class PerformanceFloors:
    """Differences below these are never flagged, whatever the ratio."""

    time_s: float = 2.0
    memory_bytes: int = 20 * 2**20
    cpu_s: float = 0.5
    http_calls: int = 5


DEFAULT_FLOORS = PerformanceFloors()


@dataclass(frozen=True)
class ExecutionFigures:
    """What duck.db knows of one execution's cost; None: not measured (or not applicable)."""

    key: ExecutionKey
    duration_s: float | None
    time_to_first_record_s: float | None  # None when it emitted no record
    records: int | None
    stdout_bytes: int | None
    peak_memory_bytes: int | None
    cpu_seconds: float | None
    http_calls: int | None  # None: traffic not captured, see http_note
    http_note: str | None = None

    @property
    def records_per_s(self) -> float | None:
        """None without records (spec, check, discover): not a pace of 0."""
        return _rate(self.records, self.duration_s) if self.records else None

    @property
    def bytes_per_s(self) -> float | None:
        return _rate(self.stdout_bytes, self.duration_s)

    @property
    def http_calls_per_record(self) -> float | None:
        if self.http_calls is None or not self.records:
            return None
        return self.http_calls / self.records

    def to_dict(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "key"},
            "records_per_s": self.records_per_s,
            "bytes_per_s": self.bytes_per_s,
            "http_calls_per_record": self.http_calls_per_record,
        }


def _rate(amount: int | None, seconds: float | None) -> float | None:
    if amount is None or not seconds or seconds <= 0:
        return None
    return amount / seconds


@dataclass(frozen=True)
class Metric:
    """One figure of the comparison table: how to read it from ExecutionFigures and show it."""

    name: str  # the finding kind's stem and report.json's key
    label: str
    value: Callable[[ExecutionFigures], float | None]
    unit: str  # s | B | B/s | 1/s | calls | calls/record


METRICS: tuple[Metric, ...] = (
    Metric("wall_time", "wall time", lambda f: f.duration_s, "s"),
    Metric("time_to_first_record", "time to first record", lambda f: f.time_to_first_record_s, "s"),
    Metric("records_per_second", "records/s", lambda f: f.records_per_s, "1/s"),
    Metric("bytes_per_second", "stdout bytes/s", lambda f: f.bytes_per_s, "B/s"),
    Metric("peak_memory", "peak memory", lambda f: f.peak_memory_bytes, "B"),
    Metric("cpu_time", "CPU time", lambda f: f.cpu_seconds, "s"),
    Metric("http_calls", "HTTP calls", lambda f: f.http_calls, "calls"),
    Metric("http_calls_per_record", "HTTP calls per record", lambda f: f.http_calls_per_record, "calls/record"),
)


def format_figure(value: float | None, unit: str) -> str:
    """A figure for people; "-" when there is none."""
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.2f} s"
    if unit in ("B", "B/s"):
        size, suffix = float(value), "/s" if unit == "B/s" else ""
        for prefix in ("B", "KiB", "MiB", "GiB"):
            if size < 1024 or prefix == "GiB":
                return f"{size:.0f} {prefix}{suffix}" if prefix == "B" else f"{size:.1f} {prefix}{suffix}"
            size /= 1024
    if unit == "1/s":
        return f"{value:,.0f}/s" if value >= 10 else f"{value:.2f}/s"
    if unit == "calls":
        return f"{int(value):,}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class MetricRow:
    metric: Metric
    control: float | None
    target: float | None
    flagged: bool

    @property
    def control_text(self) -> str:
        return format_figure(self.control, self.metric.unit)

    @property
    def target_text(self) -> str:
        return format_figure(self.target, self.metric.unit)

    @property
    def change_pct(self) -> float | None:
        if self.control is None or self.target is None or not self.control:
            return None
        return 100.0 * (self.target - self.control) / self.control


@dataclass
class PerformanceComparison(Comparison):
    title: ClassVar[str] = "Performance comparison"

    control_figures: ExecutionFigures | None = None
    target_figures: ExecutionFigures | None = None
    tolerance: float = DEFAULT_TOLERANCE
    floors: PerformanceFloors = field(default_factory=PerformanceFloors)
    # The control's second run (noise baseline) when there is one: the floors are at least its spread.
    baseline: ExecutionKey | None = None

    @property
    def flagged_metrics(self) -> set[str]:
        return {f.path for f in self.findings if f.severity is Severity.CHANGE and f.path}

    def rows(self) -> list[MetricRow]:
        """Every metric either side has a figure for, control vs target."""
        flagged = self.flagged_metrics
        rows = []
        for metric in METRICS:
            c = metric.value(self.control_figures) if self.control_figures else None
            t = metric.value(self.target_figures) if self.target_figures else None
            if c is not None or t is not None:
                rows.append(MetricRow(metric, c, t, metric.name in flagged))
        return rows

    def overview_lines(self) -> list[str]:
        lines = [f"tolerance {self.tolerance:.0%}; floors: time {self.floors.time_s:.3g} s, memory "
                 f"{self.floors.memory_bytes / 2**20:.3g} MiB, CPU {self.floors.cpu_s:.3g} s, "
                 f"HTTP {self.floors.http_calls} calls"]  # fmt: skip
        if self.baseline is not None:
            lines.append("floors raised to how much the control's two runs differed, where that was more")
        rows = self.rows()
        width = max((len(r.metric.label) for r in rows), default=0)
        lines += [f"{'':{width}}  {'control':>14}  {'target':>14}"]
        for r in rows:
            pct = f"  ({r.change_pct:+.0f}%)" if r.change_pct is not None else ""
            mark = "  <- flagged" if r.flagged else ""
            lines.append(f"{r.metric.label:{width}}  {r.control_text:>14}  {r.target_text:>14}{pct}{mark}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "tolerance": self.tolerance,
            "floors": asdict(self.floors),
            "figures": {
                side: None if figures is None else figures.to_dict()
                for side, figures in (("control", self.control_figures), ("target", self.target_figures))
            },
        }


_FIGURE_COLUMNS = (
    "duration_s", "time_to_first_record_s", "records", "stdout_bytes", "peak_memory_bytes", "cpu_seconds",
)  # fmt: skip


def execution_figures(con: duckdb.DuckDBPyConnection, control: ExecutionKey, target: ExecutionKey) -> dict[str, Any]:
    """{"control"|"target": ExecutionFigures} of the sides that have an executions row; one query."""
    if not table_exists(con, "executions"):
        return {}
    has_flows, has_captures = table_exists(con, HTTP_FLOWS_TABLE), table_exists(con, HTTP_CAPTURES_TABLE)
    has_records = table_exists(con, "records")
    of_both = f"(({key_filter('c')}) OR ({key_filter('t')}))"
    flows = (
        f"SELECT connector, version, command, count(*) AS calls FROM {HTTP_FLOWS_TABLE} WHERE {of_both} GROUP BY ALL"
        if has_flows
        else "SELECT NULL::VARCHAR AS connector, NULL::VARCHAR AS version, NULL::VARCHAR AS command, 0 AS calls LIMIT 0"
    )
    captures = (
        f"""SELECT connector, version, command, bool_or(coalesce(capture_enabled, false)) AS enabled,
                   min(error) AS error FROM {HTTP_CAPTURES_TABLE} WHERE {of_both} GROUP BY ALL"""
        if has_captures
        else """SELECT NULL::VARCHAR AS connector, NULL::VARCHAR AS version, NULL::VARCHAR AS command,
                       NULL::BOOLEAN AS enabled, NULL::VARCHAR AS error LIMIT 0"""
    )
    # Rows from before the `records` column: count the loaded records instead.
    counted = (
        """(SELECT count(*) FROM records r
            WHERE r.connector = e.connector AND r.version = e.version AND r.command = e.command)"""
        if has_records
        else "NULL"
    )
    # A duck.db of an older version, not opened by the store since (which adds them), lacks some columns.
    present = table_columns(con, "executions")
    col = {name: f"e.{name}" if name in present else "NULL" for name in _FIGURE_COLUMNS}
    rows = fetch_dicts(
        con,
        f"""WITH flows AS ({flows}), captures AS ({captures})
        SELECT CASE WHEN {key_filter("c", "e")} THEN 'control' ELSE 'target' END AS side,
               e.connector, e.version, e.command, {col["duration_s"]} AS duration_s,
               {col["time_to_first_record_s"]} AS time_to_first_record_s,
               coalesce({col["records"]}, {counted}) AS records, {col["stdout_bytes"]} AS stdout_bytes,
               {col["peak_memory_bytes"]} AS peak_memory_bytes, {col["cpu_seconds"]} AS cpu_seconds,
               CASE WHEN cap.enabled AND cap.error IS NULL THEN coalesce(f.calls, 0) END AS http_calls,
               CASE WHEN cap.enabled IS NULL THEN 'no record of an HTTP capture'
                    WHEN NOT cap.enabled THEN 'capture was off (--disable-proxy)'
                    WHEN cap.error IS NOT NULL THEN 'capture failed: ' || cap.error END AS http_note
        FROM executions e
        LEFT JOIN flows f USING (connector, version, command)
        LEFT JOIN captures cap USING (connector, version, command)
        WHERE {key_filter("c", "e")} OR {key_filter("t", "e")}""",
        both_params(control, target),
    )
    figures = {}
    for row in rows:
        side = row.pop("side")
        key = ExecutionKey(row.pop("connector"), row.pop("version"), row.pop("command"))
        figures[side] = ExecutionFigures(key=key, **row)
    if control == target and "control" in figures:  # the same execution on both sides
        figures["target"] = figures["control"]
    return figures


def compare_performance(
    con: duckdb.DuckDBPyConnection,
    control: ExecutionKey,
    target: ExecutionKey,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    floors: PerformanceFloors = DEFAULT_FLOORS,
    baseline: ExecutionKey | None = None,
) -> PerformanceComparison:
    """Flag each figure where the target is worse than the control beyond `tolerance` and the floors.

    `baseline`: the control run a second time (the noise baseline). A target may differ from the
    control as much as the control differed from itself: each floor is at least that spread.
    """
    figures = execution_figures(con, control, target)
    c, t = figures.get("control"), figures.get("target")
    rerun = execution_figures(con, control, baseline).get("target") if baseline is not None else None
    if c is not None and rerun is not None:
        floors = _with_spread(floors, c, rerun)
    result = PerformanceComparison(control, target, control_figures=c, target_figures=t, tolerance=tolerance,
                                   floors=floors, baseline=baseline if rerun is not None else None)  # fmt: skip
    if c is None or t is None:
        for side, key, got in (("control", control, c), ("target", target, t)):
            if got is None:
                _note(result, "performance_not_measured", f"no figures for the {side} ({key}): no executions row")
        return result
    _missing_measurements(result, c, t)
    worse = _Worse(result, tolerance)
    worse.more("wall_time", c.duration_s, t.duration_s, floors.time_s, "s")
    worse.more("time_to_first_record", c.time_to_first_record_s, t.time_to_first_record_s, floors.time_s, "s")
    if c.records_per_s and t.records_per_s and t.records and t.duration_s:
        # Flagged when, at the control's pace, the target's records would take at least the time floor less.
        lost_s = t.duration_s - t.records / c.records_per_s
        if t.records_per_s * (1 + tolerance) < c.records_per_s and lost_s >= floors.time_s:
            worse.flag("records_per_second", c.records_per_s, t.records_per_s,
                       f"the target reads {t.records_per_s:,.1f} records/s, the control {c.records_per_s:,.1f} "
                       f"({lost_s:.1f} s more for its {t.records:,} records)")  # fmt: skip
    worse.more("peak_memory", c.peak_memory_bytes, t.peak_memory_bytes, floors.memory_bytes, "B")
    worse.more("cpu_time", c.cpu_seconds, t.cpu_seconds, floors.cpu_s, "s")
    if c.http_calls is not None and t.http_calls is not None:
        c_rate, t_rate = c.http_calls_per_record, t.http_calls_per_record
        if c_rate is not None and t_rate is not None and t.records:
            extra = t.http_calls - t.records * c_rate  # calls beyond the control's rate, for the target's records
            if t_rate > c_rate * (1 + tolerance) and extra >= floors.http_calls:
                worse.flag("http_calls_per_record", c_rate, t_rate,
                           f"the target makes {t_rate:.3g} HTTP calls per record, the control {c_rate:.3g} "
                           f"({t.http_calls:,} calls for {t.records:,} records, the control {c.http_calls:,} "
                           f"for {c.records:,})")  # fmt: skip
        elif not c.records or not t.records:
            worse.more("http_calls", c.http_calls, t.http_calls, floors.http_calls, "calls")
    return result


def _with_spread(floors: PerformanceFloors, control: ExecutionFigures, rerun: ExecutionFigures) -> PerformanceFloors:
    """The floors, each raised to how much the control's second run differed from its first."""

    def spread(*pairs: tuple[float | None, float | None]) -> float:
        return max((abs(a - b) for a, b in pairs if a is not None and b is not None), default=0.0)

    return PerformanceFloors(
        time_s=max(floors.time_s, spread((control.duration_s, rerun.duration_s),
                                         (control.time_to_first_record_s, rerun.time_to_first_record_s))),
        memory_bytes=int(max(floors.memory_bytes, spread((control.peak_memory_bytes, rerun.peak_memory_bytes)))),
        cpu_s=max(floors.cpu_s, spread((control.cpu_seconds, rerun.cpu_seconds))),
        http_calls=int(max(floors.http_calls, spread((control.http_calls, rerun.http_calls)))),
    )  # fmt: skip


@dataclass
class _Worse:
    result: PerformanceComparison
    tolerance: float

    def more(self, name: str, control: float | None, target: float | None, floor: float, unit: str) -> None:
        """Flag a figure where more is worse: target above control by the tolerance and the floor."""
        if control is None or target is None:
            return
        if target > control * (1 + self.tolerance) and target - control >= floor:
            label = next(m.label for m in METRICS if m.name == name)
            pct = f" (+{100 * (target - control) / control:.0f}%)" if control else ""
            self.flag(name, control, target,
                      f"{label}: the target {format_figure(target, unit)}, the control "
                      f"{format_figure(control, unit)}{pct}")  # fmt: skip

    def flag(self, name: str, control: float, target: float, message: str) -> None:
        kind = f"{name}_decreased" if name == "records_per_second" else f"{name}_increased"
        self.result.findings.append(Finding(kind, Severity.CHANGE, message, path=name, control=control, target=target))


def _note(result: PerformanceComparison, kind: str, message: str, path: str | None = None) -> None:
    result.findings.append(Finding(kind, Severity.INFO, message, path=path))


def _missing_measurements(result: PerformanceComparison, c: ExecutionFigures, t: ExecutionFigures) -> None:
    """Say which figure a side lacks: a comparison without it is not a comparison with 0."""
    measured = (
        ("peak_memory", "peak memory", lambda f: f.peak_memory_bytes, "no memory sample: no cgroup figure"),
        ("cpu_time", "CPU time", lambda f: f.cpu_seconds, "no CPU sample: no cgroup figure"),
        ("bytes_per_second", "stdout bytes", lambda f: f.stdout_bytes, "a duck.db of an older version"),
    )
    for name, label, value, why in measured:
        sides = [side for side, f in (("control", c), ("target", t)) if value(f) is None]
        if sides:
            _note(result, "performance_figure_missing",
                  f"{label} not compared: not measured for the {' and '.join(sides)} ({why})", path=name)  # fmt: skip
    if c.http_calls is None or t.http_calls is None:
        notes = {side: f.http_note for side, f in (("control", c), ("target", t)) if f.http_calls is None}
        why = "; ".join(f"{side}: {note}" for side, note in notes.items())
        _note(result, "performance_figure_missing", f"HTTP calls not compared ({why})", path="http_calls")
