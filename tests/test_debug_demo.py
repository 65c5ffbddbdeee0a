"""`live-tests debug` on the demo connector's two versions, through every command, against real Docker."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.conftest import DEMO_DIR, leftovers, read_jsonl, run_cli

pytestmark = pytest.mark.docker

CONFIG = DEMO_DIR / "config.json"
CATALOG = DEMO_DIR / "configured_catalog.json"
STATE = DEMO_DIR / "state.json"
INPUTS = {
    "spec": [],
    "check": ["--config-path", CONFIG],
    "discover": ["--config-path", CONFIG],
    "read": ["--config-path", CONFIG, "--catalog-path", CATALOG],
    "read-with-state": ["--config-path", CONFIG, "--catalog-path", CATALOG, "--state-path", STATE],
}


@pytest.fixture(scope="module")
def demo_runs(demo_images, docker_client, tmp_path_factory) -> dict[str, Path]:
    """Each command run once on both demo versions (concurrently); the run folder per command."""
    out = tmp_path_factory.mktemp("debug")
    runs = {}
    for command, args in INPUTS.items():
        run_id = f"demo-{command}"
        images = ["-c", demo_images[0], "-c", demo_images[1]]
        result = run_cli("debug", command, *images, *args, "--output-dir", out, "--run-id", run_id)
        assert result.returncode == 0, result.stderr
        assert leftovers(docker_client, run_id) == []
        runs[command] = out / run_id
    return runs


def artifacts(run_dir: Path, command: str, version: str) -> Path:
    return run_dir / "source-demo" / command / version / "airbyte_messages"


def test_spec_differs_by_the_documented_field(demo_runs):
    v1 = read_jsonl(artifacts(demo_runs["spec"], "spec", "1.0.0") / "spec.jsonl")
    v2 = read_jsonl(artifacts(demo_runs["spec"], "spec", "2.0.0") / "spec.jsonl")
    assert len(v1) == len(v2) == 1
    props_v1 = v1[0]["spec"]["connectionSpecification"]["properties"]
    props_v2 = v2[0]["spec"]["connectionSpecification"]["properties"]
    assert set(props_v2) - set(props_v1) == {"page_size"}
    assert props_v1["api_key"]["airbyte_secret"] is True
    with duckdb.connect(str(demo_runs["spec"] / "duck.db"), read_only=True) as con:
        rows = con.execute(
            "SELECT version, list_contains(json_keys(spec, '$.connectionSpecification.properties'), 'page_size') "
            "FROM spec ORDER BY version"
        ).fetchall()
    assert rows == [("1.0.0", False), ("2.0.0", True)]


def test_check_succeeds_on_both(demo_runs):
    for version in ("1.0.0", "2.0.0"):
        statuses = read_jsonl(artifacts(demo_runs["check"], "check", version) / "connection_status.jsonl")
        assert [s["connectionStatus"]["status"] for s in statuses] == ["SUCCEEDED"]
    with duckdb.connect(str(demo_runs["check"] / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT version, status FROM connection_status ORDER BY version").fetchall() == [
            ("1.0.0", "SUCCEEDED"),
            ("2.0.0", "SUCCEEDED"),
        ]


def test_discover_shows_the_schema_change(demo_runs):
    def orders_properties(version: str) -> dict:
        (catalog,) = read_jsonl(artifacts(demo_runs["discover"], "discover", version) / "catalog.jsonl")
        streams = {s["name"]: s for s in catalog["catalog"]["streams"]}
        assert set(streams) == {"customers", "orders", "events"}
        return streams["orders"]["json_schema"]["properties"]

    assert "currency" not in orders_properties("1.0.0")
    assert "currency" in orders_properties("2.0.0")


def test_read_records_land_in_jsonl_per_stream_and_duckdb(demo_runs):
    run = demo_runs["read"]
    with duckdb.connect(str(run / "duck.db"), read_only=True) as con:
        per_stream = dict(con.execute("SELECT version || '/' || stream, count(*) FROM records GROUP BY ALL").fetchall())
        executions = con.execute(
            "SELECT version, status, exit_code, stdout_lines FROM executions ORDER BY 1"
        ).fetchall()
        names = dict(
            con.execute(
                "SELECT version, data->>'name' FROM records WHERE stream = 'customers' AND (data->>'id')::INT = 7"
            ).fetchall()
        )
    for version in ("1.0.0", "2.0.0"):
        messages = artifacts(run, "read", version)
        records = read_jsonl(messages / "records.jsonl")
        assert len(records) == sum(n for key, n in per_stream.items() if key.startswith(version))
        for stream in ("customers", "orders", "events"):
            in_file = read_jsonl(messages / "records_per_stream" / f"{stream}.jsonl")
            assert {r["record"]["stream"] for r in in_file} == {stream}
            assert len(in_file) == per_stream[f"{version}/{stream}"] > 0
        stdout_lines = (messages.parent / "stdout.log").read_bytes().count(b"\n")
        assert stdout_lines == next(e[3] for e in executions if e[0] == version)
    assert [e[:3] for e in executions] == [("1.0.0", "ok", 0), ("2.0.0", "ok", 0)]
    # The documented differences: customer 7 renamed (upper case), order 5 line 2 dropped.
    assert names["2.0.0"] == names["1.0.0"].upper() != names["1.0.0"]
    assert per_stream["2.0.0/orders"] == per_stream["1.0.0/orders"] - 1
    assert per_stream["2.0.0/customers"] == per_stream["1.0.0/customers"]


def test_read_with_state_resumes_and_changes_state_format(demo_runs):
    full = demo_runs["read"]
    resumed = demo_runs["read-with-state"]
    with duckdb.connect(str(resumed / "duck.db"), read_only=True) as con:
        resumed_customers = con.execute(
            "SELECT count(*) FROM records WHERE version = '1.0.0' AND stream = 'customers'"
        ).fetchone()[0]
        final_states = dict(
            con.execute(
                "SELECT version, state->'stream'->'stream_state'->>'updated_at' FROM states "
                "WHERE stream = 'customers' QUALIFY row_number() OVER (PARTITION BY version ORDER BY seq DESC) = 1"
            ).fetchall()
        )
    with duckdb.connect(str(full / "duck.db"), read_only=True) as con:
        all_customers = con.execute(
            "SELECT count(*) FROM records WHERE version = '1.0.0' AND stream = 'customers'"
        ).fetchone()[0]
    assert 0 < resumed_customers < all_customers
    assert final_states["1.0.0"].endswith("Z")
    assert final_states["2.0.0"].endswith("+00:00")
    assert final_states["1.0.0"][:19] == final_states["2.0.0"][:19]


def test_a_rerun_of_the_same_image_is_a_second_execution(demo_images, docker_client, tmp_path):
    """The noise baseline: the control run twice, concurrently, behind proxies; `label` keeps them apart."""
    from live_tests.models import Command, ConnectorImage, ConnectorInputs, ExecutionInputs
    from live_tests.pipeline import run_executions
    from live_tests.proxy import ProxySettings
    from live_tests.store.session_db import SessionDatabase

    run_id = "demo-rerun"
    executions = [
        ExecutionInputs(
            connector=ConnectorImage.parse(demo_images[0]),
            command=Command.SPEC,
            inputs=ConnectorInputs(),
            artifacts_dir=tmp_path / (label or "first"),
            run_id=run_id,
            label=label,
        )
        for label in ("", "rerun")
    ]
    assert [e.key.version for e in executions] == ["1.0.0", "1.0.0+rerun"]
    with SessionDatabase(tmp_path / "duck.db") as db:
        results = run_executions(docker_client, db, executions, max_parallel=2, proxy=ProxySettings())
    assert [r.status for r in results] == ["ok", "ok"]
    assert [r.inputs.key for r in results] == [e.key for e in executions]
    assert leftovers(docker_client, run_id) == []
    with duckdb.connect(str(tmp_path / "duck.db"), read_only=True) as con:
        rows = con.execute(
            "SELECT version, status, started_at, finished_at, artifacts_dir FROM executions ORDER BY version"
        ).fetchall()
        assert con.execute("SELECT version, count(*) FROM spec GROUP BY ALL ORDER BY 1").fetchall() == [
            ("1.0.0", 1),
            ("1.0.0+rerun", 1),
        ]
        captures = con.execute("SELECT version, mode FROM http_captures ORDER BY version").fetchall()
    assert [(version, status) for version, status, *_ in rows] == [("1.0.0", "ok"), ("1.0.0+rerun", "ok")]
    assert [Path(row[4]).name for row in rows] == ["first", "rerun"]
    assert captures == [("1.0.0", "capture"), ("1.0.0+rerun", "capture")]
    for result, (_, _, started_at, finished_at, _) in zip(results, rows, strict=True):
        assert started_at.utcoffset().total_seconds() == 0 and started_at <= finished_at
        assert (started_at, finished_at) == (result.started_at, result.finished_at)
        assert abs((finished_at - started_at).total_seconds() - result.duration_s) < 1e-5
