"""Report stage: report.html / report.md / report.json show the run's numbers, failures first.

The context is built from a real duck.db (executions loaded with SessionDatabase) and real
comparison results; the HTML is also rendered by headless Chromium and the screenshot checked.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from live_tests.compare import compare_catalogs, compare_records, compare_spec
from live_tests.models import ExecutionKey
from live_tests.reports import (
    CountRow,
    Outcome,
    ReportContext,
    StreamCoverage,
    TestResult,
    build_report_context,
    write_reports,
)
from tests.test_compare import USERS, SessionBuilder, catalog, record, spec, stream_state
from tests.test_compare_documents import CATALOG_STREAMS, SPEC

CONTROL, TARGET = "1.0.0", "2.0.0"
DATE = datetime(2024, 5, 17, 9, 30, tzinfo=UTC)


@pytest.fixture
def session_con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """A run of two versions: spec identical, catalog with a removed stream, reads that differ."""
    s = SessionBuilder(tmp_path)
    s.load(CONTROL, "spec", [spec(SPEC)])
    s.load(TARGET, "spec", [spec(SPEC)])
    s.load(CONTROL, "discover", [catalog(CATALOG_STREAMS)])
    s.load(TARGET, "discover", [catalog(CATALOG_STREAMS[:2])])
    control_users = [record("users", u) for u in USERS]  # 10 records
    target_users = [record("users", {**u, "name": "x"} if u["id"] == 5 else u) for u in USERS if u["id"] != 3]
    orders = [record("orders", {"id": i}) for i in range(1, 4)]
    s.load(CONTROL, "read", [*control_users, *orders, stream_state("users", {"c": 1})])
    s.load(TARGET, "read", [*target_users, *orders, *orders[:1], stream_state("users", {"c": 1})])
    con = s.connect()
    con.execute(
        """CREATE TABLE http_flows (connector VARCHAR, version VARCHAR, command VARCHAR, seq BIGINT,
           method VARCHAR, url VARCHAR, host VARCHAR, path VARCHAR, query VARCHAR, status INTEGER,
           request_size BIGINT, response_size BIGINT, duration_ms DOUBLE, cache_hit BOOLEAN, error VARCHAR)"""
    )
    flows = [  # (version, command, path, status, response bytes, cache hit)
        (CONTROL, "read", "/users", 200, 2048, False),
        (CONTROL, "read", "/orders", 200, 1024, False),
        (CONTROL, "check", "/me", 200, 64, False),
        (TARGET, "read", "/users", 200, 2048, True),
        (TARGET, "read", "/orders", 500, 10, False),
    ]
    con.executemany(
        "INSERT INTO http_flows VALUES ('source-test', ?, ?, 1, 'GET', 'u', 'api.example.com', ?, '', ?, 100, ?, 5,"
        " ?, NULL)",
        flows,
    )
    return con


def make_results(con: duckdb.DuckDBPyConnection, diff_root: Path) -> list[TestResult]:
    def keys(command: str) -> tuple[ExecutionKey, ExecutionKey]:
        return ExecutionKey("source-test", CONTROL, command), ExecutionKey("source-test", TARGET, command)

    records = compare_records(con, *keys("read"), {"users": [["id"]], "orders": [["id"]]})
    spec_result = compare_spec(con, *keys("spec"))
    catalog_result = compare_catalogs(con, *keys("discover"))
    return [
        TestResult.from_comparison(
            "test_spec_is_compatible", spec_result, docstring="The spec accepts every config control accepts."
        ),
        TestResult("test_check_succeeds", Outcome.SKIPPED, message="no config with credentials given"),
        TestResult.from_comparison(
            "test_all_records_are_the_same",
            records,
            docstring="""Records of every stream are the same in control and target.

            Compared by primary key; emitted_at is ignored.""",
            diff_dir=diff_root / "test_all_records_are_the_same",
        ),
        TestResult(
            "test_read_with_state",
            Outcome.ERROR,
            message="ExecutionError: target read-with-state exited with code 1: boom",
        ),
        TestResult.from_comparison(
            "test_catalog_is_compatible", catalog_result, diff_dir=diff_root / "test_catalog_is_compatible"
        ),
        TestResult("test_records_have_no_new_fields", Outcome.PASSED_WITH_FINDINGS, summary="`users`: new field"),
    ]


def build(con: duckdb.DuckDBPyConnection, tmp_path: Path, **overrides: object) -> ReportContext:
    return build_report_context(
        con,
        connector="source-test",
        control_version=CONTROL,
        target_version=TARGET,
        run_id="run-42",
        test_results=make_results(con, tmp_path / "report" / "diffs"),
        configured_streams=["users", "orders", "ghost"],
        pr_url="https://github.com/example/connectors/pull/123",
        date=DATE,
        **overrides,  # type: ignore[arg-type]
    )


def text_of(html: str) -> str:
    """Visible text, tags dropped and whitespace collapsed (to assert on what a reader sees)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_context_numbers_come_from_duckdb(session_con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    ctx = build(session_con, tmp_path)
    assert CountRow("read", "users", 10, 9) in ctx.records_per_stream
    assert CountRow("read", "orders", 3, 4) in ctx.records_per_stream
    assert CountRow("read", "records", 13, 13) in ctx.message_counts
    assert CountRow("read", "states", 1, 1) in ctx.message_counts
    assert CountRow("spec", "spec", 1, 1) in ctx.message_counts
    assert all(row.control or row.target for row in ctx.message_counts)  # empty kinds left out
    assert ctx.coverage == StreamCoverage(
        catalog=["legacy", "orders", "users"], configured=["ghost", "orders", "users"], with_data=["orders", "users"]
    )
    assert ctx.coverage.untested == {"ghost": "no records on either side", "legacy": "not in the configured catalog"}
    control_traffic, target_traffic = ctx.http_traffic[CONTROL], ctx.http_traffic[TARGET]
    assert control_traffic is not None and target_traffic is not None
    assert (control_traffic.requests, control_traffic.distinct_endpoints, control_traffic.cache_hits) == (3, 3, 0)
    assert target_traffic.statuses == {"200": 1, "500": 1} and target_traffic.cache_hits == 1
    assert [r.outcome for r in ctx.sorted_results] == [
        Outcome.FAILED, Outcome.FAILED, Outcome.ERROR, Outcome.PASSED_WITH_FINDINGS, Outcome.PASSED, Outcome.SKIPPED,
    ]  # fmt: skip
    assert ctx.verdict == "failed" and ctx.blocking


def test_reports_content(session_con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    out = tmp_path / "report"
    ctx = build(session_con, tmp_path)
    paths = write_reports(out, ctx)
    assert paths == {"html": out / "report.html", "md": out / "report.md", "json": out / "report.json"}

    verdict = json.loads(paths["json"].read_text())
    assert (verdict["verdict"], verdict["blocking"], verdict["evaluation_mode"]) == ("failed", True, "strict")
    assert verdict["outcomes"] == {
        "failed": 2, "error": 1, "inconclusive": 0, "passed with findings": 1, "passed": 1, "skipped": 1
    }  # fmt: skip
    assert [t["name"] for t in verdict["tests"]] == [
        "test_all_records_are_the_same", "test_catalog_is_compatible", "test_read_with_state",
        "test_records_have_no_new_fields", "test_spec_is_compatible", "test_check_succeeds",
    ]  # fmt: skip
    records_test = verdict["tests"][0]
    assert "`users`: 1 control primary keys not in target (e.g. [3])" in records_test["summary"]
    assert records_test["diff_files"] == [
        "diffs/test_all_records_are_the_same/summary.txt",
        "diffs/test_all_records_are_the_same/findings.json",
        "diffs/test_all_records_are_the_same/records_orders.jsonl",  # order 1 twice in target
        "diffs/test_all_records_are_the_same/records_users.jsonl",
    ]
    assert {"command": "read", "name": "orders", "control": 3, "target": 4, "delta": 1} in verdict["records_per_stream"]
    assert verdict["coverage"]["untested"] == {
        "ghost": "no records on either side",
        "legacy": "not in the configured catalog",
    }
    assert verdict["http_traffic"][TARGET]["statuses"] == {"200": 1, "500": 1}
    assert verdict["date"] == "2024-05-17T09:30:00+00:00"

    html = paths["html"].read_text()
    text = text_of(html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//(?!github\.com/example)""", html)  # only the PR link
    assert "source-test" in text and "control 1.0.0 → target 2.0.0" in text
    assert "FAILED" in text and "https://github.com/example/connectors/pull/123" in text
    assert "run-42" in text and "2024-05-17 09:30:00 UTC" in text
    # Failures first: the failed and errored tests come before the passed and skipped ones.
    order = [html.index(f'<span class="name">{name}</span>') for name in [t["name"] for t in verdict["tests"]]]
    assert order == sorted(order)
    assert re.search(r'<details class="test failed" id="test-[\w-]+" open>', html)
    assert re.search(r'<details class="test passed" id="test-[\w-]+">', html)
    assert "Records of every stream are the same in control and target." in text  # docstring
    assert "<code>users</code>: 1 control primary keys not in target (e.g. [3])" in html  # diff summary, code spans
    assert "ExecutionError: target read-with-state exited with code 1: boom" in text
    assert "no config with credentials given" in text
    assert 'href="diffs/test_all_records_are_the_same/records_users.jsonl"' in html
    rows = table_rows(html)
    assert ["read", "users", "10", "9", "-1", "-10.0"] in rows  # records per stream
    assert ["read", "orders", "3", "4", "+1", "+33.3"] in rows
    assert ["read", "records", "13", "13", "0"] in rows  # messages per type
    assert ["legacy", "✓", "—", "—", "untested not in the configured catalog"] in rows  # coverage
    assert ["users", "✓", "✓", "✓", "tested"] in rows
    assert ["Errors (≥ 400 or no response)", "1"] in rows  # target's HTTP 500
    assert "ghost" in text and "no records on either side" in text and "not in the configured catalog" in text
    assert "Requests 3" in text and "500 × 1" in text and "Cache hits 1" in text
    assert "GET api.example.com/users" in text

    md = paths["md"].read_text()
    assert md.startswith("## ❌ Regression tests FAILED: `source-test` `1.0.0` → `2.0.0`")
    assert "**Tests:** 2 failed · 1 error · 1 passed with findings · 1 passed · 1 skipped" in md
    rows = [line for line in md.splitlines() if line.startswith("| ") and "`test_" in line]
    assert [re.search(r"`(test_\w+)`", row)[1] for row in rows] == [t["name"] for t in verdict["tests"]]
    assert "| read | `users` | 10 | 9 | -1 |" in md and "| read | `orders` | 3 | 4 | +1 |" in md
    assert "<details><summary>❌ <code>test_all_records_are_the_same</code></summary>" in md
    assert "- `ghost`: no records on either side" in md
    assert "| `2.0.0` | 2 | 2 | 200×1, 500×1 | 1 | 1 |" in md


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[str]]:
    """Every table row of the page as the visible text of its cells."""
    parser = _Cells()
    parser.feed(html)
    return parser.rows


def test_diagnostic_mode_and_traffic_not_captured(tmp_path: Path) -> None:
    con = SessionBuilder(tmp_path).connect()  # empty duck.db: no http_flows table
    ctx = build_report_context(
        con,
        connector="source-test",
        control_version=CONTROL,
        target_version=TARGET,
        run_id="r1",
        test_results=[TestResult("test_x", Outcome.FAILED, message="boom | pipe")],
        evaluation_mode="diagnostic",
        date=DATE,
    )
    assert ctx.http_traffic == {CONTROL: None, TARGET: None}
    paths = write_reports(tmp_path / "out", ctx)
    assert json.loads(paths["json"].read_text())["blocking"] is False
    text = text_of(paths["html"].read_text())
    assert "diagnostic mode: not blocking" in text
    assert text.count("Not captured.") == 2
    assert "No records were read." in text
    md = paths["md"].read_text()
    assert "> Diagnostic mode: failures are reported but do not block." in md
    assert "| `1.0.0` | not captured |" in md
    assert "boom \\| pipe" in md  # a pipe in a message does not break the table


def test_markdown_summary_cannot_escape_its_code_block(tmp_path: Path) -> None:
    ctx = ReportContext(
        connector="c", control_version="1", target_version="2", run_id="r",
        coverage=StreamCoverage([], [], []),
        test_results=[TestResult("test_t", Outcome.FAILED, summary="a\n```\n# not a heading\n")],
    )  # fmt: skip
    md = write_reports(tmp_path, ctx)["md"].read_text()
    assert "````\na\n```\n# not a heading\n````" in md


def test_evidence_code_spans_and_repeats(session_con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    """A changed field comes with its example records (the changed part marked in HTML); backticks in
    messages are code in HTML; a read-with-state test that found what its read test found is folded."""
    results = make_results(session_con, tmp_path / "diffs")
    records = next(r for r in results if r.name == "test_all_records_are_the_same")
    assert [(e.stream, e.path, e.change, e.records) for e in records.evidence] == [("users", "$.name", "changed", 1)]
    assert [(x.key, x.control, x.target) for x in records.evidence[0].examples] == [("[5]", '"user5"', '"x"')]
    same = "`orders`: 1 control primary keys not in target (see /tmp/s/test_keys_read)"
    results += [
        TestResult("test_keys[read]", Outcome.FAILED, summary="keys: FAILED (read)", message=same),
        TestResult(
            "test_keys[read-with-state]",
            Outcome.FAILED,
            summary="keys: FAILED (read-with-state)",
            message=same.replace("_read", "_read-with-state"),
        ),
        TestResult("test_other[read-with-state]", Outcome.FAILED, message="`orders`: something else"),
    ]
    ctx = build_report_context(
        session_con, connector="source-test", control_version=CONTROL, target_version=TARGET, run_id="r",
        test_results=results, date=DATE,
    )  # fmt: skip
    paths = write_reports(tmp_path / "out", ctx)
    html = paths["html"].read_text()
    assert "<td><code>&#34;<mark>user5</mark>&#34;</code></td><td><code>&#34;<mark>x</mark>&#34;</code></td>" in html
    assert "<code>users</code> <code>$.name</code> changed in 1 record(s)" in html
    assert '<span class="message"><code>orders</code>: 1 control primary keys not in target' in html
    assert "`" not in text_of(html.split("<h2>Tests", 1)[1].split("<h2>Stream coverage", 1)[0])
    assert html.count("Same findings as") == 1
    assert 'Same findings as <a href="#test-test_keys-read"><code>test_keys[read]</code></a>' in html
    tests = {t["name"]: t for t in json.loads(paths["json"].read_text())["tests"]}
    assert tests["test_all_records_are_the_same"]["evidence"] == [
        {"stream": "users", "path": "$.name", "change": "changed", "records": 1,
         "examples": [{"key": "[5]", "control": '"user5"', "target": '"x"'}]}
    ]  # fmt: skip
    md = paths["md"].read_text()
    assert "**`users` `$.name`** changed in 1 record(s):" in md
    assert '| `[5]` | `"user5"` | `"x"` |' in md
    assert md.count("Same findings as `test_keys[read]`.") == 1
    assert "keys: FAILED (read-with-state)" not in md  # folded, not repeated word for word


# ---------------------------------------------------------------------------------------------
# Rendering in a real browser

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the raw (still filtered) scanlines of an 8-bit PNG, with the stdlib only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, b"", 0, 0, 4
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, _depth, color_type = struct.unpack(">IIBB", body[:10])
            channels = {2: 3, 6: 4, 0: 1, 4: 2}.get(color_type, 4)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    return width, height, [raw[i * stride : (i + 1) * stride] for i in range(height)]


def test_report_renders_in_headless_chromium(session_con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    browser = next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)
    if browser is None:
        pytest.fail("Chromium is required to check the HTML report renders: install it (apt-get install -y chromium)")
    paths = write_reports(tmp_path / "report", build(session_con, tmp_path))
    screenshot = tmp_path / "report.png"
    process = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--screenshot={screenshot}",
            "--window-size=1280,2000", paths["html"].as_uri(),
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert screenshot.exists(), f"no screenshot (exit {process.returncode}): {process.stderr[-2000:]}"
    width, height, rows = png_pixels(screenshot)
    assert (width, height) == (1280, 2000)
    # A rendered page has many distinct rows (text, tables); a blank or error page has a handful.
    assert len(set(rows)) > 300, f"screenshot looks empty: {len(set(rows))} distinct rows"
    assert screenshot.stat().st_size > 40_000
