"""The default proxy image: mitmproxy on top of the base image, from wheels fetched on the host.

Its recipe is the Dockerfile in proxy/, the mitmproxy version and its wheels. Any other image that
has `mitmdump` on its PATH (e.g. the official `mitmproxy/mitmproxy`) can be used instead; it is
pulled when it is not on the engine.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import docker

from live_tests.docker_engine import ensure_image
from live_tests.images.build import Recipe, ensure_built, sha256
from live_tests.images.wheels import WheelSet, copy_wheels, download_wheels
from live_tests.proxy.settings import DEFAULT_PROXY_IMAGE, MITMPROXY_VERSION

# mitmproxy 11.0.2 pins pyperclip 1.9.0, published only as an sdist (pure Python).
_PURE_SDISTS = ("pyperclip==1.9.0",)


def proxy_wheels(architecture: str = "x86_64") -> WheelSet:
    return WheelSet("mitmproxy", MITMPROXY_VERSION, pure_sdists=_PURE_SDISTS, architecture=architecture)


def ensure_proxy_image(client: docker.DockerClient, image: str, base_image: str) -> str:
    """Make `image` available. The default one is built (again when its recipe changed); any
    other is used when local, else pulled."""
    if image != DEFAULT_PROXY_IMAGE:
        ensure_image(client, image)
        return image
    wheels = proxy_wheels(client.info().get("Architecture", "x86_64"))
    dockerfile = (resources.files("live_tests.proxy") / "Dockerfile").read_bytes()
    recipe = Recipe(
        image,
        base_image,
        sha256(dockerfile),
        buildargs={"MITMPROXY_VERSION": MITMPROXY_VERSION},
        hashed={"WHEELS": wheels.recipe()},
    )

    def write_context(context: Path) -> None:
        (context / "Dockerfile").write_bytes(dockerfile)
        copy_wheels(download_wheels(wheels), context / "wheels")

    return ensure_built(client, recipe, write_context)
