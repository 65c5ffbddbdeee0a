"""Hostile connector outputs and resources, end to end with real containers (tests/hostile_connector).

Each case runs `live-tests debug` as a user would and checks the exit status, the one-line
message, what is on disk and in duck.db, and that no container or network is left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import docker
import duckdb
import pytest

from live_tests.store.stream_files import MANIFEST
from tests.conftest import DEMO_DIR, REPO, leftovers, read_jsonl, run_cli
from tests.test_debug_engine import tcp_engine  # noqa: F401 - a fixture
from tests.test_regression_suite import demo_args, run_suite

pytestmark = pytest.mark.docker

HOSTILE_IMAGE = "live-tests-test/hostile-source:1"
LONG_NAME = "s" * 300
NAMES = [[None, "a/b"], [None, "a_b"], [None, "sp ace ü"], [None, "sp_ace__"], ["ns", "s"], [None, "ns.s"]]


@pytest.fixture(scope="module")
def hostile_image(docker_client: docker.DockerClient, base_image: str) -> str:
    docker_client.images.build(
        path=str(REPO / "tests" / "hostile_connector"),
        tag=HOSTILE_IMAGE,
        buildargs={"BASE_IMAGE": base_image},
        rm=True,
        forcerm=True,
    )
    return HOSTILE_IMAGE


def _inputs(tmp_path: Path, config: dict) -> list[str]:
    config_path, catalog_path = tmp_path / "config.json", tmp_path / "catalog.json"
    config_path.write_text(json.dumps(config))
    stream = {"name": "any", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}
    catalog_path.write_text(json.dumps({"streams": [{"stream": stream, "sync_mode": "full_refresh"}]}))
    return ["--config-path", str(config_path), "--catalog-path", str(catalog_path)]


def debug_args(tmp_path: Path, run_id: str, config: dict, *extra: str) -> list[str]:
    return ["debug", "read", "-c", HOSTILE_IMAGE, *_inputs(tmp_path, config), "--output-dir", str(tmp_path),
            "--run-id", run_id, "--disable-proxy", *extra]  # fmt: skip


def execution_dir(tmp_path: Path, run_id: str) -> Path:
    return tmp_path / run_id / "hostile-source" / "read" / "1"


def query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_silent_connector_has_its_output_on_disk_within_a_second(hostile_image, docker_client, tmp_path):
    """One record and one stderr line, then 8 s of silence: both are on disk long before it ends."""
    run_id = "pause"
    process = subprocess.Popen(
        [sys.executable, "-m", "live_tests.cli", *debug_args(tmp_path, run_id, {"pause_seconds": 8})],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    execution = execution_dir(tmp_path, run_id)
    stdout_log, stderr_log = execution / "stdout.log", execution / "stderr.log"
    records = execution / "airbyte_messages" / "records.jsonl"
    try:
        deadline = time.monotonic() + 60
        while not (stdout_log.exists() and stdout_log.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.1)
        first_output = time.monotonic()
        assert stdout_log.stat().st_size, "the connector never printed"
        while time.monotonic() < first_output + 2.5:
            if stderr_log.stat().st_size and records.exists() and records.stat().st_size:
                break
            time.sleep(0.1)
        flushed_after = time.monotonic() - first_output
        assert process.poll() is None  # still pausing: this was flushed while the connector printed nothing
        assert stderr_log.read_text() == "about to pause\n"
        assert [r["record"]["data"] for r in read_jsonl(records)] == [{"id": 0}]
        assert flushed_after < 2.5
    finally:
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert query(tmp_path / run_id / "duck.db", "SELECT count(*) FROM records") == [(2,)]
    assert leftovers(docker_client, run_id) == []


def test_a_60mb_line_is_loaded(hostile_image, docker_client, tmp_path):
    result = run_cli(*debug_args(tmp_path, "long", {"long_line_mb": 60}))
    assert result.returncode == 0, result.stderr
    assert "warning" not in result.stdout + result.stderr
    db = tmp_path / "long" / "duck.db"
    assert query(db, "SELECT data->>'id', length(data->>'payload') FROM records ORDER BY seq") == [
        ("0", 60 * 2**20),
        ("1", None),
    ]
    assert query(db, "SELECT status, error, warnings FROM executions") == [("ok", None, [])]
    assert leftovers(docker_client, "long") == []


def test_a_line_over_the_cap_is_kept_truncated_in_invalid_lines_with_a_warning(hostile_image, docker_client, tmp_path):
    result = run_cli(*debug_args(tmp_path, "cap", {"long_line_mb": 60}), env={"LIVE_TESTS_MAX_LINE_MB": "10"})
    assert result.returncode == 0, result.stderr
    output = " ".join((result.stdout + result.stderr).split())  # the console wraps long lines
    warning = (
        "hostile-source 1 read: warning: line 1 of stdout is 60 MB, over the 10 MB cap (LIVE_TESTS_MAX_LINE_MB):"
        " not loaded as a message; invalid_lines keeps its first 1 MB, stdout.log all of it"
    )
    assert warning in output
    execution = execution_dir(tmp_path, "cap")
    assert (execution / "stdout.log").stat().st_size > 60 * 2**20  # nothing lost
    [invalid] = read_jsonl(execution / "airbyte_messages" / "invalid_lines.jsonl")
    assert invalid["line_number"] == 1 and invalid["truncated_from_bytes"] > 60 * 2**20
    assert len(invalid["text"]) == 2**20 and invalid["text"].startswith('{"type": "RECORD"')
    db = tmp_path / "cap" / "duck.db"
    assert query(db, "SELECT data->>'id' FROM records") == [("1",)]
    assert query(db, "SELECT line_number, length(text), truncated_from_bytes > 60 * 2**20 FROM invalid_lines") == [
        (1, 2**20, True)
    ]
    [(status, warnings)] = query(db, "SELECT status, warnings FROM executions")
    assert status == "ok" and len(warnings) == 1 and warnings[0] in warning
    assert leftovers(docker_client, "cap") == []


def test_streams_whose_names_collide_or_are_too_long_get_files_of_their_own(hostile_image, docker_client, tmp_path):
    streams = [*NAMES, [None, LONG_NAME]]
    result = run_cli(*debug_args(tmp_path, "names", {"streams": streams, "records": 3}))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    per_stream = execution_dir(tmp_path, "names") / "airbyte_messages" / "records_per_stream"
    manifest = json.loads((per_stream / MANIFEST).read_text())
    assert sorted(((entry["namespace"], entry["stream"]) for entry in manifest.values()), key=str) == sorted(
        map(tuple, streams), key=str
    )
    assert {entry["count"] for entry in manifest.values()} == {3}
    assert sorted(p.name for p in per_stream.iterdir()) == sorted([*manifest, MANIFEST])
    for file_name, entry in manifest.items():
        assert len(file_name.encode()) <= 255
        records = [r["record"] for r in read_jsonl(per_stream / file_name)]  # whole lines only
        assert [(r.get("namespace"), r["stream"], r["data"]["id"]) for r in records] == [
            (entry["namespace"], entry["stream"], i) for i in range(3)
        ]
    # The plain name is kept where it is a safe file name no other stream took first.
    assert {"a_b.jsonl", "sp_ace__.jsonl", "ns.s.jsonl"} <= set(manifest)
    assert len(read_jsonl(per_stream.parent / "records.jsonl")) == 3 * len(streams)
    db = tmp_path / "names" / "duck.db"
    loaded = query(db, "SELECT namespace, stream, count(*) FROM records GROUP BY ALL")
    assert sorted(loaded, key=str) == sorted(((ns, name, 3) for ns, name in streams), key=str)
    assert query(db, "SELECT status FROM executions") == [("ok",)]
    assert leftovers(docker_client, "names") == []


def test_a_300_character_stream_name_alone(hostile_image, docker_client, tmp_path):
    """A single stream: its file is a hard link to records.jsonl, made at the end."""
    result = run_cli(*debug_args(tmp_path, "long-name", {"streams": [[None, LONG_NAME]], "records": 5}))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "File name too long" not in result.stderr
    messages = execution_dir(tmp_path, "long-name") / "airbyte_messages"
    assert len(read_jsonl(messages / "records.jsonl")) == 5
    [(file_name, entry)] = json.loads((messages / "records_per_stream" / MANIFEST).read_text()).items()
    assert entry == {"stream": LONG_NAME, "namespace": None, "count": 5}
    assert file_name.startswith("s" * 100 + "-") and len(file_name) < 130
    assert len(read_jsonl(messages / "records_per_stream" / file_name)) == 5
    assert query(tmp_path / "long-name" / "duck.db", "SELECT stream, count(*) FROM records GROUP BY ALL") == [
        (LONG_NAME, 5)
    ]
    assert leftovers(docker_client, "long-name") == []


def test_an_oom_killed_connector_is_reported_as_out_of_memory(hostile_image, docker_client, tmp_path):
    result = run_cli(
        *debug_args(tmp_path, "oom", {"streams": [[None, "s"]], "allocate_mb": 400}, "--memory-limit", "64m")
    )
    assert result.returncode == 1
    assert "hostile-source:1 read killed: out of memory (limit 64 MB)" in result.stdout + result.stderr
    assert "exited with code 137" not in result.stdout + result.stderr
    assert len(read_jsonl(execution_dir(tmp_path, "oom") / "airbyte_messages" / "records.jsonl")) == 3
    db = tmp_path / "oom" / "duck.db"
    assert query(db, "SELECT status, exit_code, oom_killed, memory_limit_bytes FROM executions") == [
        ("out of memory", 137, True, 64 * 2**20)
    ]
    assert query(db, "SELECT count(*) FROM records") == [(3,)]
    assert leftovers(docker_client, "oom") == []


def test_cpus_limit_the_connector(hostile_image, docker_client, tmp_path):
    """1 s of CPU at half a CPU takes at least 2 s; the limits are in the executions row."""
    result = run_cli(*debug_args(tmp_path, "cpus", {"cpu_seconds": 1}, "--cpus", "0.5", "--memory-limit", "1g"))
    assert result.returncode == 0, result.stderr
    [(duration, cpu, cpus, memory)] = query(
        tmp_path / "cpus" / "duck.db", "SELECT duration_s, cpu_seconds, cpus, memory_limit_bytes FROM executions"
    )
    assert duration >= 1.9 and 0.9 <= cpu <= duration and cpus == 0.5 and memory == 2**30
    assert leftovers(docker_client, "cpus") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory-limit", "lots"], "Error: --memory-limit 'lots': give a size such as 512m or 2g (units b, k, m, g)"),
        (["--memory-limit", "1k"], "Error: --memory-limit '1k': the engine needs at least 6m"),
        (["--cpus", "one"], "Error: --cpus 'one': give a number of CPUs such as 1.5"),
        (["--cpus", "0"], "Error: --cpus '0': give a number of CPUs from 0.01 up, such as 1.5"),
    ],
)
def test_bad_limits_are_one_usage_line(tmp_path, args, message):
    result = run_cli("debug", "spec", "-c", HOSTILE_IMAGE, "--output-dir", tmp_path, *args)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [message]
    assert list(tmp_path.iterdir()) == []


def test_the_suite_takes_the_limits_from_both_entry_points(demo_images, docker_client, tmp_path):
    for via_cli in (False, True):
        bad = run_suite(*demo_args("1.0.0", "2.0.0", "--cpus=lots"), session_dir=tmp_path / "bad", via_cli=via_cli)
        assert bad.returncode == 4, bad.stderr
        errors = [line for line in bad.stderr.splitlines() if line.strip()]
        assert errors == ["ERROR: --cpus 'lots': give a number of CPUs such as 1.5"], bad.stderr
    session = tmp_path / "session"
    run = run_suite(*demo_args("1.0.0", "2.0.0", "--memory-limit=300m", "--cpus=1.5", "--disable-proxy"),
                    session_dir=session, via_cli=True)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    limits = query(session / "duck.db", "SELECT DISTINCT command, memory_limit_bytes, cpus FROM executions")
    assert limits == [("spec", 300 * 2**20, 1.5)]


def test_a_short_demo_read_has_its_peak_memory_and_cpu_time(demo_images, docker_client, tmp_path):
    result = run_cli("debug", "read", "-c", "live-tests/source-demo:1.0.0", "--config-path", DEMO_DIR / "config.json",
                     "--catalog-path", DEMO_DIR / "configured_catalog.json", "--output-dir", tmp_path,
                     "--run-id", "short", "--disable-proxy")  # fmt: skip
    assert result.returncode == 0, result.stderr
    [(duration, peak, cpu)] = query(
        tmp_path / "short" / "duck.db", "SELECT duration_s, peak_memory_bytes, cpu_seconds FROM executions"
    )
    assert duration < 5
    assert 2**20 < peak < 2**30
    assert 0 < cpu < duration + 1


def _duckdb_cli() -> str:
    """The DuckDB CLI users install from PyPI (`pip install duckdb-cli`), a release line behind the wheel."""
    cli = os.environ.get("LIVE_TESTS_DUCKDB_CLI") or shutil.which("duckdb")
    if cli is None:
        pytest.fail("the DuckDB CLI is needed: pip install duckdb-cli (or set LIVE_TESTS_DUCKDB_CLI)")
    return cli


def test_the_duckdb_cli_from_pypi_opens_a_session_database(hostile_image, docker_client, tmp_path):
    """Masking the secret rewrites duck.db into a new file: that one too."""
    result = run_cli(*debug_args(tmp_path, "cli", {"streams": NAMES, "records": 2, "api_key": "k3y-0f-h0stile"}))
    assert result.returncode == 0, result.stderr
    assert b"k3y-0f-h0stile" not in (tmp_path / "cli" / "duck.db").read_bytes()
    cli = _duckdb_cli()
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True).stdout
    assert not version.startswith("v2."), f"{cli} is {version}: the check needs the older CLI line"
    sql = """SELECT count(*) AS records, count(DISTINCT stream) AS streams, min(data->>'id') AS first,
                    (SELECT min(message) FROM logs WHERE message LIKE 'key=%') AS log FROM records"""
    opened = subprocess.run(
        [cli, "-readonly", "-json", str(tmp_path / "cli" / "duck.db"), "-c", sql], capture_output=True, text=True
    )
    assert opened.returncode == 0, opened.stderr
    [row] = json.loads(opened.stdout)
    assert row == {"records": 12, "streams": 6, "first": "0", "log": row["log"]}
    assert row["log"].startswith("key=") and "k3y-0f-h0stile" not in row["log"]


def test_a_remote_engine_is_measured_through_its_stats_api(hostile_image, docker_client, request, tmp_path):
    """No cgroup files to read over TCP: the stats API, every 0.5 s, still gets a 3-second run's usage."""
    engine = request.getfixturevalue("tcp_engine")
    result = run_cli(*debug_args(tmp_path, "remote", {"cpu_seconds": 3}), env={"DOCKER_HOST": engine})
    assert result.returncode == 0, result.stderr
    [(duration, peak, cpu)] = query(
        tmp_path / "remote" / "duck.db", "SELECT duration_s, peak_memory_bytes, cpu_seconds FROM executions"
    )
    assert 2**20 < peak < 2**30
    assert 1 < cpu <= duration
    assert leftovers(docker_client, "remote") == []
