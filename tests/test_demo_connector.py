"""The demo connector run on the host with python (no Docker): protocol, versions, knobs, HTTP mode."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from live_tests.demo import fake_api
from live_tests.demo.shop_data import ShopParams

DEMO_DIR = Path(fake_api.__file__).parent
CONFIG = DEMO_DIR / "config.json"
CATALOG = DEMO_DIR / "configured_catalog.json"
STATE = DEMO_DIR / "state.json"
CUSTOMER_7_V1 = "Barbara Dijkstra"
DROPPED_ORDER_LINE = {
    "order_id": 5,
    "line": 2,
    "customer_id": 26,
    "product": "keyboard",
    "quantity": 1,
    "unit_price": 95.97,
    "ordered_at": "2024-01-01T10:00:00Z",
}
V1_REQUESTS = [
    "GET /v1/customers?page=1&per_page=20",
    "GET /v1/customers?page=2&per_page=20",
    "GET /v1/orders?page=1&per_page=20",
    "GET /v1/orders?page=2&per_page=20",
    "GET /v1/orders?page=3&per_page=20",
    "GET /v1/events?page=1&per_page=20",
    "GET /v1/events?page=2&per_page=20",
]
V2_REQUESTS = [
    "GET /v1/shop",
    "GET /v1/customers?page=1&per_page=50",
    "GET /v1/orders?page=1&per_page=50",
    "GET /v1/orders?page=2&per_page=50",
    "GET /v1/events?page=1&per_page=50",
]


@dataclass
class Run:
    returncode: int
    messages: list[dict[str, Any]]
    invalid_lines: list[str]
    stderr: str
    duration_s: float
    stdout_lines: list[str] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [m["record"]["data"] for m in self.of_type("RECORD") if m["record"]["stream"] == stream]

    def states(self) -> dict[str, dict[str, Any]]:
        return {
            m["state"]["stream"]["stream_descriptor"]["name"]: m["state"]["stream"]["stream_state"]
            for m in self.of_type("STATE")
        }


def clean_env(**extra: str) -> dict[str, str]:
    """The host's environment without proxy or CA settings, plus `extra`."""
    skip = {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "DEMO_VERSION"}
    env = {k: v for k, v in os.environ.items() if k not in skip and not k.lower().endswith("_proxy")}
    return {**env, **extra}


def run_demo(version: str, *args: str | Path, env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "live_tests.demo.source_demo", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**(env or clean_env()), "DEMO_VERSION": version},
    )
    messages, invalid = [], []
    for line in result.stdout.splitlines():
        try:
            messages.append(json.loads(line))
        except ValueError:
            invalid.append(line)
    return Run(
        result.returncode, messages, invalid, result.stderr, time.monotonic() - started, result.stdout.splitlines()
    )


def write_config(tmp_path: Path, **fields: Any) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**json.loads(CONFIG.read_text()), **fields}))
    return path


def read(version: str, config: Path = CONFIG, state: Path | None = None, env: dict[str, str] | None = None) -> Run:
    args: list[str | Path] = ["read", "--config", config, "--catalog", CATALOG]
    if state:
        args += ["--state", state]
    return run_demo(version, *args, env=env)


def without_emitted_at(messages: list[dict[str, Any]]) -> list[str]:
    out = []
    for message in messages:
        body = message.get("record") or message.get("trace")
        if body:
            body = {k: v for k, v in body.items() if k != "emitted_at"}
            message = {**message, message["type"].lower(): body}
        out.append(json.dumps(message, sort_keys=True))
    return out


# ---------------------------------------------------------------- spec, check, discover


def spec_properties(version: str) -> dict[str, Any]:
    run = run_demo(version, "spec")
    assert run.returncode == 0, run.stderr
    [spec] = run.of_type("SPEC")
    return spec["spec"]["connectionSpecification"]["properties"]


def test_spec_needs_no_config_and_differs_as_documented() -> None:
    v1, v2 = spec_properties("1.0.0"), spec_properties("2.0.0")
    assert "page_size" not in v1
    assert v2.pop("page_size") == {
        "type": "integer",
        "title": "Page size",
        "description": "Records requested per API page in HTTP mode.",
        "minimum": 1,
        "maximum": 1000,
        "default": 50,
        "order": 5,
    }
    assert v1.pop("start_date")["description"] == (
        "UTC date-time from which records are generated, e.g. 2024-01-01T00:00:00Z."
    )
    assert v2.pop("start_date")["description"] == (
        "UTC date and time (ISO 8601) of the first generated record, e.g. 2024-01-01T00:00:00Z."
    )
    assert v1 == v2
    assert v1["api_key"]["airbyte_secret"] is True


def test_unknown_version_is_refused() -> None:
    run = run_demo("3.0.0", "spec")
    assert run.returncode == 2
    assert "DEMO_VERSION='3.0.0' is not a demo version" in run.stderr


@pytest.mark.parametrize("version", ["1.0.0", "2.0.0"])
def test_check_succeeds_on_the_sample_config(version: str) -> None:
    run = run_demo(version, "check", "--config", CONFIG)
    assert run.returncode == 0
    assert [m["connectionStatus"] for m in run.of_type("CONNECTION_STATUS")] == [{"status": "SUCCEEDED"}]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"count": -1}, "Invalid config: 'count' must be an integer >= 0, got -1"),
        ({"count": "ten"}, "Invalid config: 'count' must be an integer, got 'ten'"),
        ({"start_date": "yesterday"}, "Invalid config: 'start_date' must be an ISO 8601 date-time, got 'yesterday'"),
        ({"api_url": "ftp://x"}, "Invalid config: 'api_url' must be an http(s) URL, got 'ftp://x'"),
    ],
)
def test_check_fails_clearly_on_a_bad_config(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    run = run_demo("1.0.0", "check", "--config", write_config(tmp_path, **fields))
    assert run.returncode == 0
    assert [m["connectionStatus"] for m in run.of_type("CONNECTION_STATUS")] == [
        {"status": "FAILED", "message": message}
    ]


def test_discover_and_read_with_a_bad_config_emit_a_config_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, count=-1)
    for run in (run_demo("1.0.0", "discover", "--config", config), read("1.0.0", config)):
        assert run.returncode == 1
        [trace] = run.of_type("TRACE")
        assert trace["trace"]["error"]["failure_type"] == "config_error"
        assert "'count' must be an integer >= 0" in trace["trace"]["error"]["message"]
        assert not run.of_type("RECORD")


def catalog_schemas(version: str) -> dict[str, Any]:
    run = run_demo(version, "discover", "--config", CONFIG)
    assert run.returncode == 0, run.stderr
    [catalog] = run.of_type("CATALOG")
    return {s["name"]: s for s in catalog["catalog"]["streams"]}


def test_discover_differs_only_in_the_documented_schema_changes() -> None:
    v1, v2 = catalog_schemas("1.0.0"), catalog_schemas("2.0.0")
    assert list(v1) == ["customers", "orders", "events"]
    assert v1["customers"]["source_defined_primary_key"] == [["id"]]
    assert v1["customers"]["default_cursor_field"] == ["updated_at"]
    assert v1["orders"]["source_defined_primary_key"] == [["order_id"], ["line"]]
    assert "source_defined_primary_key" not in v1["events"]
    assert v1["customers"]["json_schema"]["properties"]["email"] == {"type": "string"}
    assert v2["customers"]["json_schema"]["properties"]["email"] == {"type": ["null", "string"]}
    assert "currency" not in v1["orders"]["json_schema"]["properties"]
    assert v2["orders"]["json_schema"]["properties"].pop("currency") == {"type": ["null", "string"]}
    v2["customers"]["json_schema"]["properties"]["email"] = {"type": "string"}
    assert v1 == v2


# ---------------------------------------------------------------- read


def test_read_emits_a_well_formed_protocol_stream() -> None:
    run = read("1.0.0")
    assert run.returncode == 0, run.stderr
    assert not run.invalid_lines
    assert {m["type"] for m in run.messages} == {"LOG", "TRACE", "RECORD", "STATE"}
    now_ms = time.time() * 1000
    for record in run.of_type("RECORD"):
        assert now_ms - 60_000 < record["record"]["emitted_at"] <= now_ms
    statuses: dict[str, list[str]] = {}
    for trace in run.of_type("TRACE"):
        status = trace["trace"]["stream_status"]
        statuses.setdefault(status["stream_descriptor"]["name"], []).append(status["status"])
    assert statuses == {s: ["STARTED", "RUNNING", "COMPLETE"] for s in ("customers", "orders", "events")}
    # Each incremental stream's state comes after its records and before its COMPLETE status.
    kinds = [(m["type"], m.get("record", {}).get("stream")) for m in run.messages]
    last_customer = max(i for i, k in enumerate(kinds) if k == ("RECORD", "customers"))
    assert run.messages[last_customer + 1]["state"]["stream"]["stream_descriptor"] == {"name": "customers"}
    assert run.of_type("LOG")[0]["log"]["message"] == "Starting read with the demo source 1.0.0 in local mode"


def test_read_is_deterministic_and_seeded(tmp_path: Path) -> None:
    first, again = read("1.0.0"), read("1.0.0")
    assert first.records("customers") == again.records("customers")
    assert first.records("orders") == again.records("orders")
    other_seed = read("1.0.0", write_config(tmp_path, seed=7))
    assert other_seed.records("customers") != first.records("customers")
    assert [c["id"] for c in other_seed.records("customers")] == list(range(1, 31))


def test_read_differs_exactly_as_documented() -> None:
    v1, v2 = read("1.0.0"), read("2.0.0")
    assert v1.returncode == v2.returncode == 0
    counts = {s: (len(v1.records(s)), len(v2.records(s))) for s in ("customers", "orders", "events")}
    assert counts == {"customers": (30, 30), "orders": (60, 59), "events": (30, 30)}

    renamed = [(a, b) for a, b in zip(v1.records("customers"), v2.records("customers"), strict=True) if a != b]
    assert renamed == [
        (
            {**renamed[0][0], "name": CUSTOMER_7_V1},
            {**renamed[0][0], "name": CUSTOMER_7_V1.upper()},
        )
    ]
    assert renamed[0][0]["id"] == 7

    v2_keys = {(o["order_id"], o["line"]) for o in v2.records("orders")}
    dropped = [o for o in v1.records("orders") if (o["order_id"], o["line"]) not in v2_keys]
    assert dropped == [DROPPED_ORDER_LINE]
    assert [o for o in v1.records("orders") if o != DROPPED_ORDER_LINE] == v2.records("orders")
    assert v1.records("events") == v2.records("events")

    assert v1.states() == {
        "customers": {"updated_at": "2024-01-02T06:00:00Z"},
        "events": {"ts": "2024-01-01T15:00:00Z"},
    }
    assert v2.states() == {
        "customers": {"updated_at": "2024-01-02T06:00:00+00:00"},
        "events": {"ts": "2024-01-01T15:00:00Z"},
    }


def test_read_with_state_resumes_incrementally() -> None:
    v1, v2 = read("1.0.0", state=STATE), read("2.0.0", state=STATE)
    assert [c["id"] for c in v1.records("customers")] == list(range(21, 31))
    assert v1.records("customers") == v2.records("customers")
    assert min(e["ts"] for e in v1.records("events")) == "2024-01-01T10:30:00Z"
    assert (len(v1.records("events")), len(v2.records("events"))) == (10, 10)
    # Full refresh stream: the state does not apply.
    assert (len(v1.records("orders")), len(v2.records("orders"))) == (60, 59)
    assert v1.states()["customers"] == {"updated_at": "2024-01-02T06:00:00Z"}
    assert v2.states()["customers"] == {"updated_at": "2024-01-02T06:00:00+00:00"}


def test_each_version_resumes_from_the_other_versions_state(tmp_path: Path) -> None:
    state_path = tmp_path / "state.json"
    for version, other_versions_cursor in (("1.0.0", "2024-01-02T01:00:00+00:00"), ("2.0.0", "2024-01-02T01:00:00Z")):
        stream = {"stream_descriptor": {"name": "customers"}, "stream_state": {"updated_at": other_versions_cursor}}
        state_path.write_text(json.dumps([{"type": "STREAM", "stream": stream}]))
        run = read(version, state=state_path)
        assert [c["id"] for c in run.records("customers")] == list(range(26, 31)), version


def test_legacy_state_object_and_whole_state_messages_are_accepted(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({"customers": {"updated_at": "2024-01-02T04:00:00Z"}}))
    assert [c["id"] for c in read("1.0.0", state=legacy).records("customers")] == [29, 30]
    wrapped = tmp_path / "wrapped.json"
    state = {
        "type": "STREAM",
        "stream": {"stream_descriptor": {"name": "events"}, "stream_state": {"ts": "2024-01-01T14:30:00Z"}},
    }
    wrapped.write_text(json.dumps([{"type": "STATE", "state": state}]))
    assert len(read("1.0.0", state=wrapped).records("events")) == 1


def test_count_zero_reads_nothing_and_keeps_the_input_cursor(tmp_path: Path) -> None:
    run = read("1.0.0", write_config(tmp_path, count=0), state=STATE)
    assert run.returncode == 0
    assert not run.of_type("RECORD")
    assert run.states() == {
        "customers": {"updated_at": "2024-01-01T20:00:00Z"},
        "events": {"ts": "2024-01-01T10:00:00Z"},
    }


# ---------------------------------------------------------------- knobs


def test_crash_after_records_exits_1_mid_stream_with_a_traceback(tmp_path: Path) -> None:
    run = read("1.0.0", write_config(tmp_path, crash_after_records=35))
    assert run.returncode == 1
    assert len(run.records("customers")) == 30 and len(run.records("orders")) == 5
    assert run.stderr.startswith("Traceback (most recent call last):")
    assert run.stderr.rstrip().endswith("DemoCrash: demo crash after 35 records (crash_after_records)")
    incomplete, error = run.of_type("TRACE")[-2:]
    assert incomplete["trace"]["stream_status"] == {"stream_descriptor": {"name": "orders"}, "status": "INCOMPLETE"}
    assert error["trace"]["error"]["message"] == "Sync failed: demo crash after 35 records (crash_after_records)"
    assert "Traceback" in error["trace"]["error"]["stack_trace"]
    assert "customers" in run.states() and "events" not in run.states()


def test_print_garbage_prints_the_two_documented_lines(tmp_path: Path) -> None:
    config = write_config(tmp_path, print_garbage=True)
    run = read("1.0.0", config)
    assert run.returncode == 0
    assert run.invalid_lines == [
        "demo source: this line is not JSON",
        '{"type": "RECORD", "record": {"stream": "customers", "data": ',
    ]
    assert run.stdout_lines[0] == "demo source: this line is not JSON"
    first_record = next(i for i, line in enumerate(run.stdout_lines) if '"type":"RECORD"' in line)
    assert run.stdout_lines[first_record + 1].startswith('{"type": "RECORD", "record": {"stream": "customers"')
    check = run_demo("1.0.0", "check", "--config", config)
    assert check.invalid_lines == ["demo source: this line is not JSON"]


def test_huge_record_mb_emits_one_extra_event_of_that_size(tmp_path: Path) -> None:
    run = read("1.0.0", write_config(tmp_path, huge_record_mb=3))
    events = run.records("events")
    assert len(events) == 31
    assert {k: v for k, v in events[-1].items() if k != "payload"} == {
        "event_type": "huge",
        "customer_id": 0,
        "ts": "2024-01-01T00:00:00Z",
    }
    assert events[-1]["payload"] == "x" * 3 * 1048576
    assert run.states()["events"] == {"ts": "2024-01-01T15:00:00Z"}


def test_hang_seconds_sleeps_after_the_first_record(tmp_path: Path) -> None:
    config = write_config(tmp_path, hang_seconds=1.5)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "live_tests.demo.source_demo",
            "read",
            "--config",
            str(config),
            "--catalog",
            str(CATALOG),
        ],
        stdout=subprocess.PIPE,
        env={**clean_env(), "DEMO_VERSION": "1.0.0"},
    )
    try:
        assert process.stdout is not None
        started = time.monotonic()
        first_record_at = None
        lines = 0
        for line in process.stdout:
            lines += 1
            if first_record_at is None and b'"type":"RECORD"' in line:
                first_record_at = time.monotonic()
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    ended = time.monotonic()
    assert first_record_at is not None and first_record_at - started < 1.4
    assert ended - first_record_at >= 1.4
    assert lines > 120


# ---------------------------------------------------------------- HTTP mode


@pytest.fixture(scope="module")
def fake_api_url() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "live_tests.demo.fake_api", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline().strip()
        assert ready.startswith("fake-api listening on http://127.0.0.1:"), ready
        yield ready.removeprefix("fake-api listening on ")
    finally:
        process.terminate()
        process.wait(timeout=10)


def http_get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def served(api: str) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in http_get(f"{api}/__requests")]


def reset(api: str) -> None:
    request = urllib.request.Request(f"{api}/__reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response) == {"reset": True}


def test_fake_api_pages_and_records_requests(fake_api_url: str) -> None:
    reset(fake_api_url)
    page = http_get(f"{fake_api_url}/v1/orders?page=3&per_page=20")
    assert (page["page"], page["per_page"], page["total"], page["next_page"]) == (3, 20, 60, None)
    assert len(page["data"]) == 20
    assert http_get(f"{fake_api_url}/v1/customers?page=1&per_page=2")["next_page"] == 2
    assert http_get(f"{fake_api_url}/v1/shop") == {
        "name": "Demo Shop",
        "currency": "USD",
        "timezone": "UTC",
        "customers": 30,
    }
    with pytest.raises(urllib.error.HTTPError) as missing:
        http_get(f"{fake_api_url}/v1/nope")
    assert missing.value.code == 404
    assert served(fake_api_url) == [
        "GET /v1/orders?page=3&per_page=20",
        "GET /v1/customers?page=1&per_page=2",
        "GET /v1/shop",
        "GET /v1/nope",
    ]
    reset(fake_api_url)
    assert served(fake_api_url) == []


@pytest.mark.parametrize(("version", "requests"), [("1.0.0", V1_REQUESTS), ("2.0.0", V2_REQUESTS)])
def test_http_mode_reads_the_same_records_with_the_documented_requests(
    tmp_path: Path, fake_api_url: str, version: str, requests: list[str]
) -> None:
    reset(fake_api_url)
    run = read(version, write_config(tmp_path, api_url=f"{fake_api_url}/v1", api_key="k"))
    assert run.returncode == 0, run.stderr
    assert served(fake_api_url) == requests
    assert {r["user_agent"] for r in http_get(f"{fake_api_url}/__requests")} == {f"source-demo/{version}"}
    local = read(version)
    assert without_emitted_at(run.of_type("RECORD")) == without_emitted_at(local.of_type("RECORD"))
    assert run.states() == local.states()


def test_http_mode_page_size_is_configurable_in_2_0_0_only(tmp_path: Path, fake_api_url: str) -> None:
    config = write_config(tmp_path, api_url=f"{fake_api_url}/v1", page_size=100)
    for version, expected in (
        ("1.0.0", V1_REQUESTS),
        (
            "2.0.0",
            [
                "GET /v1/shop",
                "GET /v1/customers?page=1&per_page=100",
                "GET /v1/orders?page=1&per_page=100",
                "GET /v1/events?page=1&per_page=100",
            ],
        ),
    ):
        reset(fake_api_url)
        assert read(version, config).returncode == 0
        assert served(fake_api_url) == expected


def test_http_mode_check_makes_one_request(tmp_path: Path, fake_api_url: str) -> None:
    config = write_config(tmp_path, api_url=f"{fake_api_url}/v1")
    for version in ("1.0.0", "2.0.0"):
        reset(fake_api_url)
        run = run_demo(version, "check", "--config", config)
        assert [m["connectionStatus"] for m in run.of_type("CONNECTION_STATUS")] == [{"status": "SUCCEEDED"}]
        assert served(fake_api_url) == ["GET /v1/customers?page=1&per_page=1"]


def test_http_mode_honours_http_proxy(tmp_path: Path, fake_api_url: str) -> None:
    # The fake API answers absolute-form requests, so it can stand in for a forward proxy.
    reset(fake_api_url)
    config = write_config(tmp_path, api_url="http://api.demo-shop.example/v1")
    run = read("2.0.0", config, env=clean_env(HTTP_PROXY=fake_api_url))
    assert run.returncode == 0, run.stderr
    assert len(run.records("orders")) == 59
    entries = http_get(f"{fake_api_url}/__requests")
    assert [f"{r['method']} {r['path']}" for r in entries] == V2_REQUESTS
    assert {r["host"] for r in entries} == {"api.demo-shop.example"}


def test_http_mode_unreachable_api_fails_check_and_read(tmp_path: Path) -> None:
    config = write_config(tmp_path, api_url="http://127.0.0.1:9/v1")
    check = run_demo("1.0.0", "check", "--config", config)
    [status] = check.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "FAILED"
    assert status["connectionStatus"]["message"].startswith(
        "GET http://127.0.0.1:9/v1/customers?page=1&per_page=1 failed"
    )
    run = read("1.0.0", config)
    assert run.returncode == 1
    assert run.of_type("TRACE")[-1]["trace"]["error"]["failure_type"] == "system_error"
    assert "127.0.0.1:9" in run.stderr


# ---------------------------------------------------------------- TLS with a private CA


def _certificates(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for localhost signed by it: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "live-tests test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture
def https_api(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca, cert, key = _certificates(tmp_path)
    server = fake_api.make_server("127.0.0.1", 0, ShopParams())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://localhost:{server.server_address[1]}/v1", ca
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("variable", ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"])
def test_http_mode_verifies_tls_with_the_ca_from_the_environment(
    tmp_path: Path, https_api: tuple[str, Path], variable: str
) -> None:
    url, ca = https_api
    config = write_config(tmp_path, api_url=url)
    trusted = run_demo("2.0.0", "check", "--config", config, env=clean_env(**{variable: str(ca)}))
    assert [m["connectionStatus"] for m in trusted.of_type("CONNECTION_STATUS")] == [{"status": "SUCCEEDED"}]
    untrusted = run_demo("2.0.0", "check", "--config", config)
    [status] = untrusted.of_type("CONNECTION_STATUS")
    assert status["connectionStatus"]["status"] == "FAILED"
    assert "CERTIFICATE_VERIFY_FAILED" in status["connectionStatus"]["message"]
