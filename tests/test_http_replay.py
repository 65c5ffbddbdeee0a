"""Replay diagnostics on the demo in HTTP mode: answered from the recording vs live vs unmatched, the near
miss named for each unmatched request, and streamed flows left out of the corpus (real mitmproxy)."""

from __future__ import annotations

import uuid
from pathlib import Path

import docker
import duckdb
import pytest

from live_tests.compare.http_replay import replay_counts
from live_tests.images import ensure_proxy_image
from live_tests.models import ExecutionKey
from live_tests.proxy import DEFAULT_PROXY_IMAGE
from tests.conftest import DEMO_V1, DEMO_V2, leftovers, run_cli
from tests.http_demo import CATALOG, HTTP_CONFIG, fake_api, map_remote

API = "https://api.demo-shop.example/v1"
INPUTS = ("--config-path", HTTP_CONFIG, "--catalog-path", CATALOG)


def _capture(tmp_path: Path, port: int, *proxy_options: str) -> Path:
    run_id = f"replay-rec-{uuid.uuid4().hex[:8]}"
    run = run_cli("debug", "read", "-c", DEMO_V1, *INPUTS, "--output-dir", tmp_path, "--run-id", run_id,
                  "--proxy-option", map_remote(port), *proxy_options)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return tmp_path / run_id / "source-demo" / "read" / "1.0.0"


@pytest.mark.docker
def test_replay_counts_unmatched_requests_and_names_their_near_miss(
    docker_client: docker.DockerClient, demo_images, base_image: str, tmp_path: Path
) -> None:
    ensure_proxy_image(docker_client, DEFAULT_PROXY_IMAGE, base_image)
    with fake_api(docker_client) as port:
        recording = _capture(tmp_path, port) / "http_dump.mitm"
        streamed = _capture(tmp_path, port, "--proxy-option", "stream_large_bodies=2k") / "http_dump.mitm"
    run_id = f"replay-{uuid.uuid4().hex[:8]}"
    replay = run_cli("debug", "read", "-c", DEMO_V1, "-c", DEMO_V2, *INPUTS, "--output-dir", tmp_path,
                     "--run-id", run_id, "--http-replay", recording)  # fmt: skip
    assert replay.returncode == 1  # 2.0.0 cannot read from 1.0.0's recording
    lines = (replay.stdout + replay.stderr).splitlines()
    assert "HTTP replay source-demo:1.0.0 read: 7 answered from the recording, 0 live, 0 unmatched" in lines, lines
    # 2.0.0 asks GET /v1/shop first; the demo retries the 599 answer twice, then fails.
    assert "HTTP replay source-demo:2.0.0 read: 0 answered from the recording, 0 live, 3 unmatched" in lines
    unmatched = [line for line in lines if line.startswith("  unmatched: ")]
    assert len(unmatched) == 3
    # (The demo's third attempt goes out as http://: urllib reuses the Request it tunnelled; a demo quirk.)
    assert (
        unmatched[:2]
        == [
            f"  unmatched: GET {API}/shop - closest recorded: GET {API}/customers?page=1&per_page=20"
            " (path /v1/shop, recorded /v1/customers; query parameter page missing (recorded page=1);"
            " query parameter per_page missing (recorded per_page=20))"
        ]
        * 2
    )
    with duckdb.connect(str(tmp_path / run_id / "duck.db"), read_only=True) as con:
        counts = replay_counts(con, ExecutionKey("source-demo", "2.0.0", "read"))
        assert counts is not None and (counts.from_recording, counts.live, counts.unmatched) == (0, 0, 3)
        error = con.execute("SELECT error FROM http_flows WHERE version = '2.0.0' ORDER BY seq LIMIT 1").fetchone()[0]
        assert error.startswith("unmatched: no recorded response for this request (replay); closest recorded: GET")

    # A near miss by one query parameter: 2.0.0 with page_size 20 asks what 1.0.0 asked, but /shop first.
    # Its answer is in the body the connector gets, so the connector's own error names the near miss too.
    assert "closest recorded: GET" in (replay.stdout + replay.stderr).replace("\n", "")

    # Flows whose bodies were streamed are left out of the corpus, and the summary says so.
    run_id = f"replay-streamed-{uuid.uuid4().hex[:8]}"
    partial = run_cli("debug", "read", "-c", DEMO_V1, *INPUTS, "--output-dir", tmp_path, "--run-id", run_id,
                      "--http-replay", streamed)  # fmt: skip
    output = (partial.stdout + partial.stderr).replace("\n", " ")
    assert "recorded flows left out (streamed bodies, not replayable)" in output, output
    proxy_log = (tmp_path / run_id / "source-demo" / "read" / "1.0.0" / "proxy.log").read_text()
    assert "left out" in proxy_log and "flows with streamed bodies" in proxy_log
    for leftover_run in (run_id,):
        assert leftovers(docker_client, leftover_run) == []


@pytest.mark.docker
def test_cache_mode_counts_live_requests_with_their_near_miss(
    docker_client: docker.DockerClient, demo_images, base_image: str, tmp_path: Path
) -> None:
    ensure_proxy_image(docker_client, DEFAULT_PROXY_IMAGE, base_image)
    run_id = f"cache-{uuid.uuid4().hex[:8]}"
    with fake_api(docker_client) as port:
        run = run_cli("debug", "read", "-c", DEMO_V1, "-c", DEMO_V2, *INPUTS, "--output-dir", tmp_path,
                      "--run-id", run_id, "--proxy-option", map_remote(port), "--http-cache")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    lines = (run.stdout + run.stderr).splitlines()
    # 1.0.0 is the control (captures); 2.0.0's five requests all differ from its seven: all live.
    assert "HTTP cache source-demo:2.0.0 read: 0 answered from the recording, 5 live, 0 unmatched" in lines, lines
    live = [line for line in lines if line.startswith("  live: ")]
    assert live[1] == (
        f"  live: GET {API}/customers?page=1&per_page=50 - closest recorded: GET {API}/customers?page=1&per_page=20"
        " (query parameter per_page: 50, recorded 20)"
    )
    assert len(live) == 5
