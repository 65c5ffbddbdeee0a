"""The runner's contract with the engine: inputs are copied in (so a remote engine works) and are
readable by an image that does not run as root."""

from __future__ import annotations

import contextlib
import io
import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import DEMO_DIR, leftovers, read_jsonl, run_cli

pytestmark = pytest.mark.docker

DOCKER_SOCKET = "/var/run/docker.sock"


class _ForwardToDockerSocket(socketserver.BaseRequestHandler):
    """Relays one TCP connection to the engine's unix socket, both ways."""

    def handle(self) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(DOCKER_SOCKET)

        def pump(source: socket.socket, target: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    target.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (source, target):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        back = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
        back.start()
        pump(self.request, upstream)
        back.join()
        upstream.close()


@pytest.fixture
def tcp_engine() -> Iterator[str]:
    """The engine reachable only as tcp://127.0.0.1:PORT, like a remote DOCKER_HOST."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ForwardToDockerSocket)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_remote_engine_over_tcp(demo_images, docker_client, tcp_engine, tmp_path):
    result = run_cli(
        "debug", "read", "-c", demo_images[0], "--config-path", DEMO_DIR / "config.json",
        "--catalog-path", DEMO_DIR / "configured_catalog.json", "--output-dir", tmp_path, "--run-id", "tcp",
        env={"DOCKER_HOST": tcp_engine},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    records = read_jsonl(tmp_path / "tcp" / "source-demo" / "read" / "1.0.0" / "airbyte_messages" / "records.jsonl")
    assert {r["record"]["stream"] for r in records} == {"customers", "orders", "events"}
    assert leftovers(docker_client, "tcp") == []


def test_inputs_readable_by_a_non_root_image(demo_images, docker_client, tmp_path):
    image = "live-tests/source-demo:1.0.0-nonroot"
    dockerfile = f"FROM {demo_images[0]}\nUSER 65534:65534\n".encode()
    docker_client.images.build(fileobj=io.BytesIO(dockerfile), tag=image, rm=True)
    try:
        result = run_cli(
            "debug", "read-with-state", "-c", image, "--config-path", DEMO_DIR / "config.json",
            "--catalog-path", DEMO_DIR / "configured_catalog.json", "--state-path", DEMO_DIR / "state.json",
            "--output-dir", tmp_path, "--run-id", "nonroot",
        )  # fmt: skip
    finally:
        docker_client.images.remove(image)
    assert result.returncode == 0, result.stderr
    messages = tmp_path / "nonroot" / "source-demo" / "read-with-state" / "1.0.0-nonroot" / "airbyte_messages"
    assert len(read_jsonl(messages / "records.jsonl")) > 0
    assert {s["state"]["stream"]["stream_descriptor"]["name"] for s in read_jsonl(messages / "states.jsonl")} >= {
        "customers"
    }
