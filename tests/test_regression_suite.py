"""The regression suite run as users run it: `pytest regression_tests …` and `live-tests regression …`.

Against real containers: the demo's two versions (the suite must find exactly the differences
built into demo 2.0.0), the same image twice (nothing to find), two airbyte-source-faker versions
from PyPI, diagnostic mode, and a secret sent over HTTP through the proxy that no file may keep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import duckdb
import pytest
from mitmproxy.io import FlowReader

from live_tests.docker_engine import labels
from live_tests.secrets import SecretMasker
from tests.conftest import DEMO_DIR, REPO, read_jsonl

DEMO = "live-tests/source-demo"
DEMO_CATALOG = f"--catalog-path={DEMO_DIR / 'configured_catalog.json'}"
DEMO_INPUTS = (
    f"--config-path={DEMO_DIR / 'config.json'}",
    f"--catalog-path={DEMO_DIR / 'configured_catalog.json'}",
    f"--state-path={DEMO_DIR / 'state.json'}",
)
SPEC_TESTS = ("test_spec_is_compatible", "test_spec_is_valid_json_schema_and_accepts_config", "test_secrets_are_marked")
# test_performance_is_comparable runs for every command: here for spec, check and discover, in READ_TESTS for reads.
PERF_TEST = "test_performance_is_comparable"
OTHER_TESTS = (
    "test_check_succeeds", "test_catalogs_are_the_same", "test_discovered_catalog_is_valid",
    *(f"{PERF_TEST}[{command}]" for command in ("spec", "check", "discover")),
)  # fmt: skip
READ_TESTS = (
    "test_record_count_per_stream",
    "test_all_control_primary_keys_in_target",
    "test_records_are_the_same",
    "test_inferred_schemas_are_the_same",
    "test_states_are_the_same",
    "test_stream_statuses_and_errors_are_the_same",
    "test_records_conform_to_schema",
    "test_primary_keys_are_not_null",
    "test_incremental_streams_emit_state",
    "test_stream_statuses_are_complete",
    "test_http_traffic_is_the_same",
    "test_no_new_non_protocol_output",
    PERF_TEST,
)
READS = ("read", "read-with-state")
ALL_TESTS = frozenset((*SPEC_TESTS, *OTHER_TESTS, *(f"{t}[{r}]" for t in READ_TESTS for r in READS)))

# The demo's built-in differences (demo/versions.py), as the tests that must find them:
# test -> {(finding kind, stream, path)} of every finding that is not INFO.
DEMO_FINDINGS: dict[str, set[tuple[str, str | None, str | None]]] = {
    "test_spec_is_compatible": {("property_added", None, "$.connectionSpecification.properties.page_size")},
    "test_catalogs_are_the_same": {
        ("property_nullability_added", "customers", "$.json_schema.properties.email.type"),
        ("property_added", "orders", "$.json_schema.properties.currency"),
    },
    **{
        f"{test}[{read}]": findings
        for read in READS
        for test, findings in (
            ("test_record_count_per_stream", {("record_count_changed", "orders", None)}),
            ("test_all_control_primary_keys_in_target", {("missing_primary_keys", "orders", None)}),
            ("test_states_are_the_same", {("final_state_changed", "customers", None)}),
        )
    },
    # Customer 7 is before the state's cursor: read-with-state does not emit it.
    "test_records_are_the_same[read]": {("record_field_changed", "customers", "$.name")},
}
# Non-breaking: listed, the test passes with findings (only breaking differences fail).
NON_BREAKING = {"test_spec_is_compatible", "test_catalogs_are_the_same"}
DIAGNOSTIC_WITH_FINDINGS = {"test_records_are_the_same[read]", *(f"test_states_are_the_same[{r}]" for r in READS)}


@dataclass
class SuiteRun:
    returncode: int
    stdout: str
    stderr: str
    session_dir: Path
    junit: Path | None = None

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.session_dir / "report.json").read_text())

    def outcomes(self) -> dict[str, str]:
        return {t["name"]: t["outcome"] for t in self.report["tests"]}

    def test_entry(self, name: str) -> dict[str, Any]:
        return next(t for t in self.report["tests"] if t["name"] == name)

    def findings(self, name: str) -> list[dict[str, Any]]:
        """The test's findings, from the findings.json that report.json links to (none: no diff files)."""
        links = [f for f in self.test_entry(name)["diff_files"] if f.endswith("findings.json")]
        if not links:
            return []
        return json.loads((self.session_dir / links[0]).read_text())["findings"]

    def differences(self, name: str) -> set[tuple[str, str | None, str | None]]:
        return {(f["kind"], f["stream"], f["path"]) for f in self.findings(name) if f["severity"] != "info"}


def run_suite(
    *args: str, session_dir: Path, via_cli: bool = False, env: dict[str, str] | None = None, timeout: float = 900
) -> SuiteRun:
    """The suite in a subprocess from the repo root, as a user runs it."""
    if via_cli:
        command = [sys.executable, "-m", "live_tests.cli", "regression", f"--session-dir={session_dir}", *args]
    else:
        command = [sys.executable, "-m", "pytest", "regression_tests", "-p", "no:cacheprovider", "-q"]
        command += [f"--session-dir={session_dir}", *args]
    process = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    return SuiteRun(process.returncode, process.stdout, process.stderr, session_dir)


def demo_args(control: str, target: str, *extra: str) -> list[str]:
    return [f"--connector-image={DEMO}", f"--control-version={control}", f"--target-version={target}", *extra]


@pytest.fixture(scope="module")
def demo_strict(demo_images: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    tmp = tmp_path_factory.mktemp("strict")
    run = run_suite(
        *demo_args("1.0.0", "2.0.0", *DEMO_INPUTS, "--disable-proxy", "--pr-url=https://github.com/o/r/pull/1"),
        f"--junitxml={tmp / 'junit.xml'}",
        session_dir=tmp / "session",
    )
    run.junit = tmp / "junit.xml"
    return run


@pytest.mark.docker
def test_demo_versions_strict_outcomes(demo_strict: SuiteRun) -> None:
    run = demo_strict
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    expected = {name: "passed" for name in ALL_TESTS}
    expected |= {name: "failed" for name in DEMO_FINDINGS}
    expected |= {name: "passed with findings" for name in NON_BREAKING}  # page_size is optional, email nullable
    assert run.outcomes() == expected
    report = run.report
    assert (report["verdict"], report["blocking"], report["evaluation_mode"]) == ("failed", True, "strict")
    assert report["outcomes"] == {
        "failed": 7, "error": 0, "inconclusive": 0, "passed with findings": 2, "passed": 26, "skipped": 0
    }  # fmt: skip
    assert report["pr_url"] == "https://github.com/o/r/pull/1"
    assert run.test_entry("test_spec_is_compatible")["message"] == (
        "1 non-breaking difference(s): optional property `$.connectionSpecification.properties.page_size` was added"
    )
    assert run.test_entry("test_all_control_primary_keys_in_target[read]")["message"] == (
        "`orders`: 1 control primary keys not in target (e.g. [5,2])"
    )
    assert f"Session folder: {run.session_dir}" in run.stdout


@pytest.mark.docker
def test_demo_versions_findings_are_exactly_the_built_in_differences(demo_strict: SuiteRun) -> None:
    run = demo_strict
    for name in sorted(ALL_TESTS):
        assert run.differences(name) == DEMO_FINDINGS.get(name, set()), name

    def one(name: str, kind: str) -> dict[str, Any]:
        (finding,) = [f for f in run.findings(name) if f["kind"] == kind]
        return finding

    count = one("test_record_count_per_stream[read]", "record_count_changed")
    assert count["control"] - count["target"] == 1  # the dropped order line
    assert one("test_all_control_primary_keys_in_target[read]", "missing_primary_keys")["control"] == [[5, 2]]
    state = one("test_states_are_the_same[read]", "final_state_changed")
    assert state["control"]["updated_at"].endswith("Z") and state["target"]["updated_at"].endswith("+00:00")
    assert state["control"]["updated_at"][:19] == state["target"]["updated_at"][:19]
    assert one("test_records_are_the_same[read]", "record_field_changed")["count"] == 1
    (example,) = read_jsonl(run.session_dir / "test_records_are_the_same_read" / "records_customers.jsonl")
    assert example["key"] == [7]
    assert example["differences"] == [
        {
            "path": "$.name",
            "change": "changed",
            "control": example["control"]["name"],
            "target": example["target"]["name"],
        }
    ]
    assert example["target"]["name"] == example["control"]["name"].upper() != example["control"]["name"]
    summary = (run.session_dir / "test_catalogs_are_the_same" / "summary.txt").read_text()
    assert summary.startswith("Catalog comparison: PASSED with findings (2 non-breaking difference(s))")


@pytest.mark.docker
def test_demo_session_folder_layout(demo_strict: SuiteRun) -> None:
    session = demo_strict.session_dir
    for name in ("report.html", "report.md", "report.json", "duck.db", "configured_catalog.json"):
        assert (session / name).is_file(), name
    for command in ("spec", "check", "discover", "read", "read-with-state"):
        for version in ("1.0.0", "2.0.0"):
            artifacts = session / "command_execution_artifacts" / "source-demo" / command / version
            assert (artifacts / "stdout.log").is_file() and (artifacts / "airbyte_messages").is_dir(), artifacts
    records = session / "command_execution_artifacts/source-demo/read/2.0.0/airbyte_messages/records_per_stream"
    assert sorted(p.name for p in records.iterdir()) == [
        "customers.jsonl",
        "events.jsonl",
        "manifest.json",
        "orders.jsonl",
    ]
    # Each read also ran the control a second time, the noise baseline.
    assert (session / "command_execution_artifacts/source-demo/read/1.0.0+rerun/stdout.log").is_file()
    # A folder per test with findings (failed, passed with findings, or passed with notes), named after
    # the test. The notes here: this run has --disable-proxy, so HTTP calls are not compared.
    folders = sorted(p.name for p in session.iterdir() if p.is_dir() and p.name.startswith("test_"))
    notes_only = {name for name in ALL_TESTS if name.startswith(("test_http_traffic", "test_performance"))}
    expected = sorted(name.replace("[", "_").rstrip("]") for name in {*DEMO_FINDINGS, *notes_only})
    assert folders == expected
    for name in notes_only:
        notes = json.loads((session / name.replace("[", "_").rstrip("]") / "findings.json").read_text())
        assert notes["findings"] and all(
            f["severity"] == "info" and "capture was off (--disable-proxy)" in f["message"] for f in notes["findings"]
        ), (name, notes["findings"])
    for entry in demo_strict.report["tests"]:
        for link in entry["diff_files"]:
            assert (session / link).is_file(), link
    with duckdb.connect(str(session / "duck.db"), read_only=True) as con:
        executions = con.execute("SELECT command, version, success FROM executions ORDER BY ALL").fetchall()
    reads = ("read", "read-with-state")  # each with the control's second run, the noise baseline
    assert executions == [
        (c, v, True)
        for c in ("check", "discover", *reads, "spec")
        for v in ("1.0.0", *(["1.0.0+rerun"] if c in reads else []), "2.0.0")
    ]
    html = (session / "report.html").read_text()
    assert "Every primary key the control emits, the target emits too" in html  # the test's docstring
    assert "test_records_are_the_same[read]" in (session / "report.md").read_text()


@pytest.mark.docker
def test_demo_junitxml_written_alongside(demo_strict: SuiteRun) -> None:
    assert demo_strict.junit is not None
    suite = ET.parse(demo_strict.junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (str(len(ALL_TESTS)), "7", "0")
    spec_case = next(c for c in suite.iter("testcase") if c.get("name") == "test_spec_is_compatible")
    properties = {p.get("name"): p.get("value") for p in spec_case.iter("property")}
    assert properties == {"live_tests_outcome": "passed with findings"}


@pytest.mark.docker
def test_demo_diagnostic_mode(demo_images: tuple[str, str], tmp_path: Path) -> None:
    run = run_suite(
        *demo_args("1.0.0", "2.0.0", *DEMO_INPUTS, "--disable-proxy", "--test-evaluation-mode=diagnostic"),
        session_dir=tmp_path / "session",
    )
    outcomes = run.outcomes()
    assert {n for n, o in outcomes.items() if o == "passed with findings"} == NON_BREAKING | DIAGNOSTIC_WITH_FINDINGS
    # Tests not marked diagnostic still fail on their breaking differences.
    failing = set(DEMO_FINDINGS) - DIAGNOSTIC_WITH_FINDINGS - NON_BREAKING
    assert {n for n, o in outcomes.items() if o == "failed"} == failing
    assert run.returncode == 1
    for name in DIAGNOSTIC_WITH_FINDINGS:
        assert run.differences(name) == DEMO_FINDINGS[name]
        assert run.test_entry(name)["message"].startswith("diagnostic mode: 1 difference(s)")
    assert run.report["evaluation_mode"] == "diagnostic" and run.report["blocking"] is False


@pytest.fixture
def demo_copy(docker_client: docker.DockerClient, demo_images: tuple[str, str]) -> Iterator[str]:
    """Demo 1.0.0 under a second tag: the same image as control and target."""
    tag = f"1.0.0-copy-{uuid.uuid4().hex[:6]}"
    docker_client.images.get(demo_images[0]).tag(DEMO, tag)
    yield tag
    docker_client.images.remove(f"{DEMO}:{tag}", noprune=True)


@pytest.mark.docker
def test_same_image_twice_passes_everything_via_cli(demo_copy: str, tmp_path: Path) -> None:
    run = run_suite(
        *demo_args("1.0.0", demo_copy, *DEMO_INPUTS, "--disable-proxy", "--run-id=same-image"),
        session_dir=tmp_path / "session",
        via_cli=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert run.outcomes() == {name: "passed" for name in ALL_TESTS}
    assert run.report["verdict"] == "passed" and run.report["run_id"] == "same-image"
    # No differences: the only findings are the notes that HTTP was not captured (--disable-proxy).
    for folder in (p for p in run.session_dir.iterdir() if p.name.startswith("test_")):
        assert folder.name.startswith(("test_http_traffic", "test_performance")), folder.name
        findings = json.loads((folder / "findings.json").read_text())["findings"]
        assert {f["severity"] for f in findings} == {"info"}, findings
    assert f"Session folder: {run.session_dir}" in run.stdout


def _verdict_shown(run: SuiteRun) -> tuple[str, str, str]:
    """The verdict as report.json, report.md's headline and report.html's badge say it."""
    md_headline = (run.session_dir / "report.md").read_text().splitlines()[0]
    html = (run.session_dir / "report.html").read_text()
    badge = html.split('<div class="verdict ', 1)[1].split("</div>", 1)[0]
    return run.report["verdict"], md_headline, badge


@pytest.mark.docker
def test_a_failing_control_makes_tests_inconclusive(demo_images: tuple[str, str], tmp_path: Path) -> None:
    """Both versions crash mid-read: the read tests can't compare, and say so; the session is not 'passed'."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads((DEMO_DIR / "config.json").read_text()), "crash_after_records": 3}))
    run = run_suite(
        *demo_args(
            "1.0.0", "2.0.0", f"--config-path={config}", f"--catalog-path={DEMO_DIR / 'configured_catalog.json'}"
        ),
        "--disable-proxy",
        session_dir=tmp_path / "session",
    )
    outcomes = run.outcomes()
    read_tests = {f"{t}[read]" for t in READ_TESTS}
    assert {n for n, o in outcomes.items() if o == "inconclusive"} == read_tests, outcomes
    assert {n for n, o in outcomes.items() if o not in ("inconclusive", "skipped")} == set(SPEC_TESTS) | set(
        OTHER_TESTS
    )
    assert run.returncode == 1  # inconclusive is not a pass (the catalog differences alone would be)
    assert run.report["verdict"] == "inconclusive"
    message = run.test_entry("test_records_are_the_same[read]")["message"]
    assert (
        message.startswith("inconclusive: the control failed, nothing to compare with.")
        and "exited with code 1" in message
    )
    verdict, md_headline, badge = _verdict_shown(run)
    assert verdict == "inconclusive" and run.report["outcomes"]["inconclusive"] == len(read_tests)
    assert "INCONCLUSIVE" in md_headline.upper() and "inconclusive" in badge.lower()
    html = (run.session_dir / "report.html").read_text()
    assert '<span class="badge inconclusive">inconclusive</span>' in html
    assert "❔ inconclusive | `test_records_are_the_same[read]`" in (run.session_dir / "report.md").read_text()


@pytest.mark.docker
def test_a_session_where_no_test_ran_is_not_passed(demo_images: tuple[str, str], tmp_path: Path) -> None:
    run = run_suite(
        *demo_args("1.0.0", "2.0.0", *DEMO_INPUTS), "--disable-proxy", "-k", "nothing", session_dir=tmp_path / "s"
    )
    assert run.returncode == 5  # pytest: no tests collected
    verdict, md, badge = _verdict_shown(run)
    assert verdict == "no tests ran" and run.report["blocking"] is False
    assert md.startswith("## ⏹️ Regression tests NO TESTS RAN:")
    assert badge.startswith('no-tests-ran">NO TESTS RAN')
    assert "Verdict: no tests ran" in run.stdout


@pytest.mark.docker
def test_an_interrupted_session_says_how_far_it_got(demo_copy: str, tmp_path: Path) -> None:
    """Ctrl-C while `read` hangs: the verdict says interrupted (not passed, though nothing differs: the same
    image twice), with how many tests ran; every execution is in duck.db, the hung reads as interrupted.
    All commands run in one batch before the first test has a result, so none of the 30 ran."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads((DEMO_DIR / "config.json").read_text()), "hang_seconds": 120}))
    session_dir = tmp_path / "session"
    args = demo_args("1.0.0", demo_copy, f"--config-path={config}", DEMO_CATALOG, "--max-parallel=8")
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "regression_tests", "-p", "no:cacheprovider", "-q", "--disable-proxy",
         f"--session-dir={session_dir}", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    read_dir = session_dir / "command_execution_artifacts" / "source-demo" / "read"
    deadline = time.monotonic() + 120
    while not read_dir.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # the read is under way (and hangs after its first record)
    process.send_signal(subprocess.signal.SIGINT)
    stdout, _ = process.communicate(timeout=120)
    run = SuiteRun(process.returncode, stdout, "", session_dir)
    assert run.returncode == 2, stdout[-2000:]  # pytest: interrupted
    assert run.report["tests"] == []
    verdict, md, badge = _verdict_shown(run)
    assert verdict == "interrupted" and run.report["interrupted"] is True
    assert run.report["verdict_text"] == f"interrupted (0 of {len(ALL_TESTS)} ran)"
    assert (
        md.startswith("## ⏸️ Regression tests INTERRUPTED:")
        and f"Interrupted (0 of {len(ALL_TESTS)} ran)." in (session_dir / "report.md").read_text()
    )
    assert badge.startswith('interrupted">INTERRUPTED')
    with duckdb.connect(str(session_dir / "duck.db"), read_only=True) as con:
        reads = con.execute("SELECT version, success FROM executions WHERE command = 'read' ORDER BY ALL").fetchall()
    # The control's read hung; the others may not have started yet (then they have no row).
    assert ("1.0.0", False) in reads and {success for _, success in reads} == {False}, reads


@pytest.mark.docker
def test_accepted_diffs_written_then_accepted(demo_images: tuple[str, str], tmp_path: Path) -> None:
    """--update-accepted-diffs writes the demo's findings; the next run accepts them all and passes,
    and an --ignore-field leaves the renamed customer's name out of the records comparison."""
    accepted = tmp_path / "accepted.yaml"
    common = (*DEMO_INPUTS, "--disable-proxy", f"--accepted-diffs={accepted}")
    first = run_suite(*demo_args("1.0.0", "2.0.0", *common, "--update-accepted-diffs"), session_dir=tmp_path / "s1")
    assert first.returncode == 1 and f"finding(s) written to {accepted}" in first.stdout
    import yaml

    document = yaml.safe_load(accepted.read_text())
    assert (document["control_version"], document["target_version"]) == ("1.0.0", "2.0.0")
    written = {(e["test"], e["kind"], e["stream"], e["path"]) for e in document["accepted"]}
    assert {(t, *f) for t, fs in DEMO_FINDINGS.items() for f in fs} <= written
    second = run_suite(*demo_args("1.0.0", "2.0.0", *common), session_dir=tmp_path / "s2")
    assert second.returncode == 0, second.stdout[-3000:]
    assert second.report["verdict"] == "passed"
    for name in DEMO_FINDINGS:
        assert second.test_entry(name)["outcome"] == "passed with findings", name
        assert "accepted" in second.test_entry(name)["message"], name
    summary = (second.session_dir / "test_records_are_the_same_read" / "summary.txt").read_text()
    assert "Accepted differences (1, in --accepted-diffs: they do not fail):" in summary
    ignored = run_suite(
        *demo_args("1.0.0", "2.0.0", *DEMO_INPUTS, "--disable-proxy", "--ignore-field=customers:$.name"),
        session_dir=tmp_path / "s3",
    )
    assert ignored.test_entry("test_records_are_the_same[read]")["outcome"] == "passed"
    # Entries no finding matched (here: the tests that did not run) are pointed out.
    partial = run_suite(*demo_args("1.0.0", "2.0.0", *common), "-k", "test_spec", session_dir=tmp_path / "s4")
    unmatched = len(written) - 1  # the spec's finding matched
    assert f"Accepted differences: {unmatched} entr(y/ies) of {accepted} matched no finding" in partial.stdout


FAKER_VERSIONS = ("6.2.38", "7.2.1")
FAKER_CONFIG = {"count": 15, "seed": 7, "records_per_slice": 5, "parallelism": 1, "always_updated": False}


@pytest.mark.docker
def test_faker_versions_run_to_completion(docker_client: docker.DockerClient, base_image: str, tmp_path: Path) -> None:
    from live_tests.images import build_pypi_connector_image

    for version in FAKER_VERSIONS:
        build_pypi_connector_image(docker_client, "airbyte-source-faker", version, base_image)
    config = tmp_path / "config.json"
    config.write_text(json.dumps(FAKER_CONFIG))
    # The configured catalog a user writes from discover: users incrementally, products in full.
    subprocess.run(
        [sys.executable, "-m", "live_tests.cli", "debug", "discover", "-c", f"airbyte/source-faker:{FAKER_VERSIONS[0]}",
         "--config-path", str(config), "--output-dir", str(tmp_path / "debug"), "--run-id", "d", "--disable-proxy"],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    catalog_file = tmp_path / "debug/d/source-faker/discover" / FAKER_VERSIONS[0] / "airbyte_messages/catalog.jsonl"
    streams = {s["name"]: s for s in read_jsonl(catalog_file)[0]["catalog"]["streams"]}
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            {
                "streams": [
                    {"stream": streams["users"], "sync_mode": "incremental", "destination_sync_mode": "append",
                     "cursor_field": ["updated_at"]},
                    {"stream": streams["products"], "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"},
                ]
            }
        )
    )  # fmt: skip
    run = run_suite(
        "--connector-image=airbyte/source-faker",
        f"--control-version={FAKER_VERSIONS[0]}",
        f"--target-version={FAKER_VERSIONS[1]}",
        f"--config-path={config}",
        f"--catalog-path={catalog}",
        "--disable-proxy",
        session_dir=tmp_path / "session",
    )
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]
    report = run.report
    assert (report["connector"], report["control_version"], report["target_version"]) == (
        "source-faker",
        *FAKER_VERSIONS,
    )
    outcomes = run.outcomes()
    assert set(outcomes) == ALL_TESTS
    # No state given: read-with-state is not run; everything else ran to a verdict, none errored.
    assert {n for n, o in outcomes.items() if o == "skipped"} == {f"{t}[read-with-state]" for t in READ_TESTS}
    assert all(o in ("passed", "passed with findings", "failed") for n, o in outcomes.items() if "with-state" not in n)
    assert sum(report["outcomes"].values()) == len(ALL_TESTS)
    assert report["verdict"] == ("failed" if "failed" in outcomes.values() else "passed")
    counts = {(r["command"], r["name"]): (r["control"], r["target"]) for r in report["records_per_stream"]}
    assert counts[("read", "users")][0] == FAKER_CONFIG["count"]
    assert set(counts) == {("read", "users"), ("read", "products")}
    assert report["coverage"]["configured"] == ["products", "users"]
    for entry in report["tests"]:
        assert isinstance(entry["duration_s"], float) and all(
            (run.session_dir / f).is_file() for f in entry["diff_files"]
        )


@pytest.fixture
def fake_api(docker_client: docker.DockerClient, demo_images: tuple[str, str]) -> Iterator[int]:
    """The demo's fake shop API, published on a host port the proxy reaches via host.docker.internal."""
    from live_tests.images import FAKE_API_IMAGE, FAKE_API_PORT

    container = docker_client.containers.run(
        FAKE_API_IMAGE,
        detach=True,
        ports={f"{FAKE_API_PORT}/tcp": None},
        labels=labels(f"test-fake-api-{uuid.uuid4().hex[:6]}", "test"),
    )
    try:
        for _ in range(100):
            container.reload()
            if "listening" in container.logs().decode():
                break
            time.sleep(0.1)
        yield int(container.ports[f"{FAKE_API_PORT}/tcp"][0]["HostPort"])
    finally:
        container.remove(force=True)


@pytest.mark.docker
def test_secret_never_left_in_the_session_folder(fake_api: int, tmp_path: Path) -> None:
    secret = f"s3cr3t/{uuid.uuid4().hex}+key"
    config = json.loads((DEMO_DIR / "config.json").read_text())
    # The connector asks for a public-looking host; the suite's --proxy-option sends it to the fake API.
    config |= {"api_url": "https://api.demo-shop.example/v1", "api_key": secret}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    run = run_suite(
        *demo_args(
            "1.0.0", "2.0.0", f"--config-path={config_path}", f"--catalog-path={DEMO_DIR / 'configured_catalog.json'}"
        ),
        rf"--proxy-option=map_remote=|https://api\.demo-shop\.example|http://host.docker.internal:{fake_api}",
        "--stream=customers",
        session_dir=tmp_path / "session",
    )
    session = run.session_dir
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]  # the demo's differences, over HTTP
    assert set(run.outcomes().values()) >= {"passed", "failed"}
    assert json.loads((session / "configured_catalog.json").read_text())["streams"][0]["stream"]["name"] == "customers"

    # The requests went through the proxy with the key; every dump kept them, masked.
    with duckdb.connect(str(session / "duck.db"), read_only=True) as con:
        flows = con.execute("SELECT command, count(*) FROM http_flows WHERE version = '2.0.0' GROUP BY ALL").fetchall()
        assert dict(flows).get("read", 0) >= 2 and dict(flows).get("check", 0) == 1
        answered = con.execute("SELECT DISTINCT host, status FROM http_flows").fetchall()
        assert answered == [("api.demo-shop.example", 200)]
        text_columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE data_type IN ('VARCHAR', 'JSON')"
        ).fetchall()
        for table, column in text_columns:
            for form in SecretMasker.of([secret]).needles:
                hits = con.execute(f'SELECT count(*) FROM "{table}" WHERE contains("{column}"::VARCHAR, ?)', [form])
                assert hits.fetchone() == (0,), (table, column, form)
    har = json.loads((session / "command_execution_artifacts/source-demo/read/2.0.0/http_dump.har").read_text())
    authorizations = {
        h["value"]
        for e in har["log"]["entries"]
        for h in e["request"]["headers"]
        if h["name"].lower() == "authorization"
    }
    assert authorizations == {"Bearer **********"}
    with (session / "command_execution_artifacts/source-demo/read/2.0.0/http_dump.mitm").open("rb") as f:
        flows_read = list(FlowReader(f).stream())
    assert flows_read and {fl.request.headers["authorization"] for fl in flows_read} == {"Bearer " + "*" * len(secret)}

    # No file of the session folder holds the secret in any form, duck.db included.
    encoded = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret), json.dumps(secret)[1:-1]}
    leaks = [
        str(path.relative_to(session))
        for path in session.rglob("*")
        if path.is_file() and any(form.encode() in path.read_bytes() for form in encoded)
    ]
    assert leaks == []
    assert secret not in run.stdout + run.stderr
    assert "Secrets: 1 config value(s) masked" in run.stdout


def test_bad_options_are_one_line_errors(tmp_path: Path) -> None:
    """Option problems are caught before anything runs: pytest's usage error, one line, exit status 4."""
    cases = {
        "same version": (demo_args("1.0.0", "1.0.0"), "--control-version and --target-version are both 1.0.0"),
        "tag in image": (
            ["--connector-image=live-tests/source-demo:1.0.0", "--control-version=1.0.0", "--target-version=2.0.0"],
            "give the image without a tag",
        ),
        "unknown stream": (demo_args("1.0.0", "2.0.0", *DEMO_INPUTS, "--stream=nope"), "--stream nope: not in"),
        "state without catalog": (
            demo_args("1.0.0", "2.0.0", f"--config-path={DEMO_DIR / 'config.json'}", "--should-read-with-state=true"),
            "--should-read-with-state=true needs --state-path",
        ),
        "missing config file": (demo_args("1.0.0", "2.0.0", "--config-path=/nonexistent.json"), "no such file"),
        "unknown proxy option": (
            demo_args("1.0.0", "2.0.0", *DEMO_INPUTS, "--proxy-option=nope=1"),
            "--proxy-option nope=1: Unknown option(s): nope",
        ),
        "no image": (["--control-version=1", "--target-version=2"], "--connector-image is required"),
        "bad ignored field": (demo_args("1.0.0", "2.0.0", "--ignore-field=users"), "--ignore-field: ignored field"),
        "accepted diffs not found": (
            demo_args("1.0.0", "2.0.0", "--accepted-diffs=/nonexistent.yaml"),
            "--accepted-diffs /nonexistent.yaml: cannot read it",
        ),
    }
    for case, (args, message) in cases.items():
        run = run_suite(*args, session_dir=tmp_path / case.replace(" ", "_"), timeout=120)
        assert run.returncode == 4, (case, run.stdout, run.stderr)
        errors = [line for line in run.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("ERROR: ") and message in errors[0], (case, run.stderr)
        assert not (tmp_path / case.replace(" ", "_")).exists(), case
    # `live-tests regression` hands its proxy options to the suite the same way.
    cli_args = demo_args("1.0.0", "2.0.0", "--proxy-option", "nope=1")
    run = run_suite(*cli_args, session_dir=tmp_path / "cli", via_cli=True)
    assert run.returncode == 4 and "ERROR: --proxy-option nope=1: Unknown option(s): nope" in run.stderr, run.stderr


@pytest.mark.docker
def test_missing_image_is_one_clear_error(docker_client: docker.DockerClient, tmp_path: Path) -> None:
    run = run_suite(*demo_args("1.0.0", "0.0.0-absent", *DEMO_INPUTS), session_dir=tmp_path / "s", timeout=300)
    assert run.returncode == 4
    errors = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "image live-tests/source-demo:0.0.0-absent is not on the engine" in errors[0]
    assert "Traceback" not in run.stdout + run.stderr


def test_repo_test_run_does_not_load_the_suite() -> None:
    """The repo's own pytest (testpaths = tests) does not collect the suite. Installed, the suite is a
    pytest plugin, so its options are in every `pytest --help` (like any plugin's), but it stays idle
    unless the suite is collected: collecting the repo's tests starts no session."""
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert process.returncode == 0 and "--connector-image" in process.stdout
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert process.returncode == 0, process.stdout[-2000:]
    assert "tests/test_regression_suite.py" in process.stdout and "regression_tests/" not in process.stdout
    assert "Session folder" not in process.stdout and "live-tests" not in process.stdout.splitlines()[-1]
