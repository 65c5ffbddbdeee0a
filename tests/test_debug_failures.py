"""Bad input and misbehaving connectors: a clear one-line error, partial artifacts kept, nothing left behind."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DEMO_DIR, leftovers, read_jsonl, run_cli

CATALOG = DEMO_DIR / "configured_catalog.json"


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


# --- input errors: caught before anything is started (no engine needed for most) ---


def test_missing_config_is_named(tmp_path):
    result = run_cli("debug", "check", "-c", "live-tests/source-demo:1.0.0", "--output-dir", tmp_path)
    assert result.returncode == 2
    assert error_line(result.stderr) == "Error: 'check' needs --config-path"
    assert list(tmp_path.iterdir()) == []


def test_read_without_catalog_is_named(tmp_path):
    result = run_cli("debug", "read", "-c", "x/source-demo:1", "--config-path", DEMO_DIR / "config.json")
    assert result.returncode == 2
    assert error_line(result.stderr) == "Error: 'read' needs --catalog-path"


def test_read_with_state_names_every_missing_input():
    result = run_cli("debug", "read-with-state", "-c", "x/source-demo:1")
    assert result.returncode == 2
    assert (
        error_line(result.stderr) == "Error: 'read-with-state' needs --config-path and --catalog-path and --state-path"
    )


def test_invalid_json_config(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"count": 3,')
    result = run_cli("debug", "check", "-c", "x/source-demo:1", "--config-path", bad)
    assert result.returncode == 2
    assert error_line(result.stderr).startswith(f"Error: --config-path {bad} is not valid JSON")


def test_config_file_that_does_not_exist(tmp_path):
    result = run_cli("debug", "check", "-c", "x/source-demo:1", "--config-path", tmp_path / "nope.json")
    assert result.returncode == 2
    assert error_line(result.stderr) == f"Error: --config-path {tmp_path / 'nope.json'}: no such file"


def test_catalog_without_streams(tmp_path):
    catalog = tmp_path / "catalog.json"
    catalog.write_text('{"streams": []}')
    result = run_cli(
        "debug", "read", "-c", "x/s:1", "--config-path", DEMO_DIR / "config.json", "--catalog-path", catalog
    )
    assert result.returncode == 2
    assert "non-empty 'streams' list" in error_line(result.stderr)


def test_engine_unreachable(tmp_path):
    result = run_cli(
        "debug", "spec", "-c", "x/source-demo:1", "--output-dir", tmp_path, env={"DOCKER_HOST": "tcp://127.0.0.1:9"}
    )
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith("Error: cannot reach the Docker engine at tcp://127.0.0.1:9")
    assert line.endswith("start dockerd or set DOCKER_HOST")


@pytest.mark.docker
def test_unknown_image(docker_client, tmp_path):
    result = run_cli("debug", "spec", "-c", "live-tests/no-such-connector:0.0.1", "--output-dir", tmp_path)
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith(
        "Error: image live-tests/no-such-connector:0.0.1 is not on the engine and could not be pulled"
    )
    assert leftovers(docker_client) == []


@pytest.mark.docker
def test_session_database_held_by_another_process(demo_images, docker_client, tmp_path):
    (tmp_path / "held").mkdir()
    hold = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); input()"
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path / "held" / "duck.db")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_cli("debug", "spec", "-c", "live-tests/source-demo:1.0.0", "--output-dir", tmp_path,
                         "--run-id", "held", "--disable-proxy")  # fmt: skip
    finally:
        holder.communicate("\n", timeout=30)
    assert result.returncode == 1
    line = error_line(result.stderr)
    assert line.startswith(f"Error: cannot open {tmp_path / 'held' / 'duck.db'}: IO Error: Could not set lock")
    assert line.endswith("close it there or use another --run-id")
    assert "Traceback" not in result.stderr
    assert leftovers(docker_client, "held") == []


# --- misbehaving connectors: the execution fails, artifacts stay, the container goes ---


def run_demo_read(tmp_path: Path, run_id: str, config: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    result = run_cli("debug", "read", "-c", "live-tests/source-demo:1.0.0", "--config-path", config,
                     "--catalog-path", CATALOG, "--output-dir", tmp_path, "--run-id", run_id, *extra)  # fmt: skip
    return result, tmp_path / run_id / "source-demo" / "read" / "1.0.0"


@pytest.mark.docker
def test_crash_mid_stream_keeps_what_was_emitted(demo_images, docker_client, demo_config, tmp_path):
    result, execution = run_demo_read(tmp_path, "crash", demo_config(crash_after_records=5))
    assert result.returncode == 1
    assert "source-demo:1.0.0 read exited with code 1" in result.stderr
    assert "demo crash after 5 records" in result.stderr  # the stderr tail is shown
    assert len(read_jsonl(execution / "airbyte_messages" / "records.jsonl")) == 5
    assert "Traceback" in (execution / "stderr.log").read_text()
    with duckdb.connect(str(tmp_path / "crash" / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM records").fetchone() == (5,)
        assert con.execute("SELECT status, exit_code FROM executions").fetchall() == [("failed (exit 1)", 1)]
        errors = con.execute("SELECT trace->'error'->>'message' FROM traces WHERE trace_type = 'ERROR'").fetchall()
    assert errors and "demo crash" in errors[0][0]
    assert leftovers(docker_client, "crash") == []


@pytest.mark.docker
def test_garbage_lines_and_a_20mb_record(demo_images, docker_client, demo_config, tmp_path):
    result, execution = run_demo_read(tmp_path, "garbage", demo_config(print_garbage=True, huge_record_mb=20))
    assert result.returncode == 0, result.stderr
    invalid = read_jsonl(execution / "airbyte_messages" / "invalid_lines.jsonl")
    assert len(invalid) >= 2 and all(entry["text"] and entry["line_number"] > 0 for entry in invalid)
    stdout = (execution / "stdout.log").read_bytes()
    assert all(entry["text"].encode() in stdout for entry in invalid)
    with duckdb.connect(str(tmp_path / "garbage" / "duck.db"), read_only=True) as con:
        huge = con.execute("SELECT length(data->>'payload') FROM records WHERE data->>'event_type' = 'huge'").fetchall()
        invalid_rows = con.execute("SELECT count(*) FROM invalid_lines").fetchone()[0]
    assert huge == [(20 * 1024 * 1024,)]
    assert invalid_rows == len(invalid)
    assert "invalid_lines" in result.stdout  # counted in the summary
    assert leftovers(docker_client, "garbage") == []


@pytest.mark.docker
def test_hung_connector_is_killed_at_the_timeout(demo_images, docker_client, demo_config, tmp_path):
    started = time.monotonic()
    result, execution = run_demo_read(tmp_path, "hang", demo_config(hang_seconds=300), "--timeout", "5")
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    assert "source-demo:1.0.0 read timed out after 5s and was killed" in result.stderr
    # The record printed before the hang is kept.
    assert len(read_jsonl(execution / "airbyte_messages" / "records.jsonl")) == 1
    with duckdb.connect(str(tmp_path / "hang" / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT status FROM executions").fetchone() == ("timed out",)
    assert leftovers(docker_client, "hang") == []


def start_hanging_read(tmp_path: Path, run_id: str, config: Path) -> tuple[subprocess.Popen, Path]:
    """Both demo versions reading; returns once each has its first record on disk (they then hang)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "live_tests.cli", "debug", "read", "-c", "live-tests/source-demo:1.0.0",
         "-c", "live-tests/source-demo:2.0.0", "--config-path", str(config), "--catalog-path", str(CATALOG),
         "--output-dir", str(tmp_path), "--run-id", run_id],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    execution = tmp_path / run_id / "source-demo" / "read"
    both = [execution / version / "airbyte_messages" / "records.jsonl" for version in ("1.0.0", "2.0.0")]
    deadline = time.monotonic() + 90
    while not all(r.exists() and r.stat().st_size for r in both) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(r.exists() and r.stat().st_size for r in both), "a connector never got to its first record"
    return process, both[0]


@pytest.mark.docker
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_read_cleans_up_and_keeps_artifacts(demo_images, docker_client, demo_config, tmp_path, sig):
    run_id = f"interrupt-{sig.name.lower()}"
    process, records = start_hanging_read(tmp_path, run_id, demo_config(hang_seconds=300))
    assert len(leftovers(docker_client, run_id, role="connector")) == 2  # both connectors are running
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert f"partial artifacts kept in {tmp_path / run_id}" in stderr.replace("\n", "")
    assert len(read_jsonl(records)) == 1
    assert leftovers(docker_client, run_id) == []
    with duckdb.connect(str(tmp_path / run_id / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT DISTINCT status FROM executions").fetchall() == [("interrupted",)]


@pytest.mark.docker
def test_ctrl_c_racing_the_engine_still_loads_every_execution(demo_images, docker_client, demo_config, tmp_path):
    """Ctrl-C while containers come and go: a container removed between the engine's listing and its
    inspection makes a listing fail (docker SDK's NotFound). The run still stops its connectors, waits for
    every execution to load what it got, removes everything and re-raises the interrupt."""
    from docker.errors import NotFound
    from docker.models.containers import ContainerCollection

    from live_tests.models import Command, ConnectorImage, ConnectorInputs, ExecutionInputs
    from live_tests.pipeline import run_executions
    from live_tests.store.session_db import SessionDatabase

    run_id = "interrupt-race"
    inputs = ConnectorInputs(config=demo_config(hang_seconds=300), catalog=CATALOG)
    executions = [
        ExecutionInputs(ConnectorImage.parse(image), Command.READ, inputs, tmp_path / image[-5:], run_id)
        for image in demo_images
    ]
    records = [e.artifacts_dir / "airbyte_messages" / "records.jsonl" for e in executions]
    real_list = ContainerCollection.list

    def racing_list(self, *args, sparse=False, ignore_removed=False, **kwargs):
        found = real_list(self, *args, sparse=sparse, ignore_removed=ignore_removed, **kwargs)
        if not (sparse or ignore_removed):  # what the SDK does when it inspects a container just removed
            raise NotFound("No such container: removed while listed")
        return found

    def interrupt_once_both_read() -> None:
        deadline = time.monotonic() + 90
        while not all(r.exists() and r.stat().st_size for r in records) and time.monotonic() < deadline:
            time.sleep(0.1)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # as Ctrl-C: inside run_executions

    interrupter = threading.Thread(target=interrupt_once_both_read, daemon=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ContainerCollection, "list", racing_list)
        interrupter.start()
        with SessionDatabase(tmp_path / "duck.db") as db, pytest.raises(KeyboardInterrupt):
            run_executions(docker_client, db, executions, max_parallel=2)
    interrupter.join()
    with duckdb.connect(str(tmp_path / "duck.db"), read_only=True) as con:
        rows = con.execute("SELECT version, status FROM executions ORDER BY version").fetchall()
        loaded = con.execute("SELECT version, count(*) FROM records GROUP BY ALL ORDER BY version").fetchall()
    assert rows == [("1.0.0", "interrupted"), ("2.0.0", "interrupted")]
    assert loaded == [("1.0.0", 1), ("2.0.0", 1)]  # the record each printed before it hung
    assert leftovers(docker_client, run_id) == []


@pytest.mark.docker
def test_ctrl_c_while_the_connector_floods_stdout(flood_image, docker_client, tmp_path):
    """The engine reports a killed container only once its output is read: live-tests keeps reading."""
    run_id = "flood"
    config, catalog = tmp_path / "config.json", tmp_path / "catalog.json"
    config.write_text(json.dumps({"records": 50_000_000}))
    stream = {"name": "bench", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}
    catalog.write_text(json.dumps({"streams": [{"stream": stream, "sync_mode": "full_refresh"}]}))
    process = subprocess.Popen(
        [sys.executable, "-m", "live_tests.cli", "debug", "read", "-c", flood_image, "--config-path", str(config),
         "--catalog-path", str(catalog), "--output-dir", str(tmp_path), "--run-id", run_id, "--disable-proxy"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    execution = tmp_path / run_id / "flood-source" / "read" / "1"
    records = execution / "airbyte_messages" / "records.jsonl"
    deadline = time.monotonic() + 60
    while not (records.exists() and records.stat().st_size > 50_000_000) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert records.exists() and records.stat().st_size > 50_000_000, "the connector never got going"
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        run_cli("cleanup", "--run-id", run_id, "--force")
        raise
    assert process.returncode == 130, stderr
    lines = (execution / "stdout.log").read_bytes().count(b"\n")
    assert lines > 100_000
    assert len(read_jsonl(records)) == lines
    with duckdb.connect(str(tmp_path / run_id / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT count(*), max(seq) FROM records").fetchone() == (lines, lines)
        assert con.execute("SELECT status FROM executions").fetchall() == [("interrupted",)]
    assert not (execution / ".loading").exists()
    assert leftovers(docker_client, run_id) == []


@pytest.mark.docker
def test_cleanup_removes_what_a_killed_run_left(demo_images, docker_client, demo_config, tmp_path):
    run_id = "killed"
    process, _ = start_hanging_read(tmp_path, run_id, demo_config(hang_seconds=300))
    process.kill()  # SIGKILL: no chance to clean up
    process.communicate(timeout=30)
    left = leftovers(docker_client, run_id)
    connectors = leftovers(docker_client, run_id, role="connector")
    assert len(connectors) == 2 and all(item.startswith("container live-tests-killed-") for item in connectors)
    result = run_cli("cleanup", "--run-id", run_id)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()[:-1]) == sorted(f"removed {item}" for item in left)
    assert result.stdout.splitlines()[-1] == f"{len(left)} object(s) removed"
    assert leftovers(docker_client, run_id) == []
