"""Shared fixtures: a real Docker engine, the demo images, and running the CLI as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from live_tests.docker_engine import LABEL_MANAGED, LABEL_ROLE, LABEL_RUN_ID, EngineError, connect

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "demo"
DEMO_V1 = "live-tests/source-demo:1.0.0"
DEMO_V2 = "live-tests/source-demo:2.0.0"
FLOOD_IMAGE = "live-tests-test/flood-source:1"


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    """The engine. Without one, Docker tests fail in CI (CI=true) and are skipped elsewhere."""
    try:
        return connect()
    except EngineError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Docker engine required in CI: {exc}")
        pytest.skip(f"no Docker engine: {exc}")


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> str:
    from live_tests.images import ensure_base_image

    return ensure_base_image(docker_client)


@pytest.fixture(scope="session")
def demo_images(docker_client: docker.DockerClient, base_image: str) -> tuple[str, str]:
    from live_tests.images import build_demo_images

    build_demo_images(docker_client, base_image)
    return DEMO_V1, DEMO_V2


@pytest.fixture(scope="session")
def flood_image(docker_client: docker.DockerClient, base_image: str) -> str:
    """The benchmark's connector: prints N records (config `records`) in 3 MB writes, as fast as it can."""
    docker_client.images.build(
        path=str(REPO / "bench" / "synthetic_connector"),
        tag=FLOOD_IMAGE,
        buildargs={"BASE_IMAGE": base_image},
        rm=True,
        forcerm=True,
    )
    return FLOOD_IMAGE


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 600) -> CliRun:
    """`live-tests ARGS` in a subprocess, exactly as a user runs it."""
    process = subprocess.run(
        [sys.executable, "-m", "live_tests.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    return CliRun(process.returncode, process.stdout, process.stderr)


def leftovers(client: docker.DockerClient, run_id: str | None = None, role: str | None = None) -> list[str]:
    """Containers, networks and volumes live-tests labelled (for one run, of one role) that still exist."""
    label = [f"{LABEL_RUN_ID}={run_id}" if run_id else f"{LABEL_MANAGED}=true"]
    if role:
        label.append(f"{LABEL_ROLE}={role}")
    found = [f"container {c.name}" for c in client.containers.list(all=True, filters={"label": label})]
    found += [f"network {n.name}" for n in client.networks.list(filters={"label": label})]
    found += [f"volume {v.name}" for v in client.volumes.list(filters={"label": label})]
    return found


def read_jsonl(path: Path) -> list[dict]:
    with path.open("rb") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture
def demo_config(tmp_path: Path) -> Iterator[callable]:
    """Write a demo config with overrides (test knobs) and return its path."""

    def write(**overrides: object) -> Path:
        config = json.loads((DEMO_DIR / "config.json").read_text())
        config.update(overrides)
        path = tmp_path / f"config-{len(list(tmp_path.glob('config-*')))}.json"
        path.write_text(json.dumps(config))
        return path

    yield write
