"""Compare what control and target asked of the APIs: their HTTP calls, endpoint by endpoint.

Endpoints are method + host + path template (see `http_endpoints` for how paths are folded).
Counts are compared with a tolerance: a difference counts when it exceeds
max(count_floor, count_tolerance × the control's count), so paging or a retry more or less on a
busy endpoint is not a finding. Order of requests never matters.

Findings:
- `http_not_captured` (info): either side's traffic was not captured (proxy off or failed); nothing
  else is compared.
- `http_error_status_added` (breaking): target got an error status (>= 400, or no response) at an
  endpoint where control did not get it.
- `http_endpoint_added`, `http_endpoint_removed`, `http_request_count_changed`,
  `http_query_parameter_added`, `http_query_parameter_removed`, `http_query_values_changed`,
  `http_retries_up`, `http_pagination_changed`, `http_calls_per_record_up` (change).
- `http_error_status_resolved` (info): control's error status no longer seen in target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from live_tests.compare.diff import Comparison, Finding, Severity, dumps_line
from live_tests.compare.http_endpoints import EndpointCalls, HttpEndpoint, http_endpoints, is_page_param
from live_tests.compare.http_traffic import capture_status
from live_tests.models import ExecutionKey

_OVERVIEW_ENDPOINTS = 25
ENDPOINTS_FILE = "http_endpoints.jsonl"
_Beyond = Callable[[float, float], bool]  # whether a count moved beyond the tolerance


@dataclass
class HttpCallsComparison(Comparison):
    title: ClassVar[str] = "HTTP calls comparison"

    captured: bool = True
    control_mode: str | None = None  # capture | cache | replay
    target_mode: str | None = None
    endpoints: list[HttpEndpoint] = field(default_factory=list)
    control_requests: int = 0
    target_requests: int = 0
    control_records: int | None = None  # when the caller gave them
    target_records: int | None = None

    @property
    def control_calls_per_record(self) -> float | None:
        return _per_record(self.control_requests, self.control_records)

    @property
    def target_calls_per_record(self) -> float | None:
        return _per_record(self.target_requests, self.target_records)

    def overview_lines(self) -> list[str]:
        if not self.captured:
            return ["HTTP traffic not compared: it was not captured on both sides"]
        c_endpoints = sum(e.control is not None for e in self.endpoints)
        t_endpoints = sum(e.target is not None for e in self.endpoints)
        lines = [
            f"requests: control {self.control_requests} ({c_endpoints} endpoints),"
            f" target {self.target_requests} ({t_endpoints} endpoints)"
        ]
        if self.control_mode != self.target_mode:
            lines.append(f"proxy mode: control {self.control_mode}, target {self.target_mode}")
        c_rate, t_rate = self.control_calls_per_record, self.target_calls_per_record
        if c_rate is not None or t_rate is not None:
            lines.append(f"calls per record: control {_rate(c_rate)}, target {_rate(t_rate)}")
        busiest = sorted(self.endpoints, key=lambda e: -max(_requests(e.control), _requests(e.target)))
        for e in busiest[:_OVERVIEW_ENDPOINTS]:
            lines.append(f"  {e.name}: control {_requests(e.control)}, target {_requests(e.target)}")
        if len(busiest) > _OVERVIEW_ENDPOINTS:
            lines.append(f"  … and {len(busiest) - _OVERVIEW_ENDPOINTS} more endpoints (see {ENDPOINTS_FILE})")
        return lines

    def _write_extra_files(self, directory: Path) -> list[Path]:
        path = directory / ENDPOINTS_FILE
        with open(path, "wb") as f:
            for endpoint in self.endpoints:
                f.write(dumps_line(endpoint.to_dict()))
        return [path]


def compare_http_calls(
    con: duckdb.DuckDBPyConnection,
    control: ExecutionKey,
    target: ExecutionKey,
    *,
    count_tolerance: float = 0.25,
    count_floor: int = 2,
    records: Mapping[str, int] | None = None,
) -> HttpCallsComparison:
    """Diff the endpoints, counts, statuses, query parameters, retries and pagination of two executions.

    `records`: {"control": n, "target": m}, the records each execution emitted, for calls per record.
    """
    if records is not None and not {"control", "target"} <= set(records):
        raise ValueError("records must give the record counts of both 'control' and 'target'")
    result = HttpCallsComparison(control, target)
    captures = {side: capture_status(con, key) for side, key in (("control", control), ("target", target))}
    result.control_mode = captures["control"].mode if captures["control"] else None
    result.target_mode = captures["target"].mode if captures["target"] else None
    for side, capture in captures.items():
        if capture is None or not capture.complete:
            result.captured = False
            reason = capture.describe() if capture else "no capture recorded"
            result.findings.append(
                Finding("http_not_captured", Severity.INFO, f"HTTP calls not compared: {side} not captured ({reason})")
            )
    if not result.captured:
        return result

    result.endpoints = http_endpoints(con, control, target)
    result.control_requests = sum(_requests(e.control) for e in result.endpoints)
    result.target_requests = sum(_requests(e.target) for e in result.endpoints)
    if records is not None:
        result.control_records, result.target_records = int(records["control"]), int(records["target"])

    def beyond(c: float, t: float) -> bool:
        return abs(t - c) > max(count_floor, count_tolerance * c)

    for endpoint in result.endpoints:
        result.findings += _endpoint_findings(endpoint, beyond)
    if result.control_records and result.target_records:
        # The target's requests against what the control's rate would make for the target's records.
        expected = result.control_requests / result.control_records * result.target_records
        if result.target_requests > expected and beyond(expected, result.target_requests):
            result.findings.append(
                Finding(
                    "http_calls_per_record_up", Severity.CHANGE,
                    f"calls per record: {_rate(result.control_calls_per_record)} ->"
                    f" {_rate(result.target_calls_per_record)} ({result.control_requests} requests for"
                    f" {result.control_records} records -> {result.target_requests} for {result.target_records})",
                    control=result.control_calls_per_record, target=result.target_calls_per_record,
                )
            )  # fmt: skip
    return result


def _endpoint_findings(e: HttpEndpoint, beyond: _Beyond) -> list[Finding]:
    c, t = e.control, e.target
    if c is None:
        assert t is not None  # an endpoint is requested by at least one side
        # Added/removed endpoints are changes, not regressions: a connector may reorganise its calls
        # and still emit the same data, which the records comparison judges.
        return [
            _finding(e, "http_endpoint_added", Severity.CHANGE, f"new endpoint in target ({t.requests} requests)",
                     target=t.requests),
            *_status_findings(e, {}, t.error_statuses),
        ]  # fmt: skip
    if t is None:
        return [
            _finding(e, "http_endpoint_removed", Severity.CHANGE,
                     f"no longer requested by target (control: {c.requests} requests)", control=c.requests)
        ]  # fmt: skip
    findings = _status_findings(e, c.error_statuses, t.error_statuses)
    if beyond(c.requests, t.requests):
        findings.append(
            _finding(e, "http_request_count_changed", Severity.CHANGE, f"{c.requests} -> {t.requests} requests",
                     control=c.requests, target=t.requests)
        )  # fmt: skip
    findings += _param_findings(e, c, t)
    if t.repeats > c.repeats and beyond(c.repeats, t.repeats):
        findings.append(
            _finding(e, "http_retries_up", Severity.CHANGE,
                     f"repeated requests (retries) {c.repeats} -> {t.repeats}", control=c.repeats, target=t.repeats)
        )  # fmt: skip
    if (c.paged_runs > 0) != (t.paged_runs > 0):
        paged, flat = ("control", "target") if c.paged_runs else ("target", "control")
        most = max(c.max_pages, t.max_pages)
        findings.append(
            _finding(e, "http_pagination_changed", Severity.CHANGE,
                     f"paginated in {paged} (up to {most} pages), not in {flat}", control=c.max_pages,
                     target=t.max_pages)
        )  # fmt: skip
    return findings


def _status_findings(e: HttpEndpoint, control: dict[str, int], target: dict[str, int]) -> list[Finding]:
    findings = []
    added = {s: n for s, n in target.items() if s not in control}
    if added:
        findings.append(
            _finding(e, "http_error_status_added", Severity.BREAKING,
                     f"new error statuses in target: {_statuses(added)}"
                     f" ({f'control: {_statuses(control)}' if control else 'control had none'})",
                     control=control, target=added, count=sum(added.values()))
        )  # fmt: skip
    resolved = {s: n for s, n in control.items() if s not in target}
    if resolved:
        findings.append(
            _finding(e, "http_error_status_resolved", Severity.INFO,
                     f"control's error statuses no longer in target: {_statuses(resolved)}", control=resolved)
        )  # fmt: skip
    return findings


def _param_findings(e: HttpEndpoint, c: EndpointCalls, t: EndpointCalls) -> list[Finding]:
    findings = []
    for name in sorted(set(c.params) | set(t.params)):
        cp, tp = c.params.get(name), t.params.get(name)
        if cp is None:
            assert tp is not None
            findings.append(
                _finding(e, "http_query_parameter_added", Severity.CHANGE,
                         f"query parameter `{name}` added ({tp.describe()})", target=tp.values or tp.distinct)
            )  # fmt: skip
        elif tp is None:
            findings.append(
                _finding(e, "http_query_parameter_removed", Severity.CHANGE,
                         f"query parameter `{name}` removed (was {cp.describe()})", control=cp.values or cp.distinct)
            )  # fmt: skip
        elif is_page_param(name):
            continue  # page positions: their values follow the pages, compared as pagination
        elif (cp.values is not None or tp.values is not None) and cp.values != tp.values:
            findings.append(
                _finding(e, "http_query_values_changed", Severity.CHANGE,
                         f"`{name}` {cp.describe()} -> {tp.describe()}",
                         control=cp.values or cp.distinct, target=tp.values or tp.distinct)
            )  # fmt: skip
    return findings


def _finding(
    e: HttpEndpoint,
    kind: str,
    severity: Severity,
    text: str,
    *,
    control: Any = None,
    target: Any = None,
    count: int | None = None,
) -> Finding:
    # `path` carries the endpoint: findings of one endpoint group together in the report.
    return Finding(kind, severity, f"{e.name}: {text}", path=e.name, control=control, target=target, count=count)


def _statuses(statuses: dict[str, int]) -> str:
    return ", ".join(f"{s} x{n}" for s, n in sorted(statuses.items()))


def _requests(calls: EndpointCalls | None) -> int:
    return calls.requests if calls else 0


def _per_record(requests: int, records: int | None) -> float | None:
    return requests / records if records else None


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.3g}"
