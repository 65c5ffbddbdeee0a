"""scripts/demo_http.sh end to end: the suite on both demo versions in HTTP mode through the proxy.

`test_http_traffic_is_the_same` must find exactly the request differences demo/README.md documents
(2.0.0: `per_page` 50 instead of 20, so fewer pages, and an extra `GET /v1/shop`), for `read` and
`read-with-state`; under a fault that both versions recover from, still exactly those.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import docker
import pytest

from tests.conftest import REPO

ENDPOINT = "GET api.demo-shop.example/v1"
DOCUMENTED = sorted(
    [
        ("http_query_values_changed", f"{ENDPOINT}/customers", "`per_page` 20 -> 50"),
        ("http_query_values_changed", f"{ENDPOINT}/orders", "`per_page` 20 -> 50"),
        ("http_query_values_changed", f"{ENDPOINT}/events", "`per_page` 20 -> 50"),
        ("http_pagination_changed", f"{ENDPOINT}/customers", "paginated in control (up to 2 pages), not in target"),
        ("http_pagination_changed", f"{ENDPOINT}/events", "paginated in control (up to 2 pages), not in target"),
        ("http_endpoint_added", f"{ENDPOINT}/shop", "new endpoint in target (1 requests)"),
    ]
)


def _demo_http(session_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "demo_http.sh"), "--session-dir", str(session_dir), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "LIVE_TESTS_SKIP_SETUP": "1", "COLUMNS": "200"},
    )


def _http_findings(session_dir: Path, command: str) -> list[tuple[str, str, str]]:
    findings = json.loads((session_dir / f"test_http_traffic_is_the_same_{command}" / "findings.json").read_text())
    return sorted((f["kind"], f["path"], f["message"].split(": ", 1)[1]) for f in findings["findings"])


def _fake_apis(client: docker.DockerClient) -> list[str]:
    return [c.name for c in client.containers.list(all=True, filters={"label": "live-tests.role=demo-fake-api"})]


@pytest.mark.docker
def test_demo_http_gives_exactly_the_documented_request_differences(
    docker_client: docker.DockerClient, demo_images, tmp_path: Path
) -> None:
    run = _demo_http(tmp_path / "session")
    output = run.stdout + run.stderr
    # Strict mode: the demo's dropped order line fails the record tests; the HTTP test is diagnostic.
    assert run.returncode == 1, output
    assert "fake shop API on host port" in run.stdout
    for command in ("read", "read-with-state"):
        assert _http_findings(tmp_path / "session", command) == DOCUMENTED
    report = json.loads((tmp_path / "session" / "report.json").read_text())
    outcomes = {t["name"]: t["outcome"] for t in report["tests"]}
    assert outcomes["test_http_traffic_is_the_same[read]"] == "passed with findings", outcomes
    http = {h["command"]: h for h in report["http_calls"]}
    assert http["read"]["requests"] == {"control": 7, "target": 5}
    # The performance figures count the same flows, per execution; fewer calls for as many records: no flag.
    performance = {p["command"]: p for p in report["performance"]}
    assert [performance["read"][side]["http_calls"] for side in ("control", "target")] == [7, 5]
    assert [performance["check"][side]["http_calls"] for side in ("control", "target")] == [1, 1]
    assert not any(r["flagged"] for r in performance["read"]["rows"])
    assert http["read"]["target"]["dumps"] == [
        "command_execution_artifacts/source-demo/read/2.0.0/http_dump.har",
        "command_execution_artifacts/source-demo/read/2.0.0/http_dump.mitm",
    ]
    assert sorted(f["kind"] for f in http["read"]["findings"]) == sorted(k for k, _, _ in DOCUMENTED)
    html = (tmp_path / "session" / "report.html").read_text()
    assert 'href="command_execution_artifacts/source-demo/read/2.0.0/http_dump.har"' in html
    assert "mitmweb --rfile " in html and "HTTP calls · <code>read</code>" in html
    md = (tmp_path / "session" / "report.md").read_text()
    assert f"| `{ENDPOINT}/shop` | — | 1 |  | 200×1 |" in md
    assert _fake_apis(docker_client) == []


@pytest.mark.docker
def test_under_a_fault_both_recover_and_only_the_documented_differences_remain(
    docker_client: docker.DockerClient, demo_images, tmp_path: Path
) -> None:
    """Every 2nd request gets a 503 on both sides; the demo retries it, so records and HTTP calls compare as before."""
    run = _demo_http(tmp_path / "session", "--http-fault", "status=503:every=2", "--", "-k", "http or record_count")
    output = run.stdout + run.stderr
    assert run.returncode == 1, output  # the dropped order line, as without the fault
    assert _http_findings(tmp_path / "session", "read") == DOCUMENTED
    md = (tmp_path / "session" / "report.md").read_text()
    assert "faults: `status=503:every=2` × 6" in md  # the control's 13 requests: 6 of them hit
    assert "faults: `status=503:every=2` × 4" in md  # the target's 9
    counts = (tmp_path / "session" / "test_record_count_per_stream_read" / "summary.txt").read_text()
    assert "Breaking differences (1):\n  - `orders`: record count 60 -> 59\n" in counts
    assert "customers             30         30       +0" in counts
    assert _fake_apis(docker_client) == []


@pytest.mark.docker
def test_cache_mode_shows_what_was_answered_live_and_the_near_misses_in_the_reports(
    docker_client: docker.DockerClient, demo_images, tmp_path: Path
) -> None:
    """With --http-cache the target is answered from the control's recording where it asks the same; the
    demo's 2.0.0 never does (per_page 50), so all 5 of its requests go live, each with its near miss."""
    run = _demo_http(tmp_path / "session", "--http-cache", "--", "-k", "http")
    assert run.returncode == 0, run.stdout + run.stderr  # the HTTP test is diagnostic
    assert _http_findings(tmp_path / "session", "read") == DOCUMENTED
    report = json.loads((tmp_path / "session" / "report.json").read_text())
    target = {h["command"]: h for h in report["http_calls"]}["read"]["target"]
    assert {k: target["replay"][k] for k in ("mode", "from_recording", "live", "unmatched")} == {
        "mode": "cache", "from_recording": 0, "live": 5, "unmatched": 0
    }  # fmt: skip
    md = (tmp_path / "session" / "report.md").read_text()
    assert "cache: 0 answered from the recording, 5 live, 0 unmatched" in md
    assert (
        "  - `GET https://api.demo-shop.example/v1/customers?page=1&per_page=50` — closest recorded:"
        " GET https://api.demo-shop.example/v1/customers?page=1&per_page=20 (query parameter per_page: 50,"
        " recorded 20)"
    ) in md
    assert "5 live" in (tmp_path / "session" / "report.html").read_text()
