"""Airbyte connector images packaged from PyPI wheels, like Airbyte's own images."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from pathlib import Path

import docker

from live_tests.images.build import RECIPE_LABEL, Recipe, ensure_built, local_image, log, sha256
from live_tests.images.wheels import WheelSet, copy_wheels, download_wheels

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


def connector_name_for_package(package: str) -> str:
    """`airbyte-source-faker` -> `source-faker`: the connector's name and its console script."""
    return package.removeprefix("airbyte-")


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
    existing = local_image(client, tag)
    if existing is not None and RECIPE_LABEL not in (existing.labels or {}):
        log.info("%s exists and was not built by live-tests: using it as it is", tag)
        return tag
    wheels = WheelSet(package, version, tuple(overrides))
    # The wheels follow from the requirements, so the recipe is known before downloading them.
    recipe = Recipe(tag, base, sha256(dockerfile.encode()), hashed={"WHEELS": wheels.recipe()})

    def write_context(context: Path) -> None:
        (context / "Dockerfile").write_text(dockerfile)
        copy_wheels(download_wheels(wheels), context / "wheels")

    return ensure_built(client, recipe, write_context)
