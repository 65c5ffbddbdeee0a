"""The one way live-tests builds an image: from a recipe whose hash labels the image.

A recipe is what an image is made of (build context, build args, base image id). An image that
is already on the engine with the same recipe hash is reused instead of rebuilt; a rebuilt one
takes the tag and the old image is dropped. Builds get no network: nothing is fetched inside one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.images import Image

log = logging.getLogger("live_tests.images")

# Label holding the recipe hash of an image live-tests built.
RECIPE_LABEL = "live-tests.recipe-hash"


class ImageBuildError(Exception):
    """An image could not be made; the message (one line) says why and what to do."""


@dataclass(frozen=True)
class Recipe:
    """What one image is made of; its hash decides whether an image under `tag` can be reused."""

    tag: str
    base: str  # the image to build FROM, passed as the BASE_IMAGE build arg
    # Hash of the build context's files, or of what determines them (a Dockerfile, a wheel recipe).
    files_hash: str
    buildargs: Mapping[str, str] = field(default_factory=dict)
    # Hashed like build args, not passed to the build (e.g. the recipe of the wheels in the context).
    hashed: Mapping[str, str] = field(default_factory=dict)
    dockerfile: str = "Dockerfile"

    def hash(self, client: docker.DockerClient) -> str:
        base_image = local_image(client, self.base)
        if base_image is None:
            raise ImageBuildError(f"base image {self.base} is not in the engine; get it with ensure_base_image() first")
        args = {**self.buildargs, **self.hashed}
        parts = [self.files_hash, self.base, base_image.id, *(f"{key}={args[key]}" for key in sorted(args))]
        return sha256("\n".join(parts).encode())


def ensure_built(client: docker.DockerClient, recipe: Recipe, write_context: Callable[[Path], None]) -> str:
    """The recipe's image: reused when its recipe hash matches, else built from the context that
    `write_context` writes into an empty folder (called only when a build is needed)."""
    recipe_hash = recipe.hash(client)
    existing = local_image(client, recipe.tag)
    if existing is not None and (existing.labels or {}).get(RECIPE_LABEL) == recipe_hash:
        log.info("%s is up to date", recipe.tag)
        return recipe.tag
    with tempfile.TemporaryDirectory(prefix="live-tests-build-") as tmp:
        context = Path(tmp)
        write_context(context)
        _build(client, context, recipe, recipe_hash, existing)
    return recipe.tag


def _build(
    client: docker.DockerClient, context: Path, recipe: Recipe, recipe_hash: str, previous: Image | None
) -> None:
    started = time.monotonic()
    log.info("building %s", recipe.tag)
    try:
        client.images.build(
            path=str(context),
            dockerfile=recipe.dockerfile,
            tag=recipe.tag,
            buildargs={"BASE_IMAGE": recipe.base, **recipe.buildargs},
            labels={RECIPE_LABEL: recipe_hash},
            rm=True,
            forcerm=True,
            network_mode="none",
        )
    except docker.errors.BuildError as exc:
        error = exc.msg.strip()
        raise ImageBuildError(f"building {recipe.tag} failed: {error} | {_log_tail(exc.build_log, error)}") from None
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"building {recipe.tag} failed: {exc.explanation or exc}") from None
    log.info("built %s in %.1fs", recipe.tag, time.monotonic() - started)
    if previous is not None:
        # The tag moved to the new image: drop the old one unless something still uses it.
        remove_quietly(client, previous.id)


def split_reference(reference: str) -> tuple[str, str]:
    """`repo[:tag]` -> (repo, tag); a `:` inside a registry host:port is not a tag."""
    repository, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        return reference, "latest"
    return repository, tag


def local_image(client: docker.DockerClient, reference: str) -> Image | None:
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_tree(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _log_tail(build_log: Iterable[dict[str, Any]], error: str, lines: int = 3) -> str:
    """The last lines the build printed, without the builder's own bookkeeping and the error."""
    text: list[str] = []
    for entry in build_log:
        for line in (entry.get("stream") or "").splitlines():
            line = line.strip()
            if line and not line.startswith(("--->", "Removing intermediate container")) and line != error:
                text.append(line)
    return " | ".join(text[-lines:])[-600:] or "(no build output)"


def remove_quietly(client: docker.DockerClient, image: str) -> None:
    with contextlib.suppress(docker.errors.DockerException):
        client.images.remove(image)
