"""Talking to the Docker engine: connecting, finding images, and cleaning up what live-tests made.

Everything live-tests creates carries the `live-tests.run-id` label, so leftovers of a killed
process can be found and removed (`live-tests cleanup`).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

LABEL_MANAGED = "live-tests.managed"
LABEL_RUN_ID = "live-tests.run-id"
LABEL_ROLE = "live-tests.role"
LABEL_EXECUTION = "live-tests.execution"
# host:pid of the live-tests process that made the object, so cleanup spares runs still going.
LABEL_OWNER = "live-tests.owner"
_OWNER = f"{socket.gethostname()}:{os.getpid()}"

# API calls other than the output stream (which has no timeout; the runner's watchdog bounds it).
API_TIMEOUT_S = 120


class EngineError(Exception):
    """The Docker engine or an image is not usable; the message says what to do."""


def labels(run_id: str, role: str, **extra: str) -> dict[str, str]:
    return {LABEL_MANAGED: "true", LABEL_RUN_ID: run_id, LABEL_ROLE: role, LABEL_OWNER: _OWNER, **extra}


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
    # Objects left alone: still used by a running live-tests process, or the engine refused.
    kept: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.containers) + len(self.networks) + len(self.volumes)


def _owner_running(object_labels: dict[str, str]) -> bool:
    """True when another live-tests process on this host that made the object is still alive."""
    host, _, pid = (object_labels.get(LABEL_OWNER) or "").partition(":")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(client: docker.DockerClient, run_id: str | None = None, force: bool = False) -> Removed:
    """Remove containers, then networks and volumes, labelled by live-tests (of one run, or all).

    Objects of a live-tests process that is still running are kept unless `force`.
    """
    label = f"{LABEL_RUN_ID}={run_id}" if run_id else f"{LABEL_MANAGED}=true"
    removed = Removed()
    # ignore_removed: a container may go (its run ending) between the listing and its inspection.
    containers = client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
    collections = (
        (removed.containers, containers, {"force": True, "v": True}),
        (removed.networks, client.networks.list(filters={"label": label}), {}),
        (removed.volumes, client.volumes.list(filters={"label": label}), {"force": True}),
    )
    for done, objects, options in collections:
        for obj in objects:
            if not force and _owner_running(obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels") or {}):
                removed.kept.append(f"{obj.name} (its live-tests process is still running)")
                continue
            try:
                obj.remove(**options)
                done.append(obj.name)
            except NotFound:
                pass
            except APIError as exc:
                removed.kept.append(f"{obj.name} ({(exc.explanation or str(exc)).splitlines()[0][:200]})")
    return removed
