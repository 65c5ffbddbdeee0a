"""The demo in HTTP mode for tests: the fake shop API in a container, and the map_remote that sends the demo's
`https://api.demo-shop.example` there (the same recipe as scripts/demo_http.sh)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import docker

from live_tests.docker_engine import labels
from live_tests.images import FAKE_API_IMAGE, FAKE_API_PORT
from tests.conftest import DEMO_DIR

HTTP_CONFIG = DEMO_DIR / "config_http.json"
CATALOG = DEMO_DIR / "configured_catalog.json"
STATE = DEMO_DIR / "state.json"


def map_remote(port: int | str) -> str:
    return rf"map_remote=|https://api\.demo-shop\.example|http://host.docker.internal:{port}"


@contextmanager
def fake_api(client: docker.DockerClient) -> Iterator[int]:
    """The fake API on a published host port, for the duration of the block."""
    container = client.containers.run(
        FAKE_API_IMAGE, ports={f"{FAKE_API_PORT}/tcp": None}, labels=labels("test-fake-api", "upstream"), detach=True
    )
    try:
        deadline = time.monotonic() + 30
        while b"listening" not in container.logs():
            assert time.monotonic() < deadline, container.logs()
            time.sleep(0.1)
        container.reload()
        yield int(container.attrs["NetworkSettings"]["Ports"][f"{FAKE_API_PORT}/tcp"][0]["HostPort"])
    finally:
        container.remove(force=True)
