"""HTTP calls comparison: each planted difference in the proxy's flows gives exactly its finding.

Flows are written as the proxy writes them (one `http_flows.jsonl` line per request) and loaded by
the store (`insert_http_capture`) into a real duck.db file; no Docker.
"""

from __future__ import annotations

import random
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from live_tests.compare import Severity, compare_http_calls
from live_tests.compare.http_calls import HttpCallsComparison
from live_tests.models import ExecutionKey, HttpCapture
from live_tests.store import http_flows
from live_tests.store.session_db import SessionDatabase

CONTROL = ExecutionKey("source-pokeapi", "1.0.0", "read")
TARGET = ExecutionKey("source-pokeapi", "2.0.0", "read")
API = "https://api.example.com"
UUID = "3f2a9c1e-8b7d-4e6f-a5c4-1d2e3f4a5b6c"

Call = str | tuple[str, str] | tuple[str, str, int | None]  # url | (method, url) | (method, url, status)


class Session:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.db = SessionDatabase(tmp_path / "duck.db")
        self.db.create_tables(http_flows.SCHEMA)
        self.con: duckdb.DuckDBPyConnection = self.db.connection()

    def plant(self, key: ExecutionKey, calls: list[Call], *, enabled: bool = True, error: str | None = None) -> None:
        flows = self.tmp_path / f"{key.version}.jsonl"
        with open(flows, "wb") as f:
            for call in calls:
                method, url, status = _call(call)
                split = urllib.parse.urlsplit(url)
                line = {
                    "method": method, "url": url, "host": split.hostname, "path": split.path, "query": split.query,
                    "status": status, "request_size": 0, "response_size": 0 if status is None else 100,
                    "duration_ms": 1.0, "cache_hit": False, "error": None if status else "connection reset",
                }  # fmt: skip
                f.write(orjson.dumps(line) + b"\n")
        capture = HttpCapture(
            enabled=enabled,
            mode="capture" if enabled else "disabled",
            error=error,
            flows_path=flows if enabled else None,
        )
        http_flows.insert_http_capture(self.con, key, capture)

    def compare(self, control: list[Call], target: list[Call], **kwargs: object) -> HttpCallsComparison:
        self.plant(CONTROL, control)
        self.plant(TARGET, target)
        return compare_http_calls(self.con, CONTROL, TARGET, **kwargs)  # type: ignore[arg-type]


def _call(call: Call) -> tuple[str, str, int | None]:
    if isinstance(call, str):
        return "GET", call, 200
    if len(call) == 2:
        return call[0], call[1], 200
    return call  # type: ignore[return-value]


@pytest.fixture
def session(tmp_path: Path) -> Session:
    return Session(tmp_path)


def messages(result: HttpCallsComparison) -> list[str]:
    return [f.message for f in result.findings]


def pokemon_pages(per_page: int, pages: int) -> list[Call]:
    return [f"{API}/pokemon?per_page={per_page}&page={n}" for n in range(1, pages + 1)]


def test_same_calls_in_another_order_give_no_finding(session: Session) -> None:
    calls: list[Call] = [*pokemon_pages(20, 3), *(f"{API}/pokemon/{n}" for n in range(1, 11)), ("POST", f"{API}/token")]
    shuffled = calls[::-1]
    result = session.compare(calls, shuffled)
    assert result.findings == []
    assert result.passed and not result.has_differences
    assert (result.control_requests, result.target_requests) == (14, 14)
    names = [e.name for e in result.endpoints]
    assert names == ["GET api.example.com/pokemon", "GET api.example.com/pokemon/{id}", "POST api.example.com/token"]
    listing = result.endpoints[0]
    assert listing.control == listing.target
    assert listing.control is not None
    assert (listing.control.requests, listing.control.paged_runs, listing.control.max_pages) == (3, 1, 3)
    assert listing.control.params["per_page"].values == ["20"]
    assert listing.control.params["page"].values == ["1", "2", "3"]


def test_identical_calls_with_other_ids_in_another_order_give_no_finding(session: Session) -> None:
    ids = list(range(100, 140))
    other_ids = random.Random(7).sample(range(5000, 9000), len(ids))
    control = [f"{API}/v1/users/{i}/orders?limit=50" for i in ids] + [f"{API}/v1/items/{UUID}"]
    target = [f"{API}/v1/users/{i}/orders?limit=50" for i in other_ids] + [f"{API}/v1/items/{UUID[::-1]}"]
    result = session.compare(control, target)
    assert result.findings == []
    assert [e.name for e in result.endpoints] == [
        "GET api.example.com/v1/items/{id}",
        "GET api.example.com/v1/users/{id}/orders",
    ]


def test_page_size_change_is_a_query_parameter_finding(session: Session) -> None:
    result = session.compare(pokemon_pages(20, 3), pokemon_pages(50, 3))
    assert messages(result) == ["GET api.example.com/pokemon: `per_page` 20 -> 50"]
    finding = result.findings[0]
    assert (finding.kind, finding.severity, finding.control, finding.target) == (
        "http_query_values_changed", Severity.CHANGE, ["20"], ["50"],
    )  # fmt: skip
    assert result.passed


def test_query_parameter_added_and_removed(session: Session) -> None:
    result = session.compare([f"{API}/moves?lang=en"], [f"{API}/moves?fields=name"])
    assert sorted(messages(result)) == [
        "GET api.example.com/moves: query parameter `fields` added (name)",
        "GET api.example.com/moves: query parameter `lang` removed (was en)",
    ]
    few_to_many = session.compare(
        [f"{API}/moves?lang=en&id=1", f"{API}/moves?lang=en&id=2"], [f"{API}/moves?lang=en&id={n}" for n in range(8)]
    )
    # 2 -> 8 requests is a count change too (beyond max(2, 25% of 2)).
    assert messages(few_to_many) == [
        "GET api.example.com/moves: 2 -> 8 requests",
        "GET api.example.com/moves: `id` 1, 2 -> 8 values",
    ]


def test_endpoint_added_and_removed(session: Session) -> None:
    result = session.compare(
        [f"{API}/pokemon/1", f"{API}/abilities"], [f"{API}/pokemon/1", f"{API}/types", f"{API}/types"]
    )
    assert sorted((f.kind, f.severity, f.message) for f in result.findings) == [
        ("http_endpoint_added", Severity.CHANGE, "GET api.example.com/types: new endpoint in target (2 requests)"),
        ("http_endpoint_removed", Severity.CHANGE,
         "GET api.example.com/abilities: no longer requested by target (control: 1 requests)"),
    ]  # fmt: skip
    assert result.passed
    failing = session.compare([f"{API}/pokemon/1"], [f"{API}/pokemon/1", ("GET", f"{API}/types", 404)])
    assert [(f.kind, f.severity) for f in failing.findings] == [
        ("http_endpoint_added", Severity.CHANGE), ("http_error_status_added", Severity.BREAKING),
    ]  # fmt: skip


def test_doubled_calls_beyond_tolerance_and_small_changes_within(session: Session) -> None:
    control = [f"{API}/pokemon/{n}" for n in range(12)] + [f"{API}/berries/{n}" for n in range(12)]
    target = [f"{API}/pokemon/{n}" for n in range(24)] + [f"{API}/berries/{n}" for n in range(14)]
    result = session.compare(control, target)
    # berries 12 -> 14: within max(2, 25% of 12).
    assert messages(result) == ["GET api.example.com/pokemon/{id}: 12 -> 24 requests"]
    assert result.findings[0].kind == "http_request_count_changed"
    strict = compare_http_calls(session.con, CONTROL, TARGET, count_tolerance=0.1, count_floor=1)
    assert [f.path for f in strict.of_kind("http_request_count_changed")] == [
        "GET api.example.com/berries/{id}",
        "GET api.example.com/pokemon/{id}",
    ]


def test_new_error_statuses_are_breaking(session: Session) -> None:
    control: list[Call] = [("GET", f"{API}/pokemon/{n}", 200) for n in range(5)] + [("GET", f"{API}/pokemon/9", 500)]
    target: list[Call] = [
        *(("GET", f"{API}/pokemon/{n}", 200) for n in range(3)),
        ("GET", f"{API}/pokemon/3", 429), ("GET", f"{API}/pokemon/4", 429), ("GET", f"{API}/pokemon/9", 500),
        ("GET", f"{API}/pokemon/8", None),
    ]  # fmt: skip
    result = session.compare(control, target)
    assert not result.passed
    assert [(f.kind, f.severity, f.message) for f in result.findings] == [
        ("http_error_status_added", Severity.BREAKING,
         "GET api.example.com/pokemon/{id}: new error statuses in target: 429 x2, none x1 (control: 500 x1)"),
    ]  # fmt: skip
    assert result.findings[0].count == 3
    fresh = session.compare([f"{API}/pokemon/1"], [("GET", f"{API}/pokemon/1", 500)])
    assert messages(fresh) == [
        "GET api.example.com/pokemon/{id}: new error statuses in target: 500 x1 (control had none)"
    ]


def test_error_statuses_resolved_are_a_note(session: Session) -> None:
    result = session.compare([("GET", f"{API}/pokemon/1", 503)], [("GET", f"{API}/pokemon/1", 200)])
    assert [(f.kind, f.severity) for f in result.findings] == [("http_error_status_resolved", Severity.INFO)]
    assert result.passed and not result.has_differences


def test_path_folding(session: Session) -> None:
    names = ["bulbasaur", "ivysaur", "venusaur", "charmander", "charmeleon", "charizard", "squirtle", "wartortle",
             "blastoise", "caterpie", "metapod", "butterfree", "weedle", "kakuna", "beedrill", "pidgey", "pidgeotto",
             "pidgeot", "rattata", "raticate", "spearow"]  # fmt: skip
    assert len(names) == 21  # more than FOLD_MIN_DISTINCT: the position is variable
    calls: list[Call] = [
        f"{API}/pokemon/1", f"{API}/pokemon/2", f"{API}/v1/users/{UUID}", f"{API}/v1/users/{UUID}/orders",
        f"{API}/v1/blobs/9f86d081884c7d659a2feaa0c55ad015", f"{API}/v1/report/2024-01-31",
        f"{API}/v1/charges/ch_3MmlLrLkdIwHu7ix0snN0B15",
        *(f"{API}/species/{name}" for name in names),
        # A few collections, each paged: names kept.
        *(f"{API}/v2/{collection}?page={n}" for collection in ("moves", "items", "types") for n in range(8)),
    ]  # fmt: skip
    result = session.compare(calls, calls)
    assert result.findings == []
    assert [e.path for e in result.endpoints] == [
        "/pokemon/{id}", "/species/{name}", "/v1/blobs/{id}", "/v1/charges/{id}", "/v1/report/{date}",
        "/v1/users/{id}", "/v1/users/{id}/orders", "/v2/items", "/v2/moves", "/v2/types",
    ]  # fmt: skip


def test_few_names_are_not_folded(session: Session) -> None:
    result = session.compare([f"{API}/pokemon/ditto"], [f"{API}/pokemon/pikachu"])
    assert sorted(f.kind for f in result.findings) == ["http_endpoint_added", "http_endpoint_removed"]


def test_a_retried_request(session: Session) -> None:
    control = [f"{API}/pokemon/{n}" for n in range(20)]
    target = [*control, *[f"{API}/pokemon/3"] * 3]
    result = session.compare(control, target)
    # 20 -> 23 requests is within the count tolerance; the repeats are not.
    assert messages(result) == ["GET api.example.com/pokemon/{id}: repeated requests (retries) 0 -> 3"]
    assert result.findings[0].kind == "http_retries_up"
    assert result.endpoints[0].target is not None and result.endpoints[0].target.repeats == 3


def test_pagination_dropped(session: Session) -> None:
    result = session.compare(pokemon_pages(20, 3), pokemon_pages(20, 1))
    assert messages(result) == ["GET api.example.com/pokemon: paginated in control (up to 3 pages), not in target"]


def test_calls_per_record_up(session: Session) -> None:
    calls = [f"{API}/pokemon/{n}" for n in range(40)]
    fewer_records = session.compare(calls, calls, records={"control": 100, "target": 50})
    assert [(f.kind, f.message) for f in fewer_records.findings] == [
        ("http_calls_per_record_up", "calls per record: 0.4 -> 0.8 (40 requests for 100 records -> 40 for 50)"),
    ]
    assert fewer_records.target_calls_per_record == pytest.approx(0.8)
    assert compare_http_calls(session.con, CONTROL, TARGET, records={"control": 100, "target": 90}).findings == []
    assert compare_http_calls(session.con, CONTROL, TARGET).findings == []  # no records: no rate
    with pytest.raises(ValueError, match="control"):
        compare_http_calls(session.con, CONTROL, TARGET, records={"1.0.0": 100})


def test_more_calls_for_more_records_is_no_rate_change(session: Session) -> None:
    control = [f"{API}/pokemon/{n}" for n in range(10)]
    target = [f"{API}/pokemon/{n}" for n in range(13)]
    result = session.compare(control, target, records={"control": 100, "target": 130})
    assert [f.kind for f in result.findings] == ["http_request_count_changed"]


def test_capture_off_or_failed_is_not_compared(session: Session) -> None:
    session.plant(CONTROL, [f"{API}/pokemon/1"])
    session.plant(TARGET, [], enabled=False)
    result = compare_http_calls(session.con, CONTROL, TARGET)
    assert not result.captured and result.endpoints == []
    assert [(f.kind, f.severity, f.message) for f in result.findings] == [
        ("http_not_captured", Severity.INFO,
         "HTTP calls not compared: target not captured (capture was off (--disable-proxy))"),
    ]  # fmt: skip
    assert result.passed and not result.has_differences

    session.plant(TARGET, [], error="proxy exited with code 1")
    assert messages(compare_http_calls(session.con, CONTROL, TARGET)) == [
        "HTTP calls not compared: target not captured (capture failed: proxy exited with code 1)"
    ]
    other = ExecutionKey("source-pokeapi", "3.0.0", "read")  # no capture row at all
    assert messages(compare_http_calls(session.con, other, TARGET))[0] == (
        "HTTP calls not compared: control not captured (no capture recorded)"
    )


def test_no_capture_tables_at_all(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "old.db"))
    result = compare_http_calls(con, CONTROL, TARGET)
    assert not result.captured
    assert [f.kind for f in result.findings] == ["http_not_captured", "http_not_captured"]


def test_diff_files_carry_the_endpoints(session: Session, tmp_path: Path) -> None:
    result = session.compare(pokemon_pages(20, 2), [*pokemon_pages(50, 2), f"{API}/types"])
    written = result.write_diff_files(tmp_path / "http")
    assert [p.name for p in written] == ["summary.txt", "findings.json", "http_endpoints.jsonl"]
    rows = [orjson.loads(line) for line in (tmp_path / "http" / "http_endpoints.jsonl").read_bytes().splitlines()]
    assert [(r["endpoint"], r["control"] and r["control"]["requests"], r["target"]["requests"]) for r in rows] == [
        ("GET api.example.com/pokemon", 2, 2),
        ("GET api.example.com/types", None, 1),
    ]
    assert rows[0]["target"]["params"]["per_page"] == {"distinct": 1, "values": ["50"]}
    summary = (tmp_path / "http" / "summary.txt").read_text()
    assert "requests: control 2 (1 endpoints), target 3 (2 endpoints)" in summary
    assert "GET api.example.com/pokemon: `per_page` 20 -> 50" in summary


def test_now_stamped_query_values_are_not_differences(session: Session) -> None:
    def run(key: ExecutionKey, start: datetime) -> None:
        session.con.execute(
            "INSERT INTO executions (connector, version, command, started_at, finished_at) VALUES (?, ?, ?, ?, ?)",
            [*key, start, start + timedelta(seconds=30)],
        )

    def calls(now: datetime, start_date: str) -> list[Call]:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        return [f"{API}/events?start_date={start_date}&end_date={stamp}&ts={int(now.timestamp() * 1000)}"]

    control_start, target_start = datetime(2026, 12, 2, 10, 0, tzinfo=UTC), datetime(2026, 12, 2, 10, 7, tzinfo=UTC)
    control = calls(control_start + timedelta(seconds=5), "2020-01-01T00:00:00Z")
    target = calls(target_start + timedelta(seconds=9), "2021-01-01T00:00:00Z")
    no_windows = session.compare(control, target)
    assert sorted(f.message.split(": ", 1)[1].split(" ")[0] for f in no_windows.findings) == [
        "`end_date`", "`start_date`", "`ts`",
    ]  # fmt: skip
    run(CONTROL, control_start)
    run(TARGET, target_start)
    result = compare_http_calls(session.con, CONTROL, TARGET)
    # Only the configured start date differs; "now" (ISO or epoch milliseconds) is the same on both sides.
    assert messages(result) == [
        "GET api.example.com/events: `start_date` 2020-01-01T00:00:00Z -> 2021-01-01T00:00:00Z",
    ]
    assert result.endpoints[0].control is not None
    assert result.endpoints[0].control.params["end_date"].values == ["{now}"]
