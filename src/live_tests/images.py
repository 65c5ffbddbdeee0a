"""Build the images live-tests runs: a Python base image, the demo connector and fake shop API,
and Airbyte connectors packaged from PyPI wheels.

Every build is FROM a base image given as a setting (LIVE_TESTS_BASE_IMAGE), and is labelled with
a hash of its recipe (build context, build args, base image id), so an image that is already
there with the same recipe is reused instead of rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.images import Image

import live_tests.demo

log = logging.getLogger(__name__)

DEFAULT_BASE_IMAGE = "python:3.11-slim"
LOCAL_BASE_IMAGE = "live-tests-base:bookworm"
BASE_IMAGE_ENV = "LIVE_TESTS_BASE_IMAGE"
# Label holding the recipe hash of an image live-tests built.
RECIPE_LABEL = "live-tests.recipe-hash"

DEMO_CONNECTOR_REPOSITORY = "live-tests/source-demo"
DEMO_VERSIONS = ("1.0.0", "2.0.0")
FAKE_API_IMAGE = "live-tests/fake-api:latest"
FAKE_API_PORT = 8080

MMDEBSTRAP_ARGS = ("--variant=minbase", "--include=python3,python3-pip,ca-certificates", "bookworm", "-")
# What `docker import` cannot take from a rootfs tarball: the usual PATH and a UTF-8 locale.
LOCAL_BASE_CHANGES = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8")

# Wheels must run on both bases: CPython 3.11, glibc <= 2.36 (Debian bookworm), x86_64.
WHEEL_PYTHON_VERSION = "3.11"
MAX_GLIBC = (2, 36)
WHEEL_PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(MAX_GLIBC[1], 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
PIP_TIMEOUT_S = 900
_CHUNK = 1 << 20

_PYPI_DOCKERFILE = """\
FROM {base}
WORKDIR /airbyte/integration_code
COPY wheels /tmp/wheels
# Debian's python3 is "externally managed": this image is ours, so pip may install into it
# (read by pip >= 23.0.1, harmless on python:3.11-slim). ARGs: set for RUN, not kept in the image.
ARG PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
RUN {install} && rm -rf /tmp/wheels
ENV AIRBYTE_ENTRYPOINT={script}
ENTRYPOINT [{script_json}]
LABEL io.airbyte.name={name} io.airbyte.version={version}
"""


class ImageBuildError(Exception):
    """An image could not be made; the message (one line) says why and what to do."""


# ---------------------------------------------------------------- base image


def base_image_setting() -> str:
    return os.environ.get(BASE_IMAGE_ENV) or DEFAULT_BASE_IMAGE


def ensure_base_image(client: docker.DockerClient, base: str | None = None) -> str:
    """The image to build FROM: `base` (default: the setting) if it is local or can be pulled,
    else the local Debian base, built with mmdebstrap when it is missing."""
    wanted = base or base_image_setting()
    if _local_image(client, wanted) is not None:
        return wanted
    repository, tag = split_reference(wanted)
    try:
        client.images.pull(repository, tag=tag)
        return wanted
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        reason = str(exc).strip().splitlines()[-1:] or [type(exc).__name__]
        log.info("base image %s is not local and cannot be pulled (%s)", wanted, reason[0][:200])
    if _local_image(client, LOCAL_BASE_IMAGE) is not None:
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
            _remove_quietly(client, tag)
            raise ImageBuildError(f"mmdebstrap failed (exit {returncode}): {_tail(stderr)}")
    if _local_image(client, tag) is None:
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


# ---------------------------------------------------------------- demo images


def demo_connector_image(version: str) -> str:
    return f"{DEMO_CONNECTOR_REPOSITORY}:{version}"


def build_demo_images(client: docker.DockerClient, base: str) -> list[str]:
    """Build the demo connector (every version in DEMO_VERSIONS) and the fake shop API; return the tags."""
    source = Path(live_tests.demo.__file__).parent
    tags: list[str] = []
    with tempfile.TemporaryDirectory(prefix="live-tests-demo-") as tmp:
        context = Path(tmp)
        # The demo modules import each other as `live_tests.demo.*`: keep that package path.
        package = context / "live_tests" / "demo"
        package.mkdir(parents=True)
        (context / "live_tests" / "__init__.py").write_text("")
        for module in sorted(source.glob("*.py")):
            shutil.copyfile(module, package / module.name)
        for dockerfile in ("Dockerfile", "fake_api.Dockerfile"):
            shutil.copyfile(source / dockerfile, context / dockerfile)
        files_hash = _hash_tree(context)
        for version in DEMO_VERSIONS:
            tags.append(
                _build(client, context, demo_connector_image(version), base, files_hash, {"DEMO_VERSION": version})
            )
        tags.append(_build(client, context, FAKE_API_IMAGE, base, files_hash, {}, dockerfile="fake_api.Dockerfile"))
    return tags


# ---------------------------------------------------------------- PyPI connector images


def connector_name_for_package(package: str) -> str:
    """`airbyte-source-faker` -> `source-faker`: the connector's name and its console script."""
    return package.removeprefix("airbyte-")


def wheel_cache_dir() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "live-tests" / "wheels"


def download_wheels(package: str, version: str, overrides: Sequence[str] = (), cache_dir: Path | None = None) -> Path:
    """Wheels of package==version and its dependencies for the images' platform, fetched once
    with pip on the host; the directory is kept and reused by later builds. With `overrides`,
    the package comes without its dependencies and the overrides (with theirs) replace them."""
    steps = _fetch_steps(package, version, overrides)
    cache = (cache_dir or wheel_cache_dir()) / f"{package}-{version}-{_wheel_recipe(steps)[:12]}"
    if (cache / ".complete").exists():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    partial = Path(tempfile.mkdtemp(prefix=f".{package}-{version}-", dir=cache.parent))
    try:
        for requirements, with_deps in steps:
            error = _pip(_pip_download_command(requirements, with_deps, partial))
            if error and _host_matches_images():
                # Some dependency has no wheel (only an sdist): let pip build it here, which is
                # only right because this host is the images' platform (CPython 3.11, Linux x86_64).
                log.info("not every dependency has a wheel (%s); building the missing ones", error[:200])
                error = _pip(_pip_wheel_command(requirements, with_deps, partial))
            if error:
                raise ImageBuildError(
                    f"pip could not get wheels for {' '.join(requirements)}: {error} "
                    "(is that version on PyPI, with wheels for CPython 3.11 on Linux x86_64?)"
                )
        (partial / ".complete").write_text(f"{package}=={version} {' '.join(overrides)}\n")
        # OSError: another build finished the same download first.
        with contextlib.suppress(OSError):
            partial.rename(cache)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("got %s==%s wheels in %.0fs", package, version, time.monotonic() - started)
    return cache


def _fetch_steps(package: str, version: str, overrides: Sequence[str]) -> list[tuple[list[str], bool]]:
    """(requirements, with their dependencies?) to fetch, in order."""
    if not overrides:
        return [([f"{package}=={version}"], True)]
    return [([f"{package}=={version}"], False), (list(overrides), True)]


def _wheel_recipe(steps: list[tuple[list[str], bool]]) -> str:
    """Hash of how the wheels are fetched: new pip flags mean new wheels, not stale ones."""
    dest = Path("DEST")
    commands = [
        arg
        for requirements, with_deps in steps
        for command in (_pip_download_command, _pip_wheel_command)
        for arg in command(requirements, with_deps, dest)
    ]
    return _sha256("\0".join(arg for arg in commands if arg != sys.executable).encode())


def _pip_download_command(requirements: list[str], with_deps: bool, dest: Path) -> list[str]:
    return [
        sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
        "--only-binary=:all:", "--implementation", "cp", "--python-version", WHEEL_PYTHON_VERSION,
        *(arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)),
        *([] if with_deps else ["--no-deps"]), "--dest", str(dest), *requirements,
    ]  # fmt: skip


def _pip_wheel_command(requirements: list[str], with_deps: bool, dest: Path) -> list[str]:
    return [
        sys.executable, "-m", "pip", "wheel", "--disable-pip-version-check", "--quiet",
        *([] if with_deps else ["--no-deps"]), "--wheel-dir", str(dest), *requirements,
    ]  # fmt: skip


def _host_matches_images() -> bool:
    glibc = platform.libc_ver()
    return (
        sys.implementation.name == "cpython"
        and f"{sys.version_info.major}.{sys.version_info.minor}" == WHEEL_PYTHON_VERSION
        and sys.platform == "linux"
        and platform.machine() == "x86_64"
        and glibc[0] == "glibc"
        and tuple(int(part) for part in glibc[1].split(".")[:2]) <= MAX_GLIBC
    )


def _pip(command: list[str]) -> str | None:
    """Run pip; None on success, else its last error lines."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"pip took over {PIP_TIMEOUT_S}s"
    if result.returncode == 0:
        return None
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("ERROR")] or lines[-2:]
    return " ".join(errors[-2:])[:400]


def build_pypi_connector_image(
    client: docker.DockerClient,
    package: str,
    version: str,
    base: str,
    tag: str | None = None,
    overrides: Sequence[str] = (),
) -> str:
    """Build an image running the PyPI connector `package`==`version`, like Airbyte's own images
    (ENTRYPOINT is the connector's console script). Default tag: `airbyte/<connector>:<version>`.
    `overrides` (e.g. `("airbyte-cdk==1.8.0",)`) replace the package's pinned dependencies: the
    package is installed without its dependencies, then the overrides with theirs.
    An image under the tag that live-tests did not build (e.g. a pulled one) is used as it is."""
    name = connector_name_for_package(package)
    tag = tag or f"airbyte/{name}:{version}"
    pip_install = "python3 -m pip install --no-cache-dir --no-index --find-links /tmp/wheels"
    requirement = shlex.quote(f"{package}=={version}")
    if overrides:
        install = f"{pip_install} {' '.join(map(shlex.quote, overrides))} && {pip_install} --no-deps {requirement}"
    else:
        install = f"{pip_install} {requirement}"
    dockerfile = _PYPI_DOCKERFILE.format(
        base=base, install=install, script=name, script_json=json.dumps(name), name=f"airbyte/{name}", version=version
    )
    existing = _local_image(client, tag)
    if existing is not None and RECIPE_LABEL not in (existing.labels or {}):
        log.info("%s exists and was not built by live-tests: using it as it is", tag)
        return tag
    # The wheels follow from the requirements, so the recipe is known before downloading them.
    wheel_recipe = _wheel_recipe(_fetch_steps(package, version, overrides))
    recipe = _recipe_hash(client, base, _sha256(dockerfile.encode()), {"WHEELS": wheel_recipe})
    if existing is not None and existing.labels.get(RECIPE_LABEL) == recipe:
        log.info("%s is up to date", tag)
        return tag
    wheels = download_wheels(package, version, overrides)
    with tempfile.TemporaryDirectory(prefix="live-tests-pypi-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(dockerfile)
        (context / "wheels").mkdir()
        for wheel in wheels.glob("*.whl"):
            _link_or_copy(wheel, context / "wheels" / wheel.name)
        return _build_with_recipe(client, context, tag, recipe, {}, "Dockerfile", existing)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem
        shutil.copyfile(source, target)


# ---------------------------------------------------------------- building


def split_reference(reference: str) -> tuple[str, str]:
    """`repo[:tag]` -> (repo, tag); a `:` inside a registry host:port is not a tag."""
    repository, sep, tag = reference.rpartition(":")
    if not sep or "/" in tag:
        return reference, "latest"
    return repository, tag


def _local_image(client: docker.DockerClient, reference: str) -> Image | None:
    try:
        return client.images.get(reference)
    except docker.errors.ImageNotFound:
        return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hash_tree(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _recipe_hash(client: docker.DockerClient, base: str, files_hash: str, buildargs: Mapping[str, str]) -> str:
    base_image = _local_image(client, base)
    if base_image is None:
        raise ImageBuildError(f"base image {base} is not in the engine; get it with ensure_base_image() first")
    parts = [files_hash, base, base_image.id, *(f"{key}={buildargs[key]}" for key in sorted(buildargs))]
    return _sha256("\n".join(parts).encode())


def _build(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    base: str,
    files_hash: str,
    buildargs: Mapping[str, str],
    dockerfile: str = "Dockerfile",
) -> str:
    recipe = _recipe_hash(client, base, f"{files_hash}:{dockerfile}", buildargs)
    existing = _local_image(client, tag)
    if existing is not None and (existing.labels or {}).get(RECIPE_LABEL) == recipe:
        log.info("%s is up to date", tag)
        return tag
    return _build_with_recipe(client, context, tag, recipe, {"BASE_IMAGE": base, **buildargs}, dockerfile, existing)


def _build_with_recipe(
    client: docker.DockerClient,
    context: Path,
    tag: str,
    recipe: str,
    buildargs: Mapping[str, str],
    dockerfile: str,
    previous: Image | None,
) -> str:
    started = time.monotonic()
    log.info("building %s", tag)
    try:
        client.images.build(
            path=str(context),
            dockerfile=dockerfile,
            tag=tag,
            buildargs=dict(buildargs),
            labels={RECIPE_LABEL: recipe},
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as exc:
        error = exc.msg.strip()
        raise ImageBuildError(f"building {tag} failed: {error} | {_log_tail(exc.build_log, error)}") from None
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"building {tag} failed: {exc.explanation or exc}") from None
    log.info("built %s in %.1fs", tag, time.monotonic() - started)
    if previous is not None:
        # The tag moved to the new image: drop the old one unless something still uses it.
        _remove_quietly(client, previous.id)
    return tag


def _log_tail(build_log: Iterable[dict[str, Any]], error: str, lines: int = 3) -> str:
    """The last lines the build printed, without the builder's own bookkeeping and the error."""
    text: list[str] = []
    for entry in build_log:
        for line in (entry.get("stream") or "").splitlines():
            line = line.strip()
            if line and not line.startswith(("--->", "Removing intermediate container")) and line != error:
                text.append(line)
    return " | ".join(text[-lines:])[-600:] or "(no build output)"


def _remove_quietly(client: docker.DockerClient, image: str) -> None:
    with contextlib.suppress(docker.errors.DockerException):
        client.images.remove(image)
