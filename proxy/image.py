"""The proxy image: mitmproxy on top of the base image, built locally from wheels fetched on the host.

No registry is reachable from a build, so `pip download` fetches manylinux wheels for the
engine's architecture into a cache (`~/.cache/live-tests/wheels/mitmproxy-<version>/`), and the
build context gets a copy. Any other image that has `mitmdump` on its PATH (e.g. the official
`mitmproxy/mitmproxy`) can be used instead; it is pulled when it is not on the engine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

import docker
from docker.errors import BuildError, DockerException, ImageNotFound

from live_tests.docker_engine import EngineError, ensure_image
from live_tests.proxy.settings import DEFAULT_PROXY_IMAGE, MITMPROXY_VERSION

DEFAULT_WHEELS_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "live-tests" / "wheels"
# mitmproxy 11.0.2 pins pyperclip 1.9.0, published only as an sdist. It is pure Python, so a
# wheel built on the host installs anywhere, and lets the rest be fetched binary-only.
_SDIST_ONLY = ("pyperclip==1.9.0",)
_MANYLINUX = ("manylinux2014", "manylinux_2_17", "manylinux_2_28", "manylinux_2_34")
_PYTHON_VERSION = "3.11"  # the base image's python3 (Debian bookworm)
RECIPE_LABEL = "live-tests.recipe-hash"


def fetch_wheels(architecture: str = "x86_64", cache_dir: Path = DEFAULT_WHEELS_CACHE) -> Path:
    """The folder holding mitmproxy's wheels and all their dependencies; fetched once."""
    target = cache_dir / f"mitmproxy-{MITMPROXY_VERSION}-{architecture}"
    done = target / ".complete"
    if done.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    platforms = [arg for tag in _MANYLINUX for arg in ("--platform", f"{tag}_{architecture}")]
    _run([*pip, "wheel", "--no-deps", "-w", str(target), *_SDIST_ONLY])
    _run(
        [
            *pip,
            "download",
            f"mitmproxy=={MITMPROXY_VERSION}",
            "--only-binary=:all:",
            "--python-version",
            _PYTHON_VERSION,
            "--implementation",
            "cp",
            *platforms,
            "--find-links",
            str(target),
            "-d",
            str(target),
        ]
    )
    done.touch()
    return target


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
        raise EngineError(f"could not fetch the proxy image's wheels ({' '.join(args[3:5])}): {last}")


def proxy_image_recipe(client: docker.DockerClient, base_image: str) -> str:
    """What the default image is made of: an image with another recipe is rebuilt."""
    try:
        base_id = client.images.get(base_image).id
    except ImageNotFound:
        raise EngineError(f"base image {base_image} is not on the engine - build or load it first") from None
    dockerfile = (resources.files("live_tests.proxy") / "Dockerfile").read_bytes()
    return hashlib.sha256(b"\0".join([dockerfile, MITMPROXY_VERSION.encode(), base_id.encode()])).hexdigest()


def build_proxy_image(
    client: docker.DockerClient,
    base_image: str,
    tag: str = DEFAULT_PROXY_IMAGE,
    wheels_cache: Path = DEFAULT_WHEELS_CACHE,
) -> None:
    recipe = proxy_image_recipe(client, base_image)
    architecture = client.info().get("Architecture", "x86_64")
    wheels = fetch_wheels(architecture, wheels_cache)
    with tempfile.TemporaryDirectory(prefix="live-tests-proxy-build-") as context:
        dockerfile = resources.files("live_tests.proxy") / "Dockerfile"
        Path(context, "Dockerfile").write_bytes(dockerfile.read_bytes())
        shutil.copytree(wheels, Path(context, "wheels"), ignore=shutil.ignore_patterns(".complete"))
        try:
            client.images.build(
                path=context,
                tag=tag,
                buildargs={"BASE_IMAGE": base_image, "MITMPROXY_VERSION": MITMPROXY_VERSION},
                labels={RECIPE_LABEL: recipe},
                rm=True,
                forcerm=True,
                network_mode="none",
            )
        except BuildError as exc:
            lines = [str(chunk.get("stream") or chunk.get("error") or "").strip() for chunk in exc.build_log]
            tail = " | ".join(line for line in lines if line)[-400:]
            raise EngineError(f"building the proxy image {tag} failed: {tail}") from None
        except DockerException as exc:
            raise EngineError(f"building the proxy image {tag} failed: {str(exc).splitlines()[0][:300]}") from None


def ensure_proxy_image(client: docker.DockerClient, image: str, base_image: str) -> None:
    """Make `image` available. The default one is built (again when its recipe changed); any
    other is used when local, else pulled."""
    if image != DEFAULT_PROXY_IMAGE:
        ensure_image(client, image)
        return
    try:
        existing = client.images.get(image).labels or {}
    except ImageNotFound:
        existing = {}
    if existing.get(RECIPE_LABEL) != proxy_image_recipe(client, base_image):
        build_proxy_image(client, base_image, image)
