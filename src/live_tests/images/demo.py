"""The demo connector (both versions) and the fake shop API it reads, built from the demo/ folder."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import docker

import live_tests.demo
from live_tests.images.build import Recipe, ensure_built, hash_tree

DEMO_CONNECTOR_REPOSITORY = "live-tests/source-demo"
DEMO_VERSIONS = ("1.0.0", "2.0.0")
FAKE_API_IMAGE = "live-tests/fake-api:latest"
FAKE_API_PORT = 8080


def demo_connector_image(version: str) -> str:
    return f"{DEMO_CONNECTOR_REPOSITORY}:{version}"


def build_demo_images(client: docker.DockerClient, base: str) -> list[str]:
    """Build the demo connector (every version in DEMO_VERSIONS) and the fake shop API; return the tags."""
    source = Path(live_tests.demo.__file__).parent
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
        files_hash = hash_tree(context)
        recipes = [
            Recipe(demo_connector_image(version), base, f"{files_hash}:Dockerfile", {"DEMO_VERSION": version})
            for version in DEMO_VERSIONS
        ]
        api = "fake_api.Dockerfile"
        recipes.append(Recipe(FAKE_API_IMAGE, base, f"{files_hash}:{api}", dockerfile=api))

        def write_context(target: Path) -> None:
            shutil.copytree(context, target, dirs_exist_ok=True)

        return [ensure_built(client, recipe, write_context) for recipe in recipes]
