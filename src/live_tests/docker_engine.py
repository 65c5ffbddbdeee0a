"""Talking to the Docker engine: connecting, finding images, and cleaning up what live-tests made.

Everything live-tests creates carries the `live-tests.run-id` label, so leftovers of a killed
process can be found and removed (`live-tests cleanup`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import docker
from docker.errors import DockerException, ImageNotFound, NotFound

LABEL_MANAGED = "live-tests.managed"
LABEL_RUN_ID = "live-tests.run-id"
LABEL_ROLE = "live-tests.role"
LABEL_EXECUTION = "live-tests.execution"

# API calls other than the output stream (which has no timeout; the runner's watchdog bounds it).
API_TIMEOUT_S = 120


class EngineError(Exception):
    """The Docker engine or an image is not usable; the message says what to do."""


def labels(run_id: str, role: str, **extra: str) -> dict[str, str]:
    return {LABEL_MANAGED: "true", LABEL_RUN_ID: run_id, LABEL_ROLE: role, **extra}


def connect() -> docker.DockerClient:
    """A client for the engine named by DOCKER_HOST (or the local socket), checked to answer."""
    host = os.environ.get("DOCKER_HOST", "the local socket (/var/run/docker.sock)")
    try:
        client = docker.from_env(timeout=API_TIMEOUT_S)
        client.ping()
    except DockerException as exc:
        reason = str(exc).splitlines()[0][:200]
        raise EngineError(
            f"cannot reach the Docker engine at {host}: {reason} - start dockerd or set DOCKER_HOST"
        ) from None
    return client


def ensure_image(client: docker.DockerClient, reference: str) -> None:
    """Make sure the image is on the engine: use the local one, else try to pull it."""
    try:
        client.images.get(reference)
        return
    except ImageNotFound:
        pass
    try:
        client.images.pull(reference)
    except DockerException as exc:
        reason = str(exc).splitlines()[0][:200]
        raise EngineError(
            f"image {reference} is not on the engine and could not be pulled ({reason}) - "
            "build it locally or check the name and tag"
        ) from None


@dataclass
class Removed:
    containers: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.containers) + len(self.networks) + len(self.volumes)


def remove_leftovers(client: docker.DockerClient, run_id: str | None = None) -> Removed:
    """Remove containers, then networks and volumes, labelled by live-tests (of one run, or all)."""
    label = f"{LABEL_RUN_ID}={run_id}" if run_id else f"{LABEL_MANAGED}=true"
    removed = Removed()
    for container in client.containers.list(all=True, filters={"label": label}):
        try:
            container.remove(force=True, v=True)
            removed.containers.append(container.name)
        except NotFound:
            pass
    for network in client.networks.list(filters={"label": label}):
        try:
            network.remove()
            removed.networks.append(network.name)
        except NotFound:
            pass
    for volume in client.volumes.list(filters={"label": label}):
        try:
            volume.remove(force=True)
            removed.volumes.append(volume.name)
        except NotFound:
            pass
    return removed
