"""The base image every live-tests image is built FROM: a setting, else a local Debian base.

LIVE_TESTS_BASE_IMAGE (default python:3.11-slim) is used when it is local or can be pulled;
otherwise a Debian bookworm minbase with python3 and pip is made with mmdebstrap and imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests.exceptions

from live_tests.images.build import ImageBuildError, local_image, log, remove_quietly, split_reference

DEFAULT_BASE_IMAGE = "python:3.11-slim"
LOCAL_BASE_IMAGE = "live-tests-base:bookworm"
BASE_IMAGE_ENV = "LIVE_TESTS_BASE_IMAGE"

MMDEBSTRAP_ARGS = ("--variant=minbase", "--include=python3,python3-pip,ca-certificates", "bookworm", "-")
# What `docker import` cannot take from a rootfs tarball: the usual PATH and a UTF-8 locale.
LOCAL_BASE_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8")
_CHUNK = 1 << 20


def base_image_setting() -> str:
    return os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE


def ensure_base_image(client: docker.DockerClient, base: str | None = None) -> str:
    """The image to build FROM: `base` (default: the setting) if it is local or can be pulled,
    else the local Debian base, built with mmdebstrap when it is missing."""
    wanted = base or base_image_setting()
    if local_image(client, wanted) is not None:
        return wanted
    repository, tag = split_reference(wanted)
    try:
        client.images.pull(repository, tag=tag)
        return wanted
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        reason = str(exc).strip().splitlines()[-1:] or [type(exc).__name__]
        log.info("base image %s is not local and cannot be pulled (%s)", wanted, reason[0][:200])
    if local_image(client, LOCAL_BASE_IMAGE) is not None:
        log.info("using the local base image %s instead of %s", LOCAL_BASE_IMAGE, wanted)
        return LOCAL_BASE_IMAGE
    return build_local_base_image(client)


def build_local_base_image(client: docker.DockerClient, tag: str = LOCAL_BASE_IMAGE) -> str:
    """Debian bookworm minbase + python3 + pip, made by mmdebstrap and streamed into the engine."""
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise ImageBuildError(
            f"no base image: {base_image_setting()} cannot be pulled and {tag} is missing; "
            f"run `apt-get install mmdebstrap` (live-tests then builds {tag}) "
            f"or set {BASE_IMAGE_ENV} to a local image that has python3.11 and pip"
        )
    log.info("building %s with mmdebstrap (takes a few minutes)", tag)
    started = time.monotonic()
    repository, image_tag = split_reference(tag)
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen([mmdebstrap, *MMDEBSTRAP_ARGS], stdout=subprocess.PIPE, stderr=stderr)
        assert process.stdout is not None
        try:
            # The tarball only starts once the rootfs is ready: open the upload then, not before.
            first = process.stdout.read(_CHUNK)
            if first:
                client.api.import_image(
                    src=_chunks(first, process.stdout),
                    repository=repository,
                    tag=image_tag,
                    changes=list(LOCAL_BASE_CHANGES),
                    stream_src=True,
                )
        except BaseException:
            process.kill()
            raise
        finally:
            returncode = process.wait()
        if returncode != 0 or not first:
            remove_quietly(client, tag)
            raise ImageBuildError(f"mmdebstrap failed (exit {returncode}): {_tail(stderr)}")
    if local_image(client, tag) is None:
        raise ImageBuildError(f"importing the mmdebstrap rootfs as {tag} failed: the engine has no such image")
    log.info("built %s in %.0fs", tag, time.monotonic() - started)
    return tag


def _chunks(first: bytes, stream: Any) -> Iterator[bytes]:
    yield first
    while chunk := stream.read(_CHUNK):
        yield chunk


def _tail(stream: Any, lines: int = 3) -> str:
    stream.seek(0)
    text = stream.read().decode("utf-8", "replace").strip().splitlines()
    return " | ".join(text[-lines:]) or "(no output)"
