"""A second real connector family through the suite: airbyte-source-pokeapi from PyPI against a fake PokeAPI.

The connector speaks real HTTPS to https://pokeapi.co; the proxy sends it to the fake PokeAPI of
tests/test_proxy.py (`map_remote`). The expected findings were verified by hand against the
wheels' sources and both versions' JSONL outputs:

- 0.2.14 -> 0.2.15: every file of the two wheels is byte-identical (only the dist-info version
  differs). Nothing to find: verdict passed, no finding, not even a note.
- 0.2.0 -> 0.2.15: 0.2.0 ships spec.yaml and schemas/pokemon.json beside a manifest 0.29.0 that
  sets `paginator: NoPagination`; 0.2.15's manifest 0.78.5 inlines spec and schema, has no
  paginator. On the same CDK (1.8.0) that makes exactly these differences:
  spec: `documentationUrl` and the spec `title` dropped, `additionalProperties: true` and the
  property's `order: 0` added (all cosmetic or the JSON-schema default);
  catalog: `json_schema.additionalProperties: true` added (the default), `is_resumable`
  true -> false (an explicit paginator makes the CDK give the stream a resumable full-refresh
  cursor); read: the final state is that cursor's `{"__ab_full_refresh_sync_complete": true}` in
  0.2.0 and the no-cursor sentinel `{"__ab_no_cursor_state_message": true}` in 0.2.15.
  Records (the one pokemon), stream statuses and HTTP calls are the same; the record is a static
  API answer, so the noise baseline finds no volatile path.
  read-with-state, from the control's final state: 0.2.0 takes its own sentinel as "this full
  refresh is complete" and reads nothing (statuses STARTED COMPLETE, no HTTP call); 0.2.15 has no
  cursor and reads the pokemon (STARTED RUNNING COMPLETE, one GET); final states as in read.

The state change is real but breaks nothing: the stream is configured full_refresh, and read
with either version's final state, 0.2.15 reads the whole stream and so does 0.2.0 from
0.2.15's state (checked by hand with `live-tests debug read-with-state`): a changed final state
of a full-refresh stream is listed, not failed. Likewise the target's STARTED RUNNING COMPLETE
(it read what the control skipped) still completes: a change, not a failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import read_jsonl
from tests.test_proxy import DITTO, FAKE_POKEAPI, Upstream, _start_upstream, _stop_upstream
from tests.test_regression_suite import SuiteRun, run_suite

pytestmark = pytest.mark.docker

PACKAGE = "airbyte-source-pokeapi"
IMAGE = "airbyte/source-pokeapi"
# Their own pins (airbyte-cdk <1) resolve to a CDK that does not run on Python 3.11.
OVERRIDES = ("airbyte-cdk==1.8.0", "pendulum<3")
SAME_CODE = ("0.2.14", "0.2.15")
CHANGED = ("0.2.0", "0.2.15")
DITTO_URL = "https://pokeapi.co/api/v2/pokemon/ditto"
DITTO_ENDPOINT = "GET pokeapi.co/api/v2/pokemon/ditto"
# A configured catalog as a user writes it from discover, the schema cut to the fields we need.
CATALOG = {
    "streams": [
        {
            "stream": {
                "name": "pokemon",
                "json_schema": {
                    "type": "object",
                    "properties": {"id": {"type": ["null", "integer"]}, "name": {"type": ["null", "string"]}},
                },
                "supported_sync_modes": ["full_refresh"],
                "source_defined_primary_key": [["id"]],
            },
            "sync_mode": "full_refresh",
            "destination_sync_mode": "overwrite",
        }
    ]
}

# 0.2.0 -> 0.2.15, hand-verified: (test, finding kind, stream, path) of every finding, INFO included.
CHANGED_FINDINGS = {
    ("test_catalogs_are_the_same", "resumability_changed", "pokemon", "$.is_resumable"),
    ("test_catalogs_are_the_same", "equivalent_change", "pokemon", "$.json_schema.additionalProperties"),
    ("test_states_are_the_same[read]", "final_state_changed", "pokemon", None),
    ("test_states_are_the_same[read-with-state]", "final_state_changed", "pokemon", None),
    ("test_record_count_per_stream[read-with-state]", "stream_extra_in_target", "pokemon", None),
    ("test_http_traffic_is_the_same[read-with-state]", "http_endpoint_added", None, DITTO_ENDPOINT),
    (
        "test_stream_statuses_and_errors_are_the_same[read-with-state]",
        "stream_status_sequence_changed",
        "pokemon",
        None,
    ),
    # Notes: the read-with-state record has a schema in target only; the spec's cosmetic and default changes.
    ("test_inferred_schemas_are_the_same[read-with-state]", "stream_only_in_target", "pokemon", None),
    ("test_spec_is_compatible", "equivalent_change", None, "$.connectionSpecification.additionalProperties"),
    ("test_spec_is_compatible", "cosmetic_change", None, "$.connectionSpecification.properties.pokemon_name.order"),
    ("test_spec_is_compatible", "cosmetic_change", None, "$.connectionSpecification.title"),
    ("test_spec_is_compatible", "cosmetic_change", None, "$.documentationUrl"),
}
# The spec test passes with notes only: its notes are in its findings.json and in its summary.
CHANGED_SPEC_NOTES = {
    "$.connectionSpecification.additionalProperties",
    "$.connectionSpecification.properties.pokemon_name.order",
    "$.connectionSpecification.title",
    "$.documentationUrl",
}
# The right outcome of each test that finds something (no change here breaks a user); every other one passes.
CHANGED_OUTCOMES = {
    name: "passed with findings"
    for name in (
        "test_catalogs_are_the_same",
        "test_states_are_the_same[read]",
        "test_states_are_the_same[read-with-state]",
        "test_record_count_per_stream[read-with-state]",
        "test_http_traffic_is_the_same[read-with-state]",
        "test_stream_statuses_and_errors_are_the_same[read-with-state]",
    )
}
HTTP_TEST = "test_http_traffic_is_the_same[read]"


@pytest.fixture(scope="module")
def pokeapi_images(docker_client: docker.DockerClient, base_image: str) -> None:
    from live_tests.images import build_pypi_connector_image

    for version in sorted({*SAME_CODE, *CHANGED}):
        build_pypi_connector_image(docker_client, PACKAGE, version, base_image, overrides=OVERRIDES)


@pytest.fixture(scope="module")
def fake_pokeapi(docker_client: docker.DockerClient, base_image: str) -> Iterator[Upstream]:
    upstream = _start_upstream(docker_client, base_image, FAKE_POKEAPI)
    yield upstream
    _stop_upstream(docker_client, upstream)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    path = tmp_path_factory.mktemp("pokeapi")
    (path / "config.json").write_text(json.dumps({"pokemon_name": "ditto"}))
    (path / "catalog.json").write_text(json.dumps(CATALOG))
    return path / "config.json", path / "catalog.json"


def pokeapi_suite(
    versions: tuple[str, str], fake: Upstream, inputs: tuple[Path, Path], session_dir: Path, *extra: str
) -> SuiteRun:
    control, target = versions
    return run_suite(
        *extra,
        f"--connector-image={IMAGE}",
        f"--control-version={control}",
        f"--target-version={target}",
        f"--config-path={inputs[0]}",
        f"--catalog-path={inputs[1]}",
        rf"--proxy-option=map_remote=|https://pokeapi\.co|http://host.docker.internal:{fake.host_port}",
        session_dir=session_dir,
    )


@pytest.fixture(scope="module")
def same_code(pokeapi_images, fake_pokeapi, inputs, tmp_path_factory) -> SuiteRun:
    return pokeapi_suite(SAME_CODE, fake_pokeapi, inputs, tmp_path_factory.mktemp("same") / "session")


@pytest.fixture(scope="module")
def changed(pokeapi_images, fake_pokeapi, inputs, tmp_path_factory) -> SuiteRun:
    """With read-with-state from the final state 0.2.0 leaves after a read (its sync-complete sentinel)."""
    path = tmp_path_factory.mktemp("changed")
    state = {"stream_descriptor": {"name": "pokemon"}, "stream_state": {"__ab_full_refresh_sync_complete": True}}
    (path / "state.json").write_text(json.dumps([{"type": "STREAM", "stream": state}]))
    return pokeapi_suite(CHANGED, fake_pokeapi, inputs, path / "session", f"--state-path={path / 'state.json'}")


def all_findings(run: SuiteRun) -> set[tuple[str, str, str | None, str | None]]:
    """(test, kind, stream, path) of every finding in every findings.json the report links to."""
    tests = [t["name"] for t in run.report["tests"]]
    return {(test, f["kind"], f["stream"], f["path"]) for test in tests for f in run.findings(test)}


def notes(run: SuiteRun, test: str) -> set[str]:
    """The paths a test's summary lists under "Notes (n):"."""
    _, _, rest = run.test_entry(test)["summary"].partition("Notes (")
    return set(re.findall(r"^  - `([^`]+)`", rest, flags=re.MULTILINE))


def not_passed(run: SuiteRun) -> dict[str, str]:
    """Outcomes other than passed; read-with-state is skipped (no --state-path) and left out."""
    return {
        name: outcome
        for name, outcome in run.outcomes().items()
        if outcome != "passed" and not (outcome == "skipped" and name.endswith("[read-with-state]"))
    }


def test_identical_code_passes_with_no_finding(same_code: SuiteRun) -> None:
    assert same_code.returncode == 0, same_code.stdout[-3000:] + same_code.stderr[-3000:]
    report = same_code.report
    assert (report["connector"], report["control_version"], report["target_version"]) == ("source-pokeapi", *SAME_CODE)
    assert report["verdict"] == "passed"
    assert not_passed(same_code) == {}
    assert all_findings(same_code) == set()
    assert [t["name"] for t in report["tests"] if "Notes (" in t["summary"]] == []
    records = {(r["command"], r["name"]): (r["control"], r["target"]) for r in report["records_per_stream"]}
    assert records == {("read", "pokemon"): (1, 1)}


def test_changed_pair_finds_exactly_the_real_changes(changed: SuiteRun) -> None:
    report = changed.report
    assert (report["connector"], report["control_version"], report["target_version"]) == ("source-pokeapi", *CHANGED)
    assert all_findings(changed) == CHANGED_FINDINGS
    assert notes(changed, "test_spec_is_compatible") == CHANGED_SPEC_NOTES
    assert changed.test_entry("test_spec_is_compatible")["outcome"] == "passed"  # cosmetic or default: notes only
    (state,) = changed.findings("test_states_are_the_same[read]")
    assert (state["control"], state["target"]) == (
        {"__ab_full_refresh_sync_complete": True},
        {"__ab_no_cursor_state_message": True},
    )
    (resumable,) = [f for f in changed.findings("test_catalogs_are_the_same") if f["path"] == "$.is_resumable"]
    assert (resumable["control"], resumable["target"], resumable["severity"]) == (True, False, "change")
    # The one record is the same in both versions, compared by its primary key.
    records = changed.test_entry("test_records_are_the_same[read]")["summary"]
    assert re.search(r"^pokemon\s+id\s+1\s+1\s+0\s+0\s+0$", records, flags=re.MULTILINE), records
    # read-with-state: 0.2.0 skipped the stream its state says is complete, 0.2.15 read it.
    (statuses,) = changed.findings("test_stream_statuses_and_errors_are_the_same[read-with-state]")
    assert (statuses["control"], statuses["target"]) == (["STARTED", "COMPLETE"], ["STARTED", "RUNNING", "COMPLETE"])
    (extra,) = changed.findings("test_record_count_per_stream[read-with-state]")
    assert (extra["control"], extra["target"]) == (0, 1)
    resumed = changed.session_dir / "command_execution_artifacts/source-pokeapi/read-with-state"
    assert read_jsonl(resumed / "0.2.0/http_flows.jsonl") == []
    assert [f["url"] for f in read_jsonl(resumed / "0.2.15/http_flows.jsonl")] == [DITTO_URL]
    # Only these tests may say anything: every other one that ran passed.
    assert set(not_passed(changed)) == set(CHANGED_OUTCOMES)


def test_changed_pair_passes_with_findings(changed: SuiteRun) -> None:
    assert not_passed(changed) == CHANGED_OUTCOMES
    assert changed.report["verdict"] == "passed"
    assert changed.returncode == 0


@pytest.mark.parametrize("pair", ["same_code", "changed"])
def test_http_calls_captured_compared_and_the_same(
    pair: str, request: pytest.FixtureRequest, fake_pokeapi: Upstream
) -> None:
    run: SuiteRun = request.getfixturevalue(pair)
    versions = SAME_CODE if pair == "same_code" else CHANGED
    artifacts = run.session_dir / "command_execution_artifacts" / "source-pokeapi"
    # check reads one record, read reads the stream (the control twice: the noise baseline): one GET
    # each, to pokeapi.co as the connector sent it.
    executions = [(c, v) for c in ("check", "read") for v in versions] + [("read", f"{versions[0]}+rerun")]
    for command, version in executions:
        folder = artifacts / command / version
        assert (folder / "http_dump.har").is_file() and (folder / "http_dump.mitm").is_file()
        flows = read_jsonl(folder / "http_flows.jsonl")
        assert [(f["method"], f["url"], f["status"], f["error"]) for f in flows] == [("GET", DITTO_URL, 200, None)], (
            folder
        )
        assert flows[0]["sent_url"] == f"http://host.docker.internal:{fake_pokeapi.host_port}/api/v2/pokemon/ditto"
        assert flows[0]["response_size"] == len(json.dumps(DITTO))
    # Over all commands (the rerun aside): check and read; the changed target also read-with-state.
    calls = {v: t["top_endpoints"] for v, t in run.report["http_traffic"].items()}
    target_calls = 2 if pair == "same_code" else 3
    assert calls == {versions[0]: [[DITTO_ENDPOINT, 2]], versions[1]: [[DITTO_ENDPOINT, target_calls]]}
    assert {(r["method"], r["path"]) for r in fake_pokeapi.served()} == {("GET", "/api/v2/pokemon/ditto")}
    # The suite compares the calls: the same one endpoint, once per version; nothing found.
    http = run.test_entry(HTTP_TEST)
    assert (http["outcome"], http["diff_files"]) == ("passed", [])
    assert f"{DITTO_ENDPOINT}: control 1, target 1" in http["summary"]
    # Nothing in a static API answer changes between two control runs.
    reads = ["read"] if pair == "same_code" else ["read", "read-with-state"]
    assert [(n["command"], n["volatile"]) for n in run.report["noise"]] == [(r, []) for r in reads]
