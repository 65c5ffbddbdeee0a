"""`--http-fault` scenarios and a proxy that dies, on the demo in HTTP mode (real mitmproxy, real containers).

The demo retries 429 and 5xx answers twice (0.5 s, then 1 s later) and fails a read on anything else,
so each scenario has one expected outcome for both versions alike.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import duckdb
import pytest
from mitmproxy import http
from mitmproxy.io import FlowReader

from live_tests.docker_engine import LABEL_ROLE, LABEL_RUN_ID
from live_tests.images import ensure_proxy_image
from live_tests.models import InputError
from live_tests.proxy import DEFAULT_PROXY_IMAGE
from live_tests.proxy.faults import parse_http_fault
from tests.conftest import leftovers, run_cli
from tests.http_demo import CATALOG, HTTP_CONFIG, fake_api, map_remote

API = "https://api.demo-shop.example/v1"


@pytest.fixture(scope="module")
def api_port(docker_client: docker.DockerClient, demo_images, base_image: str) -> Iterator[int]:
    ensure_proxy_image(docker_client, DEFAULT_PROXY_IMAGE, base_image)
    with fake_api(docker_client) as port:
        yield port


def _debug_read(tmp_path: Path, port: int, *args: str | Path, config: Path = HTTP_CONFIG) -> tuple[str, object]:
    run_id = f"fault-{uuid.uuid4().hex[:8]}"
    run = run_cli("debug", "read", "-c", "live-tests/source-demo:1.0.0", "-c", "live-tests/source-demo:2.0.0",
                  "--config-path", config, "--catalog-path", CATALOG, "--output-dir", tmp_path, "--run-id", run_id,
                  "--proxy-option", map_remote(port), *args)  # fmt: skip
    return run_id, run


def _flows(tmp_path: Path, run_id: str, version: str) -> list[tuple]:
    with duckdb.connect(str(tmp_path / run_id / "duck.db"), read_only=True) as con:
        return con.execute(
            """SELECT seq, path || CASE WHEN query = '' THEN '' ELSE '?' || query END, status, error, fault,
                      duration_ms FROM http_flows WHERE version = ? ORDER BY seq""",
            [version],
        ).fetchall()


def _records(tmp_path: Path, run_id: str) -> dict[str, int]:
    with duckdb.connect(str(tmp_path / run_id / "duck.db"), read_only=True) as con:
        return dict(con.execute("SELECT version, count(*) FROM records GROUP BY version").fetchall())


def test_fault_scenarios_parse_and_bad_text_is_a_usage_error() -> None:
    fault = parse_http_fault("status=429:retry-after=2:every=3")
    assert (fault.kind, fault.status, fault.retry_after_s, fault.every) == ("status", 429, 2, 3)
    assert parse_http_fault("latency=250").latency_ms == 250
    assert parse_http_fault("invalid-json").every == 1
    for bad in ("status=404", "status=500:retry-after=1", "reset=1", "latency=x", "truncate:every=0", "boom",
                "reset:every=2:every=3", "latency=5:every=2"):  # fmt: skip
        with pytest.raises(InputError, match=r"--http-fault"):
            parse_http_fault(bad)


@pytest.mark.docker
def test_bad_scenario_is_one_line_exit_2(tmp_path: Path) -> None:
    run = run_cli("debug", "spec", "-c", "live-tests/source-demo:1.0.0", "--output-dir", tmp_path,
                  "--http-fault", "status=404")  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "Error: --http-fault 'status=404': expected latency=MS, status=429[:retry-after=S][:every=N],"
        " status=500|503[:every=N], reset[:every=N], truncate[:every=N] or invalid-json[:every=N]"
    ]
    off = run_cli("debug", "spec", "-c", "live-tests/source-demo:1.0.0", "--output-dir", tmp_path,
                  "--disable-proxy", "--http-fault", "reset")  # fmt: skip
    assert off.returncode == 2 and "--http-fault" in off.stderr


@pytest.mark.docker
def test_latency_holds_every_request_and_both_versions_still_read_everything(tmp_path: Path, api_port: int) -> None:
    run_id, run = _debug_read(tmp_path, api_port, "--http-fault", "latency=300")
    assert run.returncode == 0, run.stdout + run.stderr
    assert _records(tmp_path, run_id) == {"1.0.0": 120, "2.0.0": 119}
    for version, requests in (("1.0.0", 7), ("2.0.0", 5)):
        flows = _flows(tmp_path, run_id, version)
        assert len(flows) == requests
        assert all(f[2] == 200 and f[4] == "latency=300" and f[5] >= 300 for f in flows), flows


@pytest.mark.docker
@pytest.mark.parametrize(
    "scenario, status", [("status=429:retry-after=1:every=3", 429), ("status=503:every=2", 503)]
)  # fmt: skip
def test_retried_error_statuses_are_recovered_by_both_versions(
    docker_client: docker.DockerClient, tmp_path: Path, api_port: int, scenario: str, status: int
) -> None:
    """Every Nth request gets the error; the demo's retry (the next request) is not hit, so both read it all."""
    run_id, run = _debug_read(tmp_path, api_port, "--http-fault", scenario)
    assert run.returncode == 0, run.stdout + run.stderr
    assert _records(tmp_path, run_id) == {"1.0.0": 120, "2.0.0": 119}
    every = int(scenario.rsplit("=", 1)[1])
    for version in ("1.0.0", "2.0.0"):
        flows = _flows(tmp_path, run_id, version)
        for seq, url, got, _error, fault, _ms in flows:
            assert (got, fault) == ((status, scenario) if seq % every == 0 else (200, None)), flows
            if seq % every == 0:
                assert flows[seq][1] == url and flows[seq][2] == 200  # the retry of the same URL
    if status == 429:
        dump = tmp_path / run_id / "source-demo" / "read" / "1.0.0" / "http_dump.mitm"
        with dump.open("rb") as f:
            faulted = [fl for fl in FlowReader(f).stream() if isinstance(fl, http.HTTPFlow)][2]
        assert faulted.response.status_code == 429 and faulted.response.headers["Retry-After"] == "1"
    assert leftovers(docker_client, run_id) == []


@pytest.mark.docker
@pytest.mark.parametrize(
    "scenario, faulted_seq, says",
    [
        ("status=500", 1, "customers?page=1&per_page=20 returned HTTP 500"),
        ("reset:every=3", 3, "failed: Remote end closed connection without response"),
        ("truncate:every=3", 3, "IncompleteRead"),
        ("invalid-json:every=4", 4, "failed: Expecting value"),
    ],
)
def test_unrecoverable_faults_fail_both_versions_alike(
    tmp_path: Path, api_port: int, scenario: str, faulted_seq: int, says: str
) -> None:
    run_id, run = _debug_read(tmp_path, api_port, "--http-fault", scenario)
    output = (run.stdout + run.stderr).replace("\n", "")
    assert run.returncode == 1, output
    assert output.count(says) >= 2, output  # both versions, for the same reason
    for version in ("1.0.0", "2.0.0"):
        flows = _flows(tmp_path, run_id, version)
        hit = [f for f in flows if f[4] == scenario]
        assert hit and hit[0][0] == faulted_seq, flows
        if scenario == "reset:every=3":
            assert hit[0][2] is None and hit[0][3] == "Connection killed."
        if scenario == "status=500":
            assert [f[2] for f in flows] == [500, 500, 500]  # the demo's three attempts, then it gives up
    if scenario == "truncate:every=3":
        dump = tmp_path / run_id / "source-demo" / "read" / "1.0.0" / "http_dump.mitm"
        with dump.open("rb") as f:
            cut = [fl for fl in FlowReader(f).stream() if isinstance(fl, http.HTTPFlow)][2]
        assert int(cut.response.headers["content-length"]) == 2 * len(cut.response.raw_content)
    if scenario == "invalid-json:every=4":
        dump = tmp_path / run_id / "source-demo" / "read" / "2.0.0" / "http_dump.mitm"
        with dump.open("rb") as f:
            bad = [fl for fl in FlowReader(f).stream() if isinstance(fl, http.HTTPFlow)][3]
        assert bad.response.status_code == 200 and bad.response.content.startswith(b"<html>")


@pytest.mark.docker
def test_a_proxy_killed_mid_read_fails_the_execution_with_one_line(
    docker_client: docker.DockerClient, tmp_path: Path, api_port: int
) -> None:
    """The read sleeps after its first record; the proxy is killed then: later requests cannot be served."""
    config = json.loads(HTTP_CONFIG.read_text()) | {"hang_seconds": 4}
    (tmp_path / "config.json").write_text(json.dumps(config))
    run_id = f"proxy-kill-{uuid.uuid4().hex[:8]}"
    killed: list[str] = []

    def kill_proxy_after_first_request() -> None:
        deadline = time.monotonic() + 60
        filters = {"label": [f"{LABEL_RUN_ID}={run_id}", f"{LABEL_ROLE}=proxy"]}
        while time.monotonic() < deadline and not killed:
            for proxy in docker_client.containers.list(filters=filters):
                if b"GET https://api.demo-shop.example" in proxy.logs() or b"/v1/customers" in proxy.logs():
                    proxy.kill()
                    killed.append(proxy.name)
            time.sleep(0.2)

    killer = threading.Thread(target=kill_proxy_after_first_request)
    killer.start()
    run = run_cli("debug", "read", "-c", "live-tests/source-demo:1.0.0", "--config-path", tmp_path / "config.json",
                  "--catalog-path", CATALOG, "--output-dir", tmp_path, "--run-id", run_id,
                  "--proxy-option", map_remote(api_port))  # fmt: skip
    killer.join()
    assert killed, "the proxy was never seen serving"
    output = (run.stdout + run.stderr).replace("\n", "")
    assert run.returncode == 1, output
    assert "source-demo:1.0.0 read proxy: the proxy died mid-run (exit code 137" in output, output
    assert "later requests were neither served nor captured" in output
    # Seen while the connector still ran: it was stopped then, not left to run on without its proxy.
    assert "the connectors it served were stopped" in output, output
    artifacts = tmp_path / run_id / "source-demo" / "read" / "1.0.0"
    capture = json.loads((artifacts / "http_capture.json").read_text())
    assert capture["error"].startswith("proxy: the proxy died mid-run (exit code 137")
    with duckdb.connect(str(tmp_path / run_id / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT error FROM http_captures").fetchone()[0] == capture["error"]
        status, error = con.execute("SELECT status, error FROM executions").fetchone()
        assert error == capture["error"], (status, error)
    assert leftovers(docker_client, run_id) == []


@pytest.mark.docker
def test_a_proxy_that_stops_answering_fails_the_execution(
    docker_client: docker.DockerClient, tmp_path: Path, api_port: int
) -> None:
    """SIGSTOP: the container still runs, connections are accepted, nothing answers (the demo would give up
    after 30 s; the proxy's heartbeat stops first)."""
    config = json.loads(HTTP_CONFIG.read_text()) | {"hang_seconds": 3}
    (tmp_path / "config.json").write_text(json.dumps(config))
    run_id = f"proxy-stop-{uuid.uuid4().hex[:8]}"
    stopped: list[str] = []

    def stop_proxy_after_first_request() -> None:
        deadline = time.monotonic() + 60
        filters = {"label": [f"{LABEL_RUN_ID}={run_id}", f"{LABEL_ROLE}=proxy"]}
        while time.monotonic() < deadline and not stopped:
            for proxy in docker_client.containers.list(filters=filters):
                if b"/v1/customers" in proxy.logs() or b"GET https://api.demo-shop.example" in proxy.logs():
                    proxy.kill(signal="SIGSTOP")
                    stopped.append(proxy.name)
            time.sleep(0.2)

    stopper = threading.Thread(target=stop_proxy_after_first_request)
    stopper.start()
    run = run_cli("debug", "read", "-c", "live-tests/source-demo:1.0.0", "--config-path", tmp_path / "config.json",
                  "--catalog-path", CATALOG, "--output-dir", tmp_path, "--run-id", run_id,
                  "--proxy-option", map_remote(api_port))  # fmt: skip
    stopper.join()
    assert stopped, "the proxy was never seen serving"
    output = (run.stdout + run.stderr).replace("\n", "")
    assert run.returncode == 1, output
    assert "source-demo:1.0.0 read proxy: the proxy stopped answering mid-run (no answer within 5s)" in output
    # Its heartbeat stopped: the connector was stopped then, not left waiting on its own 30 s timeout.
    assert "the connectors it served were stopped" in output, output
    capture = json.loads((tmp_path / run_id / "source-demo" / "read" / "1.0.0" / "http_capture.json").read_text())
    assert capture["error"].startswith("proxy: the proxy stopped answering mid-run")
    assert leftovers(docker_client, run_id) == []


@pytest.mark.docker
def test_faulted_answers_are_not_replayed_from_the_control_recording(
    docker_client: docker.DockerClient, tmp_path: Path, api_port: int
) -> None:
    """--http-cache with a fault: the control's faulted answers are not the API's, so the target (the same
    connector) is faulted once by its own proxy, and its retries are answered from the recording."""
    copy = "live-tests/source-demo:1.0.0-copy"
    docker_client.images.get("live-tests/source-demo:1.0.0").tag(copy)
    try:
        run_id = f"fault-cache-{uuid.uuid4().hex[:8]}"
        run = run_cli("debug", "read", "-c", "live-tests/source-demo:1.0.0", "-c", copy, "--config-path", HTTP_CONFIG,
                      "--catalog-path", CATALOG, "--output-dir", tmp_path, "--run-id", run_id, "--http-cache",
                      "--proxy-option", map_remote(api_port), "--http-fault", "status=503:every=2")  # fmt: skip
    finally:
        docker_client.images.remove(copy)
    assert run.returncode == 0, run.stdout + run.stderr
    assert _records(tmp_path, run_id) == {"1.0.0": 120, "1.0.0-copy": 120}
    with duckdb.connect(str(tmp_path / run_id / "duck.db"), read_only=True) as con:
        target = con.execute(
            "SELECT seq, status, replay, fault FROM http_flows WHERE version = '1.0.0-copy' ORDER BY seq"
        ).fetchall()
    assert target == [
        (seq, 503, None, "status=503:every=2") if seq % 2 == 0 else (seq, 200, "hit", None) for seq in range(1, 14)
    ]
