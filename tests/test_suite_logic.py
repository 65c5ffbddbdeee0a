"""The regression suite's own logic without Docker: verdicts, runs, validations, options, accepted diffs.

Executions are planted in a real duck.db (the store's schema, rows inserted with plain SQL); the
suite's settings are parsed from option values as pytest would hand them over.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from live_tests.compare import Finding, Severity, compare_traces
from live_tests.compare.traces import status_sequence_is_valid
from live_tests.models import (
    Command,
    ConnectorImage,
    ConnectorInputs,
    ExecutionInputs,
    ExecutionKey,
    ExecutionResult,
    InputError,
)
from live_tests.regression_tests.accepted import AcceptedDiffs, write_accepted_diffs
from live_tests.regression_tests.added import is_added, judged_severity
from live_tests.regression_tests.options import SUITE_OPTIONS, as_arguments
from live_tests.regression_tests.outcomes import Inconclusive
from live_tests.regression_tests.read_validation import (
    validate_primary_keys_not_null,
    validate_record_schemas,
    validate_states,
    validate_stream_statuses,
)
from live_tests.regression_tests.runs import CheckRun, ReadRun
from live_tests.regression_tests.session import ExecutionPair, RegressionSession
from live_tests.regression_tests.settings import parse_settings
from live_tests.regression_tests.validation import validate_secrets_marked
from live_tests.secrets import looks_secret, secret_values
from live_tests.store.session_db import SessionDatabase
from live_tests.verdicts import ADDED, EvaluationMode, Outcome, decide_session, decide_test
from tests.conftest import DEMO_DIR

CONNECTOR = "live-tests/source-demo"
CONTROL, TARGET = "1.0.0", "2.0.0"

# --- verdicts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("severities", "kwargs", "outcome"),
    [
        ([], {}, Outcome.PASSED),
        (["info", "info"], {}, Outcome.PASSED),
        (["change"], {}, Outcome.PASSED_WITH_FINDINGS),  # only breaking differences fail
        (["added"], {}, Outcome.PASSED_WITH_FINDINGS),
        (["breaking", "change"], {}, Outcome.FAILED),
        (["breaking"], {"diagnostic_test": True}, Outcome.FAILED),  # strict mode: diagnostic tests fail too
        (["breaking"], {"diagnostic_test": True, "mode": EvaluationMode.DIAGNOSTIC}, Outcome.PASSED_WITH_FINDINGS),
        (["breaking"], {"mode": EvaluationMode.DIAGNOSTIC}, Outcome.FAILED),  # not a diagnostic test
        (["breaking"], {"control_failed": True}, Outcome.INCONCLUSIVE),
        ([], {"control_failed": True}, Outcome.INCONCLUSIVE),
        ([], {"accepted": 2}, Outcome.PASSED_WITH_FINDINGS),  # accepted differences are shown, not failed
    ],
)
def test_decide_test(severities: list[str], kwargs: dict[str, Any], outcome: Outcome) -> None:
    assert decide_test(severities, **kwargs).outcome is outcome


def test_decide_test_counts() -> None:
    verdict = decide_test(
        ["breaking", "change", "info"], diagnostic_test=True, mode=EvaluationMode.DIAGNOSTIC, accepted=1
    )
    assert (verdict.differences, verdict.failing, verdict.tolerated, verdict.accepted) == (2, 1, True, 1)


P, F, E, S, I, W = (  # noqa: E741
    Outcome.PASSED,
    Outcome.FAILED,
    Outcome.ERROR,
    Outcome.SKIPPED,
    Outcome.INCONCLUSIVE,
    Outcome.PASSED_WITH_FINDINGS,
)


@pytest.mark.parametrize(
    ("outcomes", "kwargs", "word", "text", "blocking"),
    [
        ([P, W, S], {}, "passed", "passed", False),
        ([P, F], {}, "failed", "failed", True),
        ([P, E], {"mode": EvaluationMode.DIAGNOSTIC}, "failed", "failed", False),
        ([], {}, "no tests ran", "no tests ran", False),
        ([], {"expected": 0}, "no tests ran", "no tests ran", False),
        ([S, S], {}, "no tests ran", "no tests ran (2 skipped)", False),
        ([P, P, P], {"interrupted": True, "expected": 26}, "interrupted", "interrupted (3 of 26 ran)", False),
        ([P, P, P], {"expected": 26}, "interrupted", "interrupted (3 of 26 ran)", False),  # stopped early
        ([P, F], {"interrupted": True, "expected": 26}, "failed", "failed, then interrupted (2 of 26 ran)", True),
        ([P, I], {}, "inconclusive", "inconclusive (1 test(s) could not compare)", False),
        ([I, F], {}, "failed", "failed", True),
    ],
)
def test_decide_session(outcomes: list[Outcome], kwargs: dict[str, Any], word: str, text: str, blocking: bool) -> None:
    verdict = decide_session(outcomes, **kwargs)
    assert (verdict.word, verdict.text, verdict.blocking, verdict.passed) == (word, text, blocking, word == "passed")


# --- planted duck.db ---------------------------------------------------------------------------


class Planted:
    """A duck.db with the store's tables; rows inserted per execution with plain SQL."""

    def __init__(self, path: Path) -> None:
        SessionDatabase(path).close()
        self.path = path
        self.con = duckdb.connect(str(path))
        self.seq = 0

    def key(self, version: str, command: str) -> ExecutionKey:
        """The key the store files an execution of this image version under."""
        return ExecutionKey(ConnectorImage(CONNECTOR, version).name, version, command)

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def records(self, key: ExecutionKey, stream: str, rows: list[dict[str, Any]]) -> None:
        for data in rows:
            self.con.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?, ?, NULL, 1, ?)",
                [*key, self._next(), stream, orjson.dumps(data).decode()],
            )

    def statuses(self, key: ExecutionKey, stream: str, statuses: list[str]) -> None:
        for status in statuses:
            descriptor = {"stream_descriptor": {"name": stream}, "status": status}
            trace = {"type": "STREAM_STATUS", "stream_status": descriptor}
            self.con.execute(
                "INSERT INTO traces VALUES (?, ?, ?, ?, 'STREAM_STATUS', 1, ?, ?, ?)",
                [*key, self._next(), stream, status, orjson.dumps(trace).decode()],
            )

    def state(self, key: ExecutionKey, state_type: str, stream: str | None, value: Any) -> None:
        self.con.execute(
            "INSERT INTO states VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
            [*key, self._next(), state_type, stream, orjson.dumps(value).decode()],
        )

    def connection_status(self, key: ExecutionKey, status: str, message: str | None = None) -> None:
        row = [*key, self._next(), status, message]
        self.con.execute("INSERT INTO connection_status VALUES (?, ?, ?, ?, ?, ?)", row)

    def close(self) -> None:
        self.con.close()


@pytest.fixture
def planted(tmp_path: Path) -> Planted:
    return Planted(tmp_path / "duck.db")


def configured(name: str, sync_mode: str = "full_refresh", **schema_properties: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": schema_properties}
    return {"stream": {"name": name, "json_schema": schema}, "sync_mode": sync_mode}


# --- stream statuses: one rule --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sequence", "valid"),
    [
        (["STARTED", "COMPLETE"], True),
        (["STARTED", "RUNNING", "RUNNING", "RUNNING", "COMPLETE"], True),
        (["STARTED", "RUNNING", "INCOMPLETE"], True),
        (["RUNNING", "COMPLETE"], False),
        (["STARTED", "COMPLETE", "RUNNING"], False),
        (["STARTED"], False),
        (["STARTED", "RUNNING"], False),
    ],
)
def test_status_rule(sequence: list[str], valid: bool) -> None:
    assert status_sequence_is_valid(sequence) is valid


def test_status_comparison_and_target_check_agree(planted: Planted) -> None:
    """The comparison and the target-alone check judge the same sequences the same way; INCOMPLETE is
    well-formed for both, and the target-alone check also says the stream did not complete."""
    c, t = planted.key(CONTROL, "read"), planted.key(TARGET, "read")
    sequences = {
        "ok": ["STARTED", "RUNNING", "RUNNING", "COMPLETE"],
        "incomplete": ["STARTED", "RUNNING", "INCOMPLETE"],
        "bad": ["RUNNING", "COMPLETE"],
    }
    for stream, sequence in sequences.items():
        planted.statuses(c, stream, sequence)
        planted.statuses(t, stream, sequence)
    planted.statuses(t, "stray", ["STARTED", "COMPLETE"])
    streams = [configured(name) for name in (*sequences, "silent")]
    target_alone = validate_stream_statuses(planted.con, t, streams)
    assert sorted((f.kind, f.stream) for f in target_alone.findings) == [
        ("invalid_status_sequence", "bad"),
        ("no_stream_status", "silent"),
        ("status_of_unconfigured_stream", "stray"),
        ("stream_incomplete", "incomplete"),
    ]
    traces = compare_traces(planted.con, c, t)
    invalid = {f.stream for f in traces.findings if f.kind == "stream_status_sequence_invalid"}
    assert invalid == {"bad"}


# --- validations on planted records ----------------------------------------------------------------


def test_record_schemas_primary_keys_and_states(planted: Planted) -> None:
    t = planted.key(TARGET, "read")
    planted.records(t, "users", [{"id": 1, "age": 30}, {"id": 2, "age": "old"}, {"id": None, "age": 5}, {"age": 6}])
    planted.records(t, "ghost", [{"id": 1}])
    planted.state(t, "STREAM", "users", {"cursor": 3})
    streams = [
        configured("users", "incremental", id={"type": ["null", "integer"]}, age={"type": "integer"}),
        configured("orders", "incremental", id={"type": "integer"}),
    ]
    schemas = validate_record_schemas(planted.con, t, streams)
    assert sorted((f.kind, f.stream, f.path, f.count) for f in schemas.findings) == [
        ("record_schema_mismatch", "users", "$.age", 1),
        ("records_of_unconfigured_stream", "ghost", None, 1),
    ]
    nulls = validate_primary_keys_not_null(planted.con, t, {"users": [["id"]]})
    assert [(f.kind, f.count) for f in nulls.findings] == [("null_primary_key", 2)]
    states = validate_states(planted.con, t, streams)
    assert [(f.kind, f.stream) for f in states.findings] == [("no_state", "orders")]
    planted.state(t, "GLOBAL", None, {"shared": 1})
    assert validate_states(planted.con, t, streams).passed  # a global state covers every stream


# --- secrets: one name rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True), ("db_pass", True), ("clientSecret", True), ("api_key", True), ("apiKey", True),
        ("access_token", True), ("credentials_json", True), ("service_account_info", True),
        ("token_url", False), ("auth_type", False), ("bypass", False), ("username", False),
        ("refresh_token_expires_at", False),
    ],
)  # fmt: skip
def test_one_secret_name_rule_for_masking_and_the_spec_check(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret
    # Masking without a spec and the spec check both use it.
    assert (secret_values(None, {name: "value-1234"}) == ["value-1234"]) is secret
    spec = {"connectionSpecification": {"type": "object", "properties": {name: {"type": "string"}}}}
    assert (not validate_secrets_marked(spec, "target").passed) is secret


# --- runs: success required, control failure inconclusive -------------------------------------------


def _result(tmp_path: Path, version: str, command: Command, exit_code: int = 0) -> ExecutionResult:
    inputs = ExecutionInputs(
        connector=ConnectorImage(CONNECTOR, version),
        command=command,
        inputs=ConnectorInputs(),
        artifacts_dir=tmp_path / "artifacts" / command.value / version,
        run_id="test",
    )
    return ExecutionResult(inputs=inputs, exit_code=exit_code)


def _session(tmp_path: Path, planted: Planted, **options: Any) -> RegressionSession:
    planted.close()
    values = {
        "connector_image": CONNECTOR,
        "control_version": CONTROL,
        "target_version": TARGET,
        "session_dir": str(tmp_path / "session"),
        "disable_proxy": True,
        **options,
    }
    session = RegressionSession(parse_settings(values))
    session.db_path = planted.path
    return session


@pytest.mark.parametrize(
    ("control", "target", "expected"),
    [
        ("SUCCEEDED", "SUCCEEDED", "passed"),
        ("SUCCEEDED", "FAILED", "check_not_succeeded"),
        ("FAILED", "FAILED", "inconclusive"),
        ("FAILED", "SUCCEEDED", "inconclusive"),
        (None, "SUCCEEDED", "inconclusive"),  # the control printed no status
    ],
)
def test_check_is_judged_on_the_printed_status(
    tmp_path: Path, planted: Planted, control: str | None, target: str, expected: str
) -> None:
    if control:
        planted.connection_status(planted.key(CONTROL, "check"), control, "bad credentials")
    planted.connection_status(planted.key(TARGET, "check"), target, "bad credentials")
    session = _session(tmp_path, planted)
    control_result, target_result = (_result(tmp_path, v, Command.CHECK) for v in (CONTROL, TARGET))
    pair = ExecutionPair(Command.CHECK, control_result, target_result)
    run = CheckRun(session, pair)
    if expected == "inconclusive":
        why = f"{control}: bad credentials" if control else "no CONNECTION_STATUS"
        with pytest.raises(Inconclusive, match=f"inconclusive: the control's check is {why} \\(target: {target}\\)"):
            run.connection_status()
        return
    result = run.connection_status()
    assert [f.kind for f in result.findings] == ([] if expected == "passed" else [expected])


@pytest.mark.parametrize(("control_exit", "target_exit"), [(1, 0), (1, 1), (0, 1)])
def test_a_failed_execution_is_inconclusive_when_the_control_failed(
    tmp_path: Path, planted: Planted, control_exit: int, target_exit: int
) -> None:
    session = _session(tmp_path, planted)
    pair = ExecutionPair(
        Command.READ,
        _result(tmp_path, CONTROL, Command.READ, control_exit),
        _result(tmp_path, TARGET, Command.READ, target_exit),
    )
    run = ReadRun(session, pair)
    if control_exit:
        with pytest.raises(Inconclusive, match="the control failed"):
            run.traces()
    else:
        with pytest.raises(pytest.fail.Exception, match=r"target .* exited with code 1"):
            run.traces()
    # A target-alone check needs only the target.
    if target_exit:
        with pytest.raises((Inconclusive, pytest.fail.Exception)):
            run.stream_statuses()
    else:
        assert run.stream_statuses().passed


# --- options and settings ---------------------------------------------------------------------------


def test_click_arguments_come_back_as_the_suite_options() -> None:
    values = {"connector_image": "a/b", "stream": ("x", "y"), "disable_proxy": True, "http_cache": False}
    values |= {"execution_timeout": 5.0, "ignore_field": ("*:$.ts",), "accepted_diffs": "acc.yaml"}
    assert as_arguments(values) == [
        "--connector-image=a/b",
        "--stream=x",
        "--stream=y",
        "--ignore-field=*:$.ts",
        "--accepted-diffs=acc.yaml",
        "--disable-proxy",
        "--execution-timeout=5.0",
    ]
    assert len({o.name for o in SUITE_OPTIONS}) == len(SUITE_OPTIONS)


def _settings(tmp_path: Path, **options: Any) -> Any:
    values = {
        "connector_image": CONNECTOR,
        "control_version": CONTROL,
        "target_version": TARGET,
        "session_dir": str(tmp_path / "session"),
        **options,
    }
    return parse_settings(values)


def test_settings_defaults(tmp_path: Path) -> None:
    settings = _settings(tmp_path, config_path=str(DEMO_DIR / "config.json"))
    assert settings.evaluation_mode is EvaluationMode.STRICT and settings.timeout_s == 3600.0
    assert not settings.should_read_with_state and settings.read_commands == []
    assert settings.ignored_fields == () and settings.accepted_diffs.entries == []
    assert settings.proxy.enabled
    with_state = _settings(
        tmp_path,
        config_path=str(DEMO_DIR / "config.json"),
        catalog_path=str(DEMO_DIR / "configured_catalog.json"),
        state_path=str(DEMO_DIR / "state.json"),
        live_tests_streams=["customers"],
    )
    assert with_state.read_commands == [Command.READ, Command.READ_WITH_STATE]
    assert [s["stream"]["name"] for s in with_state.configured_catalog["streams"]] == ["customers"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target_version": CONTROL}, "--control-version and --target-version are both 1.0.0"),
        ({"connector_image": None}, "--connector-image is required"),
        ({"execution_timeout": 0.0}, "--execution-timeout must be a positive number"),
        ({"ignore_field": ["users"]}, "--ignore-field: ignored field 'users': expected STREAM:JSONPATH"),
        ({"ignore_field": ["users:name"]}, "the path must start with $"),
        ({"update_accepted_diffs": True}, "--update-accepted-diffs needs --accepted-diffs FILE"),
        ({"accepted_diffs": "/nonexistent/acc.yaml"}, "--accepted-diffs /nonexistent/acc.yaml: cannot read it"),
    ],
)
def test_settings_errors_are_one_line(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(pytest.UsageError) as error:
        _settings(tmp_path, **options)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accepted: [\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping with an `accepted:` list"),
        ("accepted:\n  - kind: x\n", "accepted[0]: `test` is required"),
        ("accepted:\n  - {test: t, kind: k, colour: red}\n", "unknown key(s) colour"),
        ("target_version: 3.0.0\naccepted: []\n", "it is for target_version 3.0.0, this run's is 2.0.0"),
    ],
)
def test_bad_accepted_diffs_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "accepted.yaml"
    path.write_text(text)
    with pytest.raises(pytest.UsageError) as error:
        _settings(tmp_path, accepted_diffs=str(path))
    assert message in str(error.value) and "\n" not in str(error.value)


# --- accepted differences ---------------------------------------------------------------------------


def _finding(kind: str, stream: str | None, path: str | None, control: Any = None, target: Any = None) -> Finding:
    return Finding(kind, Severity.BREAKING, f"{kind} {stream} {path}", stream, path, control, target)


def test_accepted_diffs_match_test_kind_stream_path_and_given_values(tmp_path: Path) -> None:
    path = tmp_path / "accepted.yaml"
    path.write_text(
        """
accepted:
  - {test: test_records_are_the_same, kind: record_field_changed, stream: users, path: $.name}
  - {test: "test_states_are_the_same[read]", kind: final_state_changed, stream: users, control: {c: 1}, target: {c: 2}}
"""
    )
    accepted = AcceptedDiffs.load(path, CONNECTOR, CONTROL, TARGET)
    name = _finding("record_field_changed", "users", "$.name")
    other_path = _finding("record_field_changed", "users", "$.age")
    info = Finding("record_field_changed", Severity.INFO, "note", "users", "$.name")
    # Without [param] the entry covers every parameter of the test.
    assert accepted.split("test_records_are_the_same[read-with-state]", [name, other_path, info]) == (
        [name],
        [other_path, info],
    )
    state = _finding("final_state_changed", "users", None, {"c": 1}, {"c": 2})
    state_changed_again = _finding("final_state_changed", "users", None, {"c": 1}, {"c": 3})
    assert accepted.split("test_states_are_the_same[read]", [state, state_changed_again]) == (
        [state],
        [state_changed_again],
    )
    assert accepted.split("test_states_are_the_same[read-with-state]", [state]) == ([], [state])
    assert accepted.unused() == []


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_update_writes_every_finding_and_the_file_accepts_them(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"accepted{suffix}"
    findings = {
        "test_records_are_the_same[read]": [
            _finding("record_field_changed", "users", "$.name", "a", "b"),
            Finding("note", Severity.INFO, "only a note"),
        ],
        "test_catalogs_are_the_same": [_finding("property_added", "orders", "currency", None, {"type": "string"})],
    }
    written = write_accepted_diffs(path, findings, connector=CONNECTOR, control_version=CONTROL, target_version=TARGET)
    assert written == 2
    accepted = AcceptedDiffs.load(path, CONNECTOR, CONTROL, TARGET)
    for test, test_findings in findings.items():
        taken, left = accepted.split(test, test_findings)
        assert taken == [f for f in test_findings if f.severity is not Severity.INFO]
        assert all(f.severity is Severity.INFO for f in left)
    with pytest.raises(InputError, match=r"this run's is 3\.0\.0"):
        AcceptedDiffs.load(path, CONNECTOR, CONTROL, "3.0.0")


# --- target-only records and streams are "added" -------------------------------------------------------


@pytest.mark.parametrize(
    ("finding", "added"),
    [
        (Finding("extra_primary_keys", Severity.CHANGE, "m", "users", count=3), True),
        (Finding("records_extra_in_target", Severity.CHANGE, "m", "events", count=1), True),
        (Finding("stream_extra_in_target", Severity.CHANGE, "m", "users", control=0, target=4), True),
        (Finding("stream_extra_in_target", Severity.CHANGE, "m", "ghost", control=0, target=4), False),  # unconfigured
        (Finding("record_count_changed", Severity.CHANGE, "m", "users", control=3, target=5), True),
        (Finding("record_count_changed", Severity.CHANGE, "m", "users", control=5, target=3), False),
        (Finding("stream_added", Severity.CHANGE, "m", "new_stream"), True),  # discovered catalog
        (Finding("missing_primary_keys", Severity.BREAKING, "m", "users", count=1), False),
        (Finding("record_field_added", Severity.CHANGE, "m", "users", "$.x"), False),
    ],
)
def test_added_records_and_streams(finding: Finding, added: bool) -> None:
    assert is_added(finding, {"users", "events"}) is added


def test_records_of_an_unconfigured_stream_are_breaking() -> None:
    finding = Finding("stream_extra_in_target", Severity.CHANGE, "m", "ghost", control=0, target=4)
    assert judged_severity(finding, {"users"}) == Severity.BREAKING
    assert judged_severity(Finding("record_field_added", Severity.CHANGE, "m", "users", "$.x"), {"users"}) == "change"


def test_added_findings_are_listed_and_never_fail() -> None:
    verdict = decide_test([ADDED, ADDED])
    assert (verdict.outcome, verdict.differences, verdict.failing) == (Outcome.PASSED_WITH_FINDINGS, 2, 0)
    assert decide_test([ADDED, "breaking"]).outcome is Outcome.FAILED


def test_the_content_view_says_where_a_stream_on_one_side_only_is_judged() -> None:
    """A stream only the target emits has nothing to compare field by field; the content test's table
    shows its extra records, so its text points at the count test instead of a bare "No differences"."""
    from live_tests.compare import RecordsComparison, StreamRecordsDiff
    from live_tests.regression_tests import record_views

    key = ExecutionKey("source-x", "1", "read")
    only_target = StreamRecordsDiff("pokemon", [["id"]], control_count=0, target_count=1, extra_in_target=1)
    both = StreamRecordsDiff("berries", [["id"]], control_count=2, target_count=2)
    finding = Finding("stream_extra_in_target", Severity.CHANGE, "`pokemon`: no records in control, 1 in target")
    streams = {"pokemon": only_target, "berries": both}
    comparison = RecordsComparison(control=key, target=key._replace(version="2"), findings=[finding], streams=streams)
    content = record_views.content(comparison)
    assert content.findings == []  # judged by the count test, not twice
    assert content.overview_lines()[-1] == (
        "`pokemon` has records in target only (1): nothing to compare field by field;"
        " test_record_count_per_stream reports it"
    )
    assert not any("berries" in line and "only" in line for line in content.overview_lines())
