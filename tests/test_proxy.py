"""The proxy stage against real Docker and a real mitmproxy: capture, cache, hermetic replay, cleanup.

A fake upstream runs in its own container, published on a host port; the proxy reaches it through
`host.docker.internal` because `--proxy-option map_remote` sends `https://api.demo-shop.example`
there. The "connector" is a plain Python container (urllib) that calls the https hostname.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import duckdb
import pytest
from mitmproxy import http
from mitmproxy.io import FlowReader

from live_tests.docker_engine import LABEL_ROLE, LABEL_RUN_ID, labels
from live_tests.images import download_wheels, ensure_proxy_image, proxy_wheels
from live_tests.models import (
    Command,
    ConnectorImage,
    ConnectorInputs,
    ExecutionInputs,
    HttpCapture,
    InputError,
    ProxyAttachment,
)
from live_tests.proxy import (
    CAPTURE_FILE,
    DEFAULT_PROXY_IMAGE,
    FLOWS_FILE,
    PROXY_ALIAS,
    ProxyError,
    ProxyMode,
    ProxySessionCA,
    ProxySettings,
    RunProxy,
    parse_proxy_options,
    proxy_for_execution,
)
from live_tests.secrets import SecretMasker, scrub_tree
from live_tests.store.http_flows import create_tables, insert_http_capture
from tests.conftest import DEMO_DIR, leftovers, run_cli
from tests.http_demo import fake_api, map_remote

API = "https://api.demo-shop.example"
CLIENT_IMAGE = "live-tests-test/https-client:1"

# The fake upstream: answers every request with JSON naming it, echoes POST bodies, and lists
# what it served at GET /__requests (not itself recorded).
FAKE_UPSTREAM = r"""
import json, http.server
served = []
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def _send(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/__requests":
            return self._send(served)
        served.append({"method": "GET", "path": self.path})
        self._send({"served": "GET " + self.path, "items": [{"id": i, "name": "item-%d" % i} for i in range(3)]})
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        served.append({"method": "POST", "path": self.path, "body": body})
        self._send({"served": "POST " + self.path, "echo": json.loads(body or "null")})
print("upstream ready", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""

# The "connector": fetch each (method, url, body) and print one JSON line per answer.
CLIENT = r"""
import json, os, ssl, sys, urllib.request, urllib.error
calls = json.loads(os.environ["CALLS"])
context = None
if os.environ.get("CERTIFI_ONLY"):
    import certifi  # verify like an Airbyte CDK connector: certifi's bundle only, no env vars
    context = ssl.create_default_context(cafile=certifi.where())
for method, url, body in calls:
    request = urllib.request.Request(url, method=method, data=body.encode() if body else None,
                                     headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=20, context=context) as response:
            print(json.dumps({"url": url, "status": response.status, "body": response.read().decode()}))
    except urllib.error.HTTPError as exc:
        print(json.dumps({"url": url, "status": exc.code, "body": exc.read().decode()}))
    except Exception as exc:
        print(json.dumps({"url": url, "status": None, "error": repr(exc)}))
"""

# Direct connections that ignore the proxy settings.
BYPASS = r"""
import json, os, socket
for host, port in json.loads(os.environ["TARGETS"]):
    s = socket.socket()
    s.settimeout(4)
    try:
        s.connect((host, port))
        print(json.dumps({"target": [host, port], "connected": True}))
    except OSError as exc:
        print(json.dumps({"target": [host, port], "connected": False, "error": repr(exc)}))
    finally:
        s.close()
"""


@dataclass
class Upstream:
    container: Any
    host_port: int
    ip: str
    gateway: str  # an address of the Docker host, where the port is published

    @property
    def map_remote(self) -> str:
        return rf"|https://api\.demo-shop\.example|http://host.docker.internal:{self.host_port}"

    def served(self) -> list[dict]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.host_port}/__requests", timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def proxy_image(docker_client: docker.DockerClient, base_image: str) -> str:
    ensure_proxy_image(docker_client, DEFAULT_PROXY_IMAGE, base_image)
    return DEFAULT_PROXY_IMAGE


@pytest.fixture(scope="module")
def client_image(docker_client: docker.DockerClient, base_image: str) -> str:
    """The base image plus certifi (from the proxy's wheel cache), like a Python connector image."""
    wheels = download_wheels(proxy_wheels(docker_client.info().get("Architecture", "x86_64")))
    certifi_wheel = next(wheels.glob("certifi-*.whl"))
    with tempfile.TemporaryDirectory() as context:
        shutil.copy(certifi_wheel, context)
        Path(context, "Dockerfile").write_text(
            f"FROM {base_image}\nCOPY {certifi_wheel.name} /tmp/\n"
            f"RUN python3 -m pip install --no-index --break-system-packages /tmp/{certifi_wheel.name}\n"
        )
        docker_client.images.build(path=context, tag=CLIENT_IMAGE, rm=True, network_mode="none")
    return CLIENT_IMAGE


def _start_upstream(client: docker.DockerClient, base_image: str, script: str = FAKE_UPSTREAM) -> Upstream:
    name = f"live-tests-test-upstream-{uuid.uuid4().hex[:8]}"
    network = client.networks.create(name, labels=labels("test-upstream", "upstream"))
    container = client.containers.run(
        base_image,
        ["python3", "-u", "-c", script],
        name=name,
        network=network.name,
        ports={"8000/tcp": None},
        labels=labels("test-upstream", "upstream"),
        detach=True,
    )
    deadline = time.monotonic() + 30
    while b"upstream ready" not in container.logs():
        assert time.monotonic() < deadline, container.logs()
        time.sleep(0.1)
    container.reload()
    port = int(container.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"])
    endpoint = container.attrs["NetworkSettings"]["Networks"][network.name]
    return Upstream(container, port, endpoint["IPAddress"], endpoint["Gateway"])


def _stop_upstream(client: docker.DockerClient, upstream: Upstream) -> None:
    upstream.container.remove(force=True)
    for network in client.networks.list(names=[upstream.container.name]):
        network.remove()


@pytest.fixture(scope="module")
def upstream(docker_client: docker.DockerClient, base_image: str) -> Iterator[Upstream]:
    running = _start_upstream(docker_client, base_image)
    yield running
    _stop_upstream(docker_client, running)


def _inputs(tmp_path: Path, image: str, run_id: str, name: str = "control") -> ExecutionInputs:
    return ExecutionInputs(
        connector=ConnectorImage.parse(image),
        command=Command.READ,
        inputs=ConnectorInputs(),
        artifacts_dir=tmp_path / name,
        run_id=run_id,
    )


def run_connector(
    client: docker.DockerClient,
    image: str,
    attachment: ProxyAttachment,
    script: str | list[str],
    run_id: str,
    env: dict[str, str] | None = None,
) -> list[dict]:
    """Do what the runner does with a ProxyAttachment, then run `script` (Python, or a command); its JSON lines."""
    container = client.containers.create(
        image,
        ["python3", "-c", script] if isinstance(script, str) else script,
        network=attachment.network,
        environment={**attachment.environment, **(env or {})},
        labels=labels(run_id, "connector"),
        detach=True,
    )
    try:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for path, content in attachment.extra_files.items():
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
        container.put_archive("/", buffer.getvalue())
        if attachment.prepare is not None:
            attachment.prepare(container)
        container.start()
        assert container.wait(timeout=120)["StatusCode"] == 0, container.logs()
        return [json.loads(line) for line in container.logs(stderr=False).decode().splitlines() if line.strip()]
    finally:
        container.remove(force=True)


def read_mitm(path: Path) -> list[http.HTTPFlow]:
    with path.open("rb") as f:
        return [flow for flow in FlowReader(f).stream() if isinstance(flow, http.HTTPFlow)]


def flows_table(inputs: ExecutionInputs) -> list[dict]:
    """The store's http_flows rows of what the proxy wrote into the execution's artifacts."""
    con = duckdb.connect()
    create_tables(con)
    insert_http_capture(con, inputs.key, HttpCapture(True, "capture", flows_path=inputs.artifacts_dir / FLOWS_FILE))
    cursor = con.execute("SELECT * FROM http_flows ORDER BY seq")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


CONTROL_CALLS = [
    ["GET", f"{API}/v1/products?page=2&limit=3", None],
    ["POST", f"{API}/v1/orders", json.dumps({"product_id": 7, "quantity": 2})],
]


@pytest.fixture(scope="module")
def control_run(
    docker_client: docker.DockerClient, proxy_image: str, client_image: str, upstream: Upstream, tmp_path_factory
) -> tuple[ExecutionInputs, list[dict], list[dict], int]:
    """One captured execution: its inputs, the client's answers, the certifi-only answers, upstream count before."""
    run_id = f"proxy-capture-{uuid.uuid4().hex[:6]}"
    session = ProxySessionCA.generate(run_id)
    settings = ProxySettings(image=proxy_image, options=parse_proxy_options([f"map_remote={upstream.map_remote}"]))
    inputs = _inputs(tmp_path_factory.mktemp("capture"), client_image, run_id)
    served_before = len(upstream.served())
    with proxy_for_execution(docker_client, inputs, settings, session) as proxied:
        attachment = proxied.attachment
        assert attachment is not None
        answers = run_connector(
            docker_client, client_image, attachment, CLIENT, run_id, {"CALLS": json.dumps(CONTROL_CALLS)}
        )
        certifi_calls = [["GET", f"{API}/v1/certifi-check", None]]
        certifi_answers = run_connector(
            docker_client,
            client_image,
            attachment,
            CLIENT,
            run_id,
            {"CALLS": json.dumps(certifi_calls), "CERTIFI_ONLY": "1", "SSL_CERT_FILE": "/nonexistent"},
        )
        assert proxied.capture is None  # known once the proxy has stopped
    assert leftovers(docker_client, run_id) == []
    assert proxied.capture == HttpCapture(
        enabled=True,
        mode="capture",
        proxy_image=proxy_image,
        options={"map_remote": [upstream.map_remote]},
        flows_path=inputs.artifacts_dir / FLOWS_FILE,
    )
    return inputs, answers, certifi_answers, served_before


@pytest.mark.docker
def test_capture_decrypts_https_and_records_mitm_har_and_flows(control_run, upstream: Upstream) -> None:
    inputs, answers, certifi_answers, served_before = control_run
    assert [a["status"] for a in answers] == [200, 200], answers
    assert json.loads(answers[0]["body"])["served"] == "GET /v1/products?page=2&limit=3"
    assert json.loads(answers[1]["body"])["echo"] == {"product_id": 7, "quantity": 2}
    # Verifying with certifi's bundle alone works: prepare() appended the CA to it in the image.
    assert certifi_answers[0]["status"] == 200, certifi_answers
    served = upstream.served()[served_before:]
    assert [(s["method"], s["path"]) for s in served] == [
        ("GET", "/v1/products?page=2&limit=3"),
        ("POST", "/v1/orders"),
        ("GET", "/v1/certifi-check"),
    ]

    # .mitm: decrypted requests and responses, URL as the connector asked, the mapped one kept aside.
    flows = read_mitm(inputs.artifacts_dir / "http_dump.mitm")
    assert [f.request.pretty_url for f in flows] == [call[1] for call in CONTROL_CALLS] + [f"{API}/v1/certifi-check"]
    assert json.loads(flows[0].response.content)["items"][2] == {"id": 2, "name": "item-2"}
    assert json.loads(flows[1].request.content) == {"product_id": 7, "quantity": 2}
    assert json.loads(flows[1].response.content)["echo"] == {"product_id": 7, "quantity": 2}
    assert flows[1].metadata["live_tests.sent_url"] == f"http://host.docker.internal:{upstream.host_port}/v1/orders"

    # HAR 1.2 with the same decrypted content; mitmproxy can read it back.
    har = json.loads((inputs.artifacts_dir / "http_dump.har").read_text())
    assert har["log"]["version"] == "1.2"
    entries = har["log"]["entries"]
    assert [e["request"]["url"] for e in entries] == [f.request.pretty_url for f in flows]
    for entry in entries:
        assert {"startedDateTime", "time", "request", "response", "cache", "timings"} <= entry.keys()
        assert {
            "method",
            "url",
            "httpVersion",
            "cookies",
            "headers",
            "queryString",
            "headersSize",
            "bodySize",
        } <= entry["request"].keys()
        response = entry["response"]
        assert {
            "status",
            "statusText",
            "httpVersion",
            "cookies",
            "headers",
            "content",
            "redirectURL",
        } <= response.keys()
        assert {"size", "mimeType"} <= response["content"].keys()
        assert all(entry["timings"][k] >= 0 for k in ("send", "wait", "receive"))
    assert json.loads(entries[1]["request"]["postData"]["text"]) == {"product_id": 7, "quantity": 2}
    assert json.loads(entries[0]["response"]["content"]["text"])["served"] == "GET /v1/products?page=2&limit=3"
    assert {"name": "limit", "value": "3"} in entries[0]["request"]["queryString"]
    with (inputs.artifacts_dir / "http_dump.har").open("rb") as f:
        assert len(list(FlowReader(f).stream())) == 3

    # http_flows: one row per flow, as the connector asked.
    rows = flows_table(inputs)
    assert [(r["seq"], r["method"], r["url"], r["status"]) for r in rows] == [
        (1, "GET", f"{API}/v1/products?page=2&limit=3", 200),
        (2, "POST", f"{API}/v1/orders", 200),
        (3, "GET", f"{API}/v1/certifi-check", 200),
    ]
    products, orders = rows[0], rows[1]
    assert (products["host"], products["path"], products["query"]) == (
        "api.demo-shop.example",
        "/v1/products",
        "page=2&limit=3",
    )
    assert products["request_size"] == 0 and products["response_size"] == len(flows[0].response.raw_content)
    assert orders["request_size"] == len(CONTROL_CALLS[1][2])
    assert orders["response_size"] == len(
        json.dumps({"served": "POST /v1/orders", "echo": {"product_id": 7, "quantity": 2}})
    )
    assert all(r["cache_hit"] is False and r["error"] is None and r["duration_ms"] > 0 for r in rows)
    assert (rows[0]["connector"], rows[0]["version"], rows[0]["command"]) == inputs.key

    capture = json.loads((inputs.artifacts_dir / CAPTURE_FILE).read_text())
    assert capture["enabled"] is True and capture["mode"] == "capture" and capture["flows"] == 3
    assert "proxy listening at" in (inputs.artifacts_dir / "proxy.log").read_text()


@pytest.mark.docker
def test_connector_cannot_bypass_the_proxy(
    docker_client: docker.DockerClient, proxy_image: str, client_image: str, upstream: Upstream, tmp_path: Path
) -> None:
    run_id = f"proxy-bypass-{uuid.uuid4().hex[:6]}"
    settings = ProxySettings(image=proxy_image, options={"map_remote": (upstream.map_remote,)})
    inputs = _inputs(tmp_path, client_image, run_id)
    targets = [[upstream.ip, 8000], [upstream.gateway, upstream.host_port]]
    with proxy_for_execution(docker_client, inputs, settings, ProxySessionCA.generate(run_id)) as proxied:
        attachment = proxied.attachment
        assert attachment is not None
        network = docker_client.networks.get(attachment.network)
        assert network.attrs["Internal"] is True
        results = run_connector(
            docker_client, client_image, attachment, BYPASS, run_id, {"TARGETS": json.dumps(targets)}
        )
        # ...while through the proxy the same upstream answers.
        via_proxy = run_connector(
            docker_client,
            client_image,
            attachment,
            CLIENT,
            run_id,
            {"CALLS": json.dumps([["GET", f"{API}/v1/x", None]])},
        )
    assert [r["connected"] for r in results] == [False, False], results
    assert via_proxy[0]["status"] == 200
    assert leftovers(docker_client, run_id) == []


@pytest.mark.docker
def test_cache_mode_serves_the_control_recording_and_forwards_misses(
    docker_client: docker.DockerClient, control_run, client_image: str, proxy_image: str, upstream: Upstream, tmp_path
) -> None:
    control, _answers, _certifi, _before = control_run
    run_id = f"proxy-cache-{uuid.uuid4().hex[:6]}"
    settings = ProxySettings(image=proxy_image, mode=ProxyMode.CACHE, options={"map_remote": (upstream.map_remote,)})
    target = _inputs(tmp_path, client_image, run_id, "target")
    calls = [
        ["GET", f"{API}/v1/products?limit=3&page=2", None],  # same request, parameters in another order
        ["POST", f"{API}/v1/orders", json.dumps({"product_id": 7, "quantity": 2})],
        ["GET", f"{API}/v1/never-asked-by-control", None],
    ]
    served_before = len(upstream.served())
    with proxy_for_execution(
        docker_client,
        target,
        settings,
        ProxySessionCA.generate(run_id),
        cache_from=control.artifacts_dir / "http_dump.mitm",
    ) as proxied:
        attachment = proxied.attachment
        answers = run_connector(docker_client, client_image, attachment, CLIENT, run_id, {"CALLS": json.dumps(calls)})
    assert [a["status"] for a in answers] == [200, 200, 200]
    # The recorded answers, byte for byte; only the unseen request reached the upstream.
    assert json.loads(answers[0]["body"])["served"] == "GET /v1/products?page=2&limit=3"
    assert [(s["method"], s["path"]) for s in upstream.served()[served_before:]] == [
        ("GET", "/v1/never-asked-by-control")
    ]
    rows = flows_table(target)
    assert [(r["url"], r["cache_hit"], r["status"]) for r in rows] == [
        (f"{API}/v1/products?limit=3&page=2", True, 200),  # the URL as the target sent it
        (f"{API}/v1/orders", True, 200),
        (f"{API}/v1/never-asked-by-control", False, 200),
    ]
    capture = json.loads((target.artifacts_dir / CAPTURE_FILE).read_text())
    assert capture["mode"] == "cache" and capture["recording"].endswith("http_dump.mitm")
    assert leftovers(docker_client, run_id) == []


REPLAY_CALLS = [
    ["GET", f"{API}/v1/products?limit=3&page=2", None],
    ["GET", f"{API}/v1/not-recorded?x=1", None],
    ["POST", f"{API}/v1/orders", json.dumps({"product_id": 7, "quantity": 2})],
]


def _replay(docker_client, client_image, proxy_image, recording: Path, tmp_path: Path, upstream: Upstream | None):
    run_id = f"proxy-replay-{uuid.uuid4().hex[:6]}"
    options = {"map_remote": (upstream.map_remote,)} if upstream else {}
    settings = ProxySettings(image=proxy_image, mode=ProxyMode.REPLAY, replay_path=recording, options=options)
    settings.validate()
    inputs = _inputs(tmp_path, client_image, run_id, "replay")
    with proxy_for_execution(docker_client, inputs, settings, ProxySessionCA.generate(run_id)) as proxied:
        attachment = proxied.attachment
        proxy = docker_client.containers.list(
            filters={"label": [f"live-tests.run-id={run_id}", "live-tests.role=proxy"]}
        )
        assert len(proxy) == 1
        proxy_networks = proxy[0].attrs["NetworkSettings"]["Networks"]
        answers = run_connector(
            docker_client, client_image, attachment, CLIENT, run_id, {"CALLS": json.dumps(REPLAY_CALLS)}
        )
    assert leftovers(docker_client, run_id) == []
    return inputs, answers, proxy_networks, attachment


def _assert_replayed(inputs: ExecutionInputs, answers: list[dict]) -> None:
    assert [a["status"] for a in answers] == [200, 599, 200], answers
    assert json.loads(answers[0]["body"])["served"] == "GET /v1/products?page=2&limit=3"
    assert json.loads(answers[2]["body"])["echo"] == {"product_id": 7, "quantity": 2}
    assert "no recorded response for GET https://api.demo-shop.example/v1/not-recorded?x=1" in answers[1]["body"]
    rows = flows_table(inputs)
    assert [(r["url"], r["status"], r["cache_hit"]) for r in rows] == [
        (f"{API}/v1/products?limit=3&page=2", 200, True),
        (f"{API}/v1/not-recorded?x=1", 599, False),
        (f"{API}/v1/orders", 200, True),
    ]
    assert rows[1]["error"].startswith("unmatched")
    assert all(r["error"] is None for r in (rows[0], rows[2]))
    # Nothing was fetched upstream: every recorded flow is a replay or the unmatched answer.
    flows = read_mitm(inputs.artifacts_dir / "http_dump.mitm")
    assert [f.metadata["live_tests.replay"] for f in flows] == ["hit", "unmatched", "hit"]
    assert all(f.server_conn.timestamp_start is None for f in flows)


@pytest.mark.docker
def test_replay_is_hermetic_and_lists_unmatched_requests(
    docker_client: docker.DockerClient, control_run, client_image: str, proxy_image: str, upstream: Upstream, tmp_path
) -> None:
    control = control_run[0]
    served_before = len(upstream.served())
    # map_remote still points at the running upstream: a leak would show up in its log.
    inputs, answers, proxy_networks, attachment = _replay(
        docker_client, client_image, proxy_image, control.artifacts_dir / "http_dump.mitm", tmp_path, upstream
    )
    _assert_replayed(inputs, answers)
    assert upstream.served()[served_before:] == []
    # Network level: the replaying proxy is on the connector's internal network only.
    assert list(proxy_networks) == [attachment.network]
    capture = json.loads((inputs.artifacts_dir / CAPTURE_FILE).read_text())
    assert capture["mode"] == "replay"


@pytest.mark.docker
def test_replay_from_har_with_the_upstream_gone(
    docker_client: docker.DockerClient, control_run, client_image: str, proxy_image: str, base_image: str, tmp_path
) -> None:
    gone = _start_upstream(docker_client, base_image)
    _stop_upstream(docker_client, gone)
    inputs, answers, _networks, _attachment = _replay(
        docker_client, client_image, proxy_image, control_run[0].artifacts_dir / "http_dump.har", tmp_path, gone
    )
    _assert_replayed(inputs, answers)


@pytest.mark.docker
def test_everything_is_removed_after_a_failure_and_dumps_are_kept(
    docker_client: docker.DockerClient, proxy_image: str, client_image: str, upstream: Upstream, tmp_path
) -> None:
    run_id = f"proxy-fail-{uuid.uuid4().hex[:6]}"
    settings = ProxySettings(image=proxy_image, options={"map_remote": (upstream.map_remote,)})
    inputs = _inputs(tmp_path, client_image, run_id)
    session = ProxySessionCA.generate(run_id)
    for interruption in (RuntimeError("connector blew up"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)), proxy_for_execution(docker_client, inputs, settings, session) as run:
            att = run.attachment
            run_connector(docker_client, client_image, att, CLIENT, run_id, {"CALLS": json.dumps(CONTROL_CALLS[:1])})
            assert leftovers(docker_client, run_id) != []
            raise interruption
        assert leftovers(docker_client, run_id) == []
        assert [r["status"] for r in flows_table(inputs)] == [200]
        assert len(read_mitm(inputs.artifacts_dir / "http_dump.mitm")) == 1


@pytest.mark.docker
@pytest.mark.parametrize("strategy", ["lazy", "eager"])
def test_a_user_proxy_option_replaces_our_default_for_it(
    docker_client: docker.DockerClient, proxy_image: str, client_image: str, upstream: Upstream, tmp_path, strategy
) -> None:
    """Our default connection_strategy=lazy once made mitmdump exit with "Received multiple values"."""
    run_id = f"proxy-option-{uuid.uuid4().hex[:6]}"
    user = parse_proxy_options([f"connection_strategy={strategy}", f"map_remote={upstream.map_remote}"])
    settings = ProxySettings(image=proxy_image, options=user)
    inputs = _inputs(tmp_path, client_image, run_id)
    with proxy_for_execution(docker_client, inputs, settings, ProxySessionCA.generate(run_id)) as proxied:
        attachment = proxied.attachment
        filters = {"label": [f"live-tests.run-id={run_id}", "live-tests.role=proxy"]}
        (proxy,) = docker_client.containers.list(filters=filters)
        sets = [arg for arg in proxy.attrs["Args"] if arg.startswith("connection_strategy=")]
        assert sets == [f"connection_strategy={strategy}"]
        calls = {"CALLS": json.dumps([["GET", f"{API}/v1/products?page=1", None]])}
        answers = run_connector(docker_client, client_image, attachment, CLIENT, run_id, calls)
    # It took effect: eager connects to the original host, which map_remote has not redirected yet.
    assert [answer["status"] for answer in answers] == ([200] if strategy == "lazy" else [None])
    assert leftovers(docker_client, run_id) == []


@pytest.mark.docker
def test_a_proxy_that_cannot_start_fails_clearly_and_leaves_nothing(
    docker_client: docker.DockerClient, proxy_image: str, client_image: str, tmp_path
) -> None:
    run_id = f"proxy-nostart-{uuid.uuid4().hex[:6]}"
    # Not validated on the host on purpose: mitmdump itself rejects it.
    settings = ProxySettings(image=proxy_image, options={"map_remote": ("|[unclosed|x",)}, ready_timeout_s=30)
    inputs = _inputs(tmp_path, client_image, run_id)
    session = ProxySessionCA.generate(run_id)
    with (
        pytest.raises(ProxyError, match=r"Cannot parse map_remote option \|\[unclosed") as failed,
        proxy_for_execution(docker_client, inputs, settings, session),
    ):
        pytest.fail("the block must not run")
    assert leftovers(docker_client, run_id) == []
    # The capture goes with the error to the store; the file says the same for users.
    capture = failed.value.capture
    assert capture is not None and capture.enabled and "map_remote" in (capture.error or "")
    assert json.loads((inputs.artifacts_dir / CAPTURE_FILE).read_text())["error"] == capture.error


def test_disabled_proxy_yields_nothing_and_says_capture_was_off(tmp_path: Path) -> None:
    inputs = _inputs(tmp_path, "live-tests/anything:1", "proxy-off")
    settings = ProxySettings.from_cli(disable_proxy=True)
    with proxy_for_execution(None, inputs, settings, None) as proxied:  # type: ignore[arg-type]
        assert proxied.attachment is None
    assert proxied.capture == HttpCapture(enabled=False, mode="disabled")
    con = duckdb.connect()
    create_tables(con)
    assert insert_http_capture(con, inputs.key, proxied.capture) == 0
    assert con.execute("SELECT capture_enabled, mode, flows FROM http_captures").fetchall() == [(False, "disabled", 0)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"proxy_options": ["map_remote"]}, "expected KEY=VALUE"),
        ({"proxy_options": ["confdir=/tmp"]}, "live-tests sets this"),
        ({"proxy_options": ["no_such_option=1"]}, "Unknown option"),
        ({"proxy_options": ["connection_strategy=sometimes"]}, "connection_strategy"),
        ({"proxy_options": ["map_remote=|[unclosed|x"]}, "map_remote"),
        ({"http_cache": True, "http_replay": Path("x.mitm")}, "exclude each other"),
        ({"disable_proxy": True, "http_cache": True}, "--disable-proxy"),
        ({"http_replay": Path("/nonexistent/http_dump.mitm")}, "no such file"),
    ],
)
def test_bad_proxy_flags_are_input_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        ProxySettings.from_cli(**kwargs)


def test_replay_file_must_be_a_recording(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mitm"
    junk.write_bytes(b"this is not a dump")
    with pytest.raises(InputError, match="not a mitmproxy dump or HAR"):
        ProxySettings.from_cli(http_replay=junk)


def test_repeated_options_keep_every_value() -> None:
    settings = ProxySettings.from_cli(proxy_options=["map_remote=|a|b", "map_remote=|c|d", "ssl_insecure=true"])
    assert settings.options == {"map_remote": ("|a|b", "|c|d"), "ssl_insecure": ("true",)}
    assert settings.mode is ProxyMode.CAPTURE and settings.enabled
    assert PROXY_ALIAS == "live-tests-proxy"


@pytest.mark.docker
def test_one_proxy_serves_a_run_and_keeps_each_executions_flows_apart(
    docker_client: docker.DockerClient, proxy_image: str, client_image: str, upstream: Upstream, tmp_path: Path
) -> None:
    """Two lanes open at once on the run's one proxy; a third with an unreadable recording fails alone."""
    run_id = f"proxy-lanes-{uuid.uuid4().hex[:6]}"
    options = parse_proxy_options([f"map_remote={upstream.map_remote}"])
    settings = ProxySettings(image=proxy_image, mode=ProxyMode.CACHE, options=options)
    garbage = tmp_path / "garbage.mitm"
    garbage.write_bytes(b"not a mitmproxy dump")
    calls = {
        "a": [["GET", f"{API}/v1/a?x=1", None]],
        "b": [["GET", f"{API}/v1/b", None], ["POST", f"{API}/v1/b", json.dumps({"n": 2})]],
    }
    lanes = {name: _inputs(tmp_path, client_image, run_id, name) for name in ("a", "b", "bad")}
    filters = {"label": [f"{LABEL_RUN_ID}={run_id}", f"{LABEL_ROLE}=proxy"]}
    with RunProxy.running(docker_client, settings, None, run_id, lanes=3) as proxy:
        with proxy.lane(lanes["a"]) as a, proxy.lane(lanes["b"]) as b:
            for name, lane in (("a", a), ("b", b)):
                assert lane.attachment is not None
                answers = run_connector(
                    docker_client, client_image, lane.attachment, CLIENT, run_id, {"CALLS": json.dumps(calls[name])}
                )
                assert [answer["status"] for answer in answers] == [200] * len(calls[name]), answers
        refused = r"^proxy: cannot read recording .*recording\.mitm"
        with pytest.raises(ProxyError, match=refused), proxy.lane(lanes["bad"], cache_from=garbage):
            pytest.fail("a lane that cannot read its recording must not serve")
        assert len(docker_client.containers.list(filters=filters)) == 1
        assert (a.failure, b.failure) == (None, None)
    for name, expected in calls.items():
        artifacts = lanes[name].artifacts_dir
        flows = read_mitm(artifacts / "http_dump.mitm")
        assert [(f.request.method, f.request.pretty_url) for f in flows] == [(m, u) for m, u, _ in expected]
        assert len((artifacts / "http_flows.jsonl").read_text().splitlines()) == len(expected)
        assert len(json.loads((artifacts / "http_dump.har").read_text())["log"]["entries"]) == len(expected)
        assert json.loads((artifacts / "http_capture.json").read_text())["flows"] == len(expected)
    bad = json.loads((lanes["bad"].artifacts_dir / "http_capture.json").read_text())
    assert bad["error"].startswith("proxy: cannot read recording") and "flows" not in bad
    assert leftovers(docker_client, run_id) == []


# Gzips its answer when asked to (like most APIs), and says which encoding the request asked for.
GZIP_UPSTREAM = r"""
import gzip, json, http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        asked = self.headers.get("Accept-Encoding") or ""
        body = json.dumps({"token": "tok-SECRET-0123456789", "asked": asked}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if "gzip" in asked:
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
print("upstream ready", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""

GZIP_CLIENT = r"""
import gzip, json, urllib.request
request = urllib.request.Request("https://api.demo-shop.example/v1/token", headers={"Accept-Encoding": "gzip"})
with urllib.request.urlopen(request, timeout=20) as response:
    raw = response.read()
    body = gzip.decompress(raw) if response.headers.get("Content-Encoding") == "gzip" else raw
    print(json.dumps({"status": response.status, "body": json.loads(body)}))
"""


@pytest.mark.docker
def test_bodies_are_recorded_uncompressed_so_their_secrets_can_be_masked(
    docker_client: docker.DockerClient, proxy_image: str, client_image: str, base_image: str, tmp_path: Path
) -> None:
    """A gzip body in a dump hides its secret from every mask; by default upstreams are asked for identity."""
    upstream = _start_upstream(docker_client, base_image, GZIP_UPSTREAM)
    try:
        run_id = f"proxy-gzip-{uuid.uuid4().hex[:6]}"
        settings = ProxySettings(image=proxy_image, options=parse_proxy_options([f"map_remote={upstream.map_remote}"]))
        inputs = _inputs(tmp_path, client_image, run_id)
        with proxy_for_execution(docker_client, inputs, settings, ProxySessionCA.generate(run_id)) as proxied:
            assert proxied.attachment is not None
            (answer,) = run_connector(docker_client, client_image, proxied.attachment, GZIP_CLIENT, run_id)
        assert answer == {"status": 200, "body": {"token": "tok-SECRET-0123456789", "asked": "identity"}}
        (flow,) = read_mitm(inputs.artifacts_dir / "http_dump.mitm")
        assert flow.request.headers["accept-encoding"] == "gzip"  # recorded as the connector sent it
        assert "content-encoding" not in flow.response.headers
        assert b"tok-SECRET-0123456789" in flow.response.raw_content
        report = scrub_tree(inputs.artifacts_dir, SecretMasker.of(["tok-SECRET-0123456789"]))
        assert inputs.artifacts_dir / "http_dump.mitm" in report.binary_dumps_masked
        (masked,) = read_mitm(inputs.artifacts_dir / "http_dump.mitm")
        assert b"SECRET" not in masked.response.raw_content
        assert json.loads(masked.response.content)["asked"] == "identity"  # still readable
        assert leftovers(docker_client, run_id) == []
    finally:
        _stop_upstream(docker_client, upstream)


def test_host_side_names_match_the_addon() -> None:
    from live_tests.proxy import addon, addon_lanes, container

    names = ("MITM_FILE", "HAR_FILE", "FLOWS_FILE", "REPLAY_FILE")
    assert [getattr(container, n) for n in names] == [getattr(addon_lanes, n) for n in names]
    assert Path(addon.__file__).name == container.ADDON_FILE
    # Every helper the addon imports is copied next to it into the proxy container.
    package = Path(addon.__file__).parent
    imported = {p.stem for p in package.glob("addon_*.py")}
    assert imported == {Path(name).stem for name in container.ADDON_HELPERS}


# A JVM client (HttpURLConnection): it reads neither *_PROXY nor PEM bundles, only JAVA_TOOL_OPTIONS.
FETCH_JAVA = r"""
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.nio.charset.StandardCharsets;

public class Fetch {
    static String quote(String s) {
        return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n").replace("\r", "") + "\"";
    }

    public static void main(String[] args) throws Exception {
        for (String url : args) {
            try {
                HttpURLConnection connection = (HttpURLConnection) new URL(url).openConnection();
                connection.setConnectTimeout(20000);
                connection.setReadTimeout(20000);
                int status = connection.getResponseCode();
                InputStream in = status >= 400 ? connection.getErrorStream() : connection.getInputStream();
                String body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                String line = "{\"url\": " + quote(url) + ", \"status\": " + status;
                System.out.println(line + ", \"body\": " + quote(body) + "}");
            } catch (Exception e) {
                String line = "{\"url\": " + quote(url) + ", \"status\": null";
                System.out.println(line + ", \"error\": " + quote(e.toString()) + "}");
            }
        }
    }
}
"""
JAVA_CLIENT_IMAGE = "live-tests-test/java-client:1"


@pytest.fixture(scope="module")
def java_client_image(docker_client: docker.DockerClient, base_image: str) -> str:
    """The base image plus a small JVM (jlink of the host's JDK) and a compiled HTTPS client."""
    with tempfile.TemporaryDirectory() as context:
        source = Path(context, "Fetch.java")
        source.write_text(FETCH_JAVA)
        subprocess.run(["javac", "--release", "17", "-d", context, str(source)], check=True, capture_output=True)
        subprocess.run(
            ["jlink", "--add-modules", "java.base,jdk.crypto.ec", "--output", f"{context}/jre", "--strip-debug",
             "--no-header-files", "--no-man-pages"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        Path(context, "Dockerfile").write_text(
            f"FROM {base_image}\nCOPY jre /opt/jre\nCOPY Fetch.class /app/\nENV PATH=/opt/jre/bin:$PATH\n"
        )
        docker_client.images.build(path=context, tag=JAVA_CLIENT_IMAGE, rm=True, network_mode="none")
    return JAVA_CLIENT_IMAGE


@pytest.mark.docker
def test_a_jvm_connector_goes_through_the_proxy_and_trusts_the_ca(
    docker_client: docker.DockerClient, proxy_image: str, java_client_image: str, upstream: Upstream, tmp_path: Path
) -> None:
    run_id = f"proxy-java-{uuid.uuid4().hex[:6]}"
    settings = ProxySettings(image=proxy_image, options={"map_remote": (upstream.map_remote,)})
    inputs = _inputs(tmp_path, java_client_image, run_id)
    with proxy_for_execution(docker_client, inputs, settings, ProxySessionCA.generate(run_id)) as proxied:
        attachment = proxied.attachment
        assert attachment is not None
        assert "-Dhttps.proxyHost=live-tests-proxy" in attachment.environment["JAVA_TOOL_OPTIONS"]
        answers = run_connector(
            docker_client,
            java_client_image,
            attachment,
            ["java", "-cp", "/app", "Fetch", f"{API}/v1/from-java?q=1"],
            run_id,
        )
    assert answers[0]["status"] == 200, answers
    assert json.loads(answers[0]["body"])["served"] == "GET /v1/from-java?q=1"
    rows = flows_table(inputs)
    assert [(r["method"], r["url"], r["status"], r["error"]) for r in rows] == [
        ("GET", f"{API}/v1/from-java?q=1", 200, None)
    ]
    assert leftovers(docker_client, run_id) == []


@pytest.mark.docker
def test_debug_cli_captures_then_replays_the_demo_offline(
    docker_client: docker.DockerClient, demo_images: tuple[str, str], proxy_image: str, tmp_path: Path
) -> None:
    """`live-tests debug` end to end: the demo connector in HTTP mode, the demo's fake API behind map_remote."""
    v1, v2 = demo_images
    ids = {name: f"proxy-cli-{name}-{uuid.uuid4().hex[:6]}" for name in ("capture", "replay", "off", "bad")}
    inputs = ["--config-path", DEMO_DIR / "config_http.json", "--catalog-path", DEMO_DIR / "configured_catalog.json"]
    with fake_api(docker_client) as port:
        capture = run_cli("debug", "read", "-c", v1, *inputs, "--output-dir", tmp_path, "--run-id", ids["capture"],
                          "--proxy-option", map_remote(port))  # fmt: skip
        assert capture.returncode == 0, capture.stdout + capture.stderr
    recording = tmp_path / ids["capture"] / "source-demo" / "read" / "1.0.0" / "http_dump.har"
    replay = run_cli("debug", "read", "-c", v1, "-c", v2, *inputs, "--output-dir", tmp_path, "--run-id", ids["replay"],
                     "--http-replay", recording)  # fmt: skip
    # 1.0.0 asks what it asked before and gets it from the recording; 2.0.0 asks new things and is refused.
    assert replay.returncode == 1
    output = (replay.stdout + replay.stderr).replace("\n", "")
    assert "returned HTTP 599: live-tests replay: no recorded response for GET" in output, output
    with duckdb.connect(str(tmp_path / ids["replay"] / "duck.db"), read_only=True) as con:
        summary = con.execute(
            """SELECT version, count(*), bool_and(cache_hit), list(DISTINCT status ORDER BY status),
                      count(*) FILTER (WHERE error LIKE 'unmatched%')
               FROM http_flows GROUP BY version ORDER BY version"""
        ).fetchall()
        assert summary[0][0] == "1.0.0" and summary[0][2:] == (True, [200], 0) and summary[0][1] > 1
        assert summary[1][0] == "2.0.0" and summary[1][2:] == (False, [599], summary[1][1])
        captures = con.execute("SELECT version, capture_enabled, mode FROM http_captures ORDER BY version").fetchall()
        assert captures == [("1.0.0", True, "replay"), ("2.0.0", True, "replay")]
        records = con.execute("SELECT version, count(*) FROM records GROUP BY version").fetchall()
        assert records == [("1.0.0", 120)]
    with duckdb.connect(str(tmp_path / ids["capture"] / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM records").fetchone() == (120,)

    off = run_cli("debug", "spec", "-c", v1, "--output-dir", tmp_path, "--run-id", ids["off"], "--disable-proxy")
    assert off.returncode == 0, off.stderr
    assert "HTTP capture: off (--disable-proxy)" in off.stdout + off.stderr
    artifacts = tmp_path / ids["off"] / "source-demo" / "spec" / "1.0.0"
    assert not (artifacts / "http_dump.mitm").exists()
    with duckdb.connect(str(tmp_path / ids["off"] / "duck.db"), read_only=True) as con:
        assert con.execute("SELECT capture_enabled, mode FROM http_captures").fetchall() == [(False, "disabled")]

    bad = run_cli("debug", "spec", "-c", v1, "--output-dir", tmp_path, "--run-id", ids["bad"],
                  "--proxy-option", "nope=1")  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.strip() == "Error: --proxy-option nope=1: Unknown option(s): nope"
    for run_id in ids.values():
        assert leftovers(docker_client, run_id) == []


# A fake PokeAPI: GET /api/v2/pokemon/ditto answers a (trimmed) real response of pokeapi.co.
DITTO = {
    "id": 132,
    "name": "ditto",
    "base_experience": 101,
    "height": 3,
    "weight": 40,
    "order": 214,
    "is_default": True,
    "abilities": [
        {"ability": {"name": "limber", "url": "https://pokeapi.co/api/v2/ability/7/"}, "is_hidden": False, "slot": 1},
        {
            "ability": {"name": "imposter", "url": "https://pokeapi.co/api/v2/ability/150/"},
            "is_hidden": True,
            "slot": 3,
        },
    ],
    "forms": [{"name": "ditto", "url": "https://pokeapi.co/api/v2/pokemon-form/132/"}],
    "game_indices": [{"game_index": 76, "version": {"name": "red", "url": "https://pokeapi.co/api/v2/version/1/"}}],
    "held_items": [],
    "location_area_encounters": "https://pokeapi.co/api/v2/pokemon/132/encounters",
    "moves": [
        {
            "move": {"name": "transform", "url": "https://pokeapi.co/api/v2/move/144/"},
            "version_group_details": [
                {
                    "level_learned_at": 1,
                    "move_learn_method": {"name": "level-up", "url": "https://pokeapi.co/api/v2/move-learn-method/1/"},
                    "version_group": {"name": "red-blue", "url": "https://pokeapi.co/api/v2/version-group/1/"},
                }
            ],
        }
    ],
    "past_types": [],
    "species": {"name": "ditto", "url": "https://pokeapi.co/api/v2/pokemon-species/132/"},
    "sprites": {
        "front_default": "https://raw.githubusercontent.com/PokeAPI/sprites/master/sprites/pokemon/132.png",
        "front_shiny": "https://raw.githubusercontent.com/PokeAPI/sprites/master/sprites/pokemon/shiny/132.png",
        "back_default": "https://raw.githubusercontent.com/PokeAPI/sprites/master/sprites/pokemon/back/132.png",
        "back_shiny": "https://raw.githubusercontent.com/PokeAPI/sprites/master/sprites/pokemon/back/shiny/132.png",
    },
    "stats": [
        {"base_stat": 48, "effort": 1, "stat": {"name": "hp", "url": "https://pokeapi.co/api/v2/stat/1/"}},
        {"base_stat": 48, "effort": 0, "stat": {"name": "attack", "url": "https://pokeapi.co/api/v2/stat/2/"}},
        {"base_stat": 48, "effort": 0, "stat": {"name": "speed", "url": "https://pokeapi.co/api/v2/stat/6/"}},
    ],
    "types": [{"slot": 1, "type": {"name": "normal", "url": "https://pokeapi.co/api/v2/type/1/"}}],
}
FAKE_POKEAPI = (
    f"import json\nDITTO = json.loads({json.dumps(DITTO)!r})\n"
    + r"""
import http.server
served = []
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def _send(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/__requests":
            return self._send(200, served)
        served.append({"method": "GET", "path": self.path, "host": self.headers.get("Host")})
        if self.path.rstrip("/") == "/api/v2/pokemon/ditto":
            return self._send(200, DITTO)
        self._send(404, {"detail": "Not found."})
print("upstream ready", flush=True)
http.server.ThreadingHTTPServer(("0.0.0.0", 8000), H).serve_forever()
"""
)
POKEMON_CATALOG = {
    "streams": [
        {
            "stream": {"name": "pokemon", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
            "sync_mode": "full_refresh",
            "destination_sync_mode": "overwrite",
        }
    ]
}
POKEAPI_IMAGE = "live-tests-test/source-pokeapi:0.2.15"


@pytest.mark.docker
def test_real_cdk_connector_pokeapi_captured_then_replayed_offline(
    docker_client: docker.DockerClient, base_image: str, proxy_image: str, tmp_path: Path
) -> None:
    """airbyte-source-pokeapi 0.2.15 (Airbyte CDK: verifies TLS with certifi) reads https://pokeapi.co/api/v2/pokemon."""
    # Built as a user would. Its own pins resolve to a CDK that does not run on Python 3.11; 1.8.0 with
    # pendulum 2 does.
    build = run_cli("images", "connector", "airbyte-source-pokeapi==0.2.15", "--tag", POKEAPI_IMAGE,
                    "--override", "airbyte-cdk==1.8.0", "--override", "pendulum<3")  # fmt: skip
    assert build.returncode == 0, build.stderr
    image = build.stdout.split()[-1]
    assert image == POKEAPI_IMAGE
    (tmp_path / "config.json").write_text(json.dumps({"pokemon_name": "ditto"}))
    (tmp_path / "catalog.json").write_text(json.dumps(POKEMON_CATALOG))
    inputs = ["--config-path", tmp_path / "config.json", "--catalog-path", tmp_path / "catalog.json"]
    ids = {name: f"proxy-poke-{name}-{uuid.uuid4().hex[:6]}" for name in ("capture", "replay")}
    fake = _start_upstream(docker_client, base_image, FAKE_POKEAPI)
    try:
        mapping = rf"map_remote=|https://pokeapi\.co|http://host.docker.internal:{fake.host_port}"
        capture = run_cli("debug", "read", "-c", image, *inputs, "--output-dir", tmp_path, "--run-id", ids["capture"],
                          "--proxy-option", mapping, "--timeout", "300")  # fmt: skip
        assert capture.returncode == 0, capture.stdout + capture.stderr
        served = [(r["method"], r["path"], r["host"]) for r in fake.served()]
        assert served == [("GET", "/api/v2/pokemon/ditto", f"host.docker.internal:{fake.host_port}")]
    finally:
        _stop_upstream(docker_client, fake)
    artifacts = tmp_path / ids["capture"] / "source-pokeapi" / "read" / "0.2.15"
    flows = read_mitm(artifacts / "http_dump.mitm")
    assert [f.request.pretty_url for f in flows] == ["https://pokeapi.co/api/v2/pokemon/ditto"]
    assert flows[0].request.host_header == "pokeapi.co"
    assert json.loads(flows[0].response.content) == DITTO

    # With the fake gone, the same read replays offline from the HAR and emits the same record.
    replay = run_cli("debug", "read", "-c", image, *inputs, "--output-dir", tmp_path, "--run-id", ids["replay"],
                     "--http-replay", artifacts / "http_dump.har", "--timeout", "300")  # fmt: skip
    assert replay.returncode == 0, replay.stdout + replay.stderr
    for run_id, cache_hit in ((ids["capture"], False), (ids["replay"], True)):
        with duckdb.connect(str(tmp_path / run_id / "duck.db"), read_only=True) as con:
            records = [(s, json.loads(d)) for s, d in con.execute("SELECT stream, data FROM records").fetchall()]
            assert [(s, d["name"], d["id"], d["abilities"]) for s, d in records] == [
                ("pokemon", "ditto", 132, DITTO["abilities"])
            ]
            rows = con.execute("SELECT method, url, status, cache_hit, error FROM http_flows ORDER BY seq").fetchall()
            assert rows == [("GET", "https://pokeapi.co/api/v2/pokemon/ditto", 200, cache_hit, None)]
        assert leftovers(docker_client, run_id) == []
