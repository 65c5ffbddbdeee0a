"""A real Airbyte connector from PyPI (airbyte-source-faker, two versions) through every command."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import leftovers, read_jsonl, run_cli

pytestmark = pytest.mark.docker

VERSIONS = ("6.2.38", "7.2.1")
CONFIG = {"count": 50, "seed": 7, "records_per_slice": 25, "parallelism": 1, "always_updated": False}


@pytest.fixture(scope="module")
def faker_images(docker_client, base_image) -> list[str]:
    from live_tests.images import build_pypi_connector_image

    return [build_pypi_connector_image(docker_client, "airbyte-source-faker", v, base_image) for v in VERSIONS]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faker")
    (path / "config.json").write_text(json.dumps(CONFIG))
    return path


def debug(workdir: Path, images: list[str], command: str, run_id: str, *inputs: str) -> Path:
    images_args = [arg for image in images for arg in ("-c", image)]
    result = run_cli("debug", command, *images_args, *inputs, "--output-dir", workdir / "out", "--run-id", run_id)
    assert result.returncode == 0, result.stderr + result.stdout
    return workdir / "out" / run_id


def messages(run: Path, command: str, version: str, kind: str) -> list[dict]:
    """The messages of one kind; a kind the connector never emitted has no file."""
    path = run / "source-faker" / command / version / "airbyte_messages" / f"{kind}.jsonl"
    return read_jsonl(path) if path.exists() else []


def test_faker_through_every_command(faker_images, docker_client, workdir):
    config = str(workdir / "config.json")

    run = debug(workdir, faker_images, "spec", "spec")
    for version in VERSIONS:
        (spec,) = messages(run, "spec", version, "spec")
        assert "count" in spec["spec"]["connectionSpecification"]["properties"]

    run = debug(workdir, faker_images, "check", "check", "--config-path", config)
    for version in VERSIONS:
        assert [m["connectionStatus"]["status"] for m in messages(run, "check", version, "connection_status")] == [
            "SUCCEEDED"
        ]

    run = debug(workdir, faker_images, "discover", "discover", "--config-path", config)
    (catalog,) = messages(run, "discover", VERSIONS[0], "catalog")
    streams = {s["name"]: s for s in catalog["catalog"]["streams"]}
    assert {"users", "products", "purchases"} <= set(streams)

    # The configured catalog a user would write from discover: users incrementally, products in full.
    configured = {
        "streams": [
            {"stream": streams["users"], "sync_mode": "incremental", "destination_sync_mode": "append",
             "cursor_field": ["updated_at"]},
            {"stream": streams["products"], "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"},
        ]
    }  # fmt: skip
    (workdir / "catalog.json").write_text(json.dumps(configured))
    catalog_args = ("--config-path", config, "--catalog-path", str(workdir / "catalog.json"))
    run = debug(workdir, faker_images, "read", "read", *catalog_args)
    with duckdb.connect(str(run / "duck.db"), read_only=True) as con:
        counts = dict(con.execute("SELECT version || '/' || stream, count(*) FROM records GROUP BY ALL").fetchall())
        same_users = con.execute(
            """SELECT count(*) FROM records c JOIN records t USING (stream)
               WHERE c.version = '6.2.38' AND t.version = '7.2.1' AND stream = 'users'
                 AND c.data->>'id' = t.data->>'id' AND c.data->>'email' = t.data->>'email'"""
        ).fetchone()[0]
        states = con.execute("SELECT count(*) FROM states WHERE version = '7.2.1'").fetchone()[0]
    for version in VERSIONS:
        assert counts[f"{version}/users"] == CONFIG["count"]
        assert counts[f"{version}/products"] > 0
        assert (
            len(messages(run, "read", version, "records")) == counts[f"{version}/users"] + counts[f"{version}/products"]
        )
    assert same_users == CONFIG["count"]  # same seed: the same users from both versions
    assert states > 0

    # Resume from the final state the newer version emitted.
    final_states = {
        m["state"]["stream"]["stream_descriptor"]["name"]: m["state"]
        for m in messages(run, "read", VERSIONS[1], "states")
    }
    assert final_states["users"]["stream"]["stream_state"]["loop_offset"] == CONFIG["count"]
    (workdir / "state.json").write_text(json.dumps(list(final_states.values())))
    run = debug(
        workdir, faker_images, "read-with-state", "state", *catalog_args, "--state-path", str(workdir / "state.json")
    )
    for version in VERSIONS:
        resumed = messages(run, "read-with-state", version, "records")
        # Faker resumes the users stream after the saved offset: nothing new to emit.
        assert [m for m in resumed if m["record"]["stream"] == "users"] == []
        resumed_states = messages(run, "read-with-state", version, "states")
        users_state = [m for m in resumed_states if m["state"]["stream"]["stream_descriptor"]["name"] == "users"]
        assert users_state[-1]["state"]["stream"]["stream_state"]["loop_offset"] == CONFIG["count"]
    assert leftovers(docker_client) == []
