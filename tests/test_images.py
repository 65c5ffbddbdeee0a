"""Image building against the real engine: base image, demo images, fake API, PyPI connectors."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

import live_tests.demo
from live_tests import images
from live_tests.images import ImageBuildError
from live_tests.proxy import DEFAULT_PROXY_IMAGE, MITMPROXY_VERSION
from tests.conftest import run_cli

DEMO_DIR = Path(live_tests.demo.__file__).parent
FAKER = "airbyte-source-faker"
FAKER_VERSIONS = ("6.2.38", "7.2.1")


# ---------------------------------------------------------------- no engine needed


def test_base_image_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(images.BASE_IMAGE_ENV, raising=False)
    assert images.base_image_setting() == "python:3.11-slim" == images.DEFAULT_BASE_IMAGE
    monkeypatch.setenv(images.BASE_IMAGE_ENV, "my/base:1")
    assert images.base_image_setting() == "my/base:1"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("python:3.11-slim", ("python", "3.11-slim")),
        ("live-tests-base:bookworm", ("live-tests-base", "bookworm")),
        ("airbyte/source-faker", ("airbyte/source-faker", "latest")),
        ("localhost:5000/base", ("localhost:5000/base", "latest")),
        ("localhost:5000/base:2", ("localhost:5000/base", "2")),
    ],
)
def test_split_reference(reference: str, expected: tuple[str, str]) -> None:
    assert images.split_reference(reference) == expected


def test_connector_name_for_package() -> None:
    assert images.connector_name_for_package("airbyte-source-faker") == "source-faker"
    assert images.connector_name_for_package("airbyte-source-pokeapi") == "source-pokeapi"
    assert images.connector_name_for_package("source-x") == "source-x"


def test_missing_mmdebstrap_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images.base.shutil, "which", lambda name: None)
    with pytest.raises(ImageBuildError) as error:
        images.build_local_base_image(docker.DockerClient(base_url="tcp://127.0.0.1:9", version="1.41"), "never:built")
    message = str(error.value)
    assert "\n" not in message
    assert "apt-get install mmdebstrap" in message and images.BASE_IMAGE_ENV in message


# ---------------------------------------------------------------- real engine


def run_image(client: docker.DockerClient, image: str, *command: str, mounts: dict[str, str] | None = None) -> bytes:
    """`docker run --rm IMAGE COMMAND` -> stdout; the container is removed whatever happens."""
    volumes = {host: {"bind": target, "mode": "ro"} for host, target in (mounts or {}).items()}
    return client.containers.run(image, list(command), volumes=volumes, remove=True, stdout=True, stderr=False)


def messages(stdout: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def of_type(found: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in found if m["type"] == kind]


def records(found: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
    return [m["record"]["data"] for m in of_type(found, "RECORD") if m["record"]["stream"] == stream]


@pytest.fixture(scope="session")
def demo_tags(docker_client: docker.DockerClient, base_image: str) -> list[str]:
    return images.build_demo_images(docker_client, base_image)


@pytest.mark.docker
def test_ensure_base_image_gives_a_python_3_11_image(docker_client: docker.DockerClient, base_image: str) -> None:
    output = run_image(docker_client, base_image, "python3", "-c", "import sys, ssl; print(sys.version_info[:2])")
    assert output.strip() == b"(3, 11)"


@pytest.mark.docker
def test_ensure_base_image_falls_back_to_the_local_base_when_the_setting_cannot_be_pulled(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    missing = f"live-tests-test/no-such-base:{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    assert images.ensure_base_image(docker_client, missing) == images.LOCAL_BASE_IMAGE
    assert time.monotonic() - started < 30
    # A base that is present is used as it is.
    assert images.ensure_base_image(docker_client, images.LOCAL_BASE_IMAGE) == images.LOCAL_BASE_IMAGE


@pytest.mark.docker
def test_the_proxy_image_is_one_more_recipe_built_once_and_reused(docker_client: docker.DockerClient) -> None:
    built = run_cli("images", "proxy")
    assert built.returncode == 0, built.stderr
    assert built.stdout.split() == [DEFAULT_PROXY_IMAGE]
    image = docker_client.images.get(DEFAULT_PROXY_IMAGE)
    assert len(image.labels[images.RECIPE_LABEL]) == 64
    started = time.monotonic()
    again = run_cli("images", "proxy")
    assert again.returncode == 0 and time.monotonic() - started < 15, "an up-to-date image must be reused"
    assert docker_client.images.get(DEFAULT_PROXY_IMAGE).id == image.id
    version = run_image(docker_client, DEFAULT_PROXY_IMAGE, "--version").decode()  # ENTRYPOINT: mitmdump
    assert f"Mitmproxy: {MITMPROXY_VERSION}" in version
    # Its wheels are in the one wheel cache, like a PyPI connector's.
    wheels = images.download_wheels(images.proxy_wheels(docker_client.info().get("Architecture", "x86_64")))
    assert wheels.parent == images.wheel_cache_dir() and any(wheels.glob(f"mitmproxy-{MITMPROXY_VERSION}-*.whl"))


@pytest.mark.docker
def test_demo_images_are_built_like_airbyte_images_and_reused(
    docker_client: docker.DockerClient, base_image: str, demo_tags: list[str]
) -> None:
    assert demo_tags == ["live-tests/source-demo:1.0.0", "live-tests/source-demo:2.0.0", "live-tests/fake-api:latest"]
    ids = [docker_client.images.get(tag).id for tag in demo_tags]
    started = time.monotonic()
    assert images.build_demo_images(docker_client, base_image) == demo_tags
    assert time.monotonic() - started < 5, "an up-to-date image must be reused, not rebuilt"
    assert [docker_client.images.get(tag).id for tag in demo_tags] == ids
    for version, tag in zip(images.DEMO_VERSIONS, demo_tags, strict=False):
        config = docker_client.images.get(tag).attrs["Config"]
        assert config["Entrypoint"] == ["python3", "-m", "live_tests.demo.source_demo"]
        assert "AIRBYTE_ENTRYPOINT=python3 -m live_tests.demo.source_demo" in config["Env"]
        assert f"DEMO_VERSION={version}" in config["Env"]
        assert config["Labels"]["io.airbyte.version"] == version
        assert len(config["Labels"][images.RECIPE_LABEL]) == 64
    assert (
        docker_client.images.get(demo_tags[0]).labels[images.RECIPE_LABEL]
        != docker_client.images.get(demo_tags[1]).labels[images.RECIPE_LABEL]
    )


@pytest.mark.docker
def test_demo_spec_differs_as_documented(docker_client: docker.DockerClient, demo_tags: list[str]) -> None:
    specs = []
    for tag in demo_tags[:2]:
        [spec] = of_type(messages(run_image(docker_client, tag, "spec")), "SPEC")
        specs.append(spec["spec"]["connectionSpecification"]["properties"])
    v1, v2 = specs
    assert set(v2) - set(v1) == {"page_size"}
    assert v2["page_size"]["default"] == 50
    assert (
        v1["start_date"]["description"] == "UTC date-time from which records are generated, e.g. 2024-01-01T00:00:00Z."
    )
    assert v2["start_date"]["description"] == (
        "UTC date and time (ISO 8601) of the first generated record, e.g. 2024-01-01T00:00:00Z."
    )
    assert {k: v for k, v in v2.items() if k not in ("page_size", "start_date")} == {
        k: v for k, v in v1.items() if k != "start_date"
    }


@pytest.mark.docker
def test_demo_read_differs_exactly_as_documented(docker_client: docker.DockerClient, demo_tags: list[str]) -> None:
    args = ("read", "--config", "/inputs/config.json", "--catalog", "/inputs/configured_catalog.json")
    v1, v2 = (
        messages(run_image(docker_client, tag, *args, mounts={str(DEMO_DIR): "/inputs"})) for tag in demo_tags[:2]
    )
    counts = {s: (len(records(v1, s)), len(records(v2, s))) for s in ("customers", "orders", "events")}
    assert counts == {"customers": (30, 30), "orders": (60, 59), "events": (30, 30)}
    changed = [(a, b) for a, b in zip(records(v1, "customers"), records(v2, "customers"), strict=True) if a != b]
    assert [(a["id"], a["name"], b["name"]) for a, b in changed] == [(7, "Barbara Dijkstra", "BARBARA DIJKSTRA")]
    v2_orders = records(v2, "orders")
    dropped = [o for o in records(v1, "orders") if o not in v2_orders]
    assert [(o["order_id"], o["line"]) for o in dropped] == [(5, 2)]
    assert records(v1, "events") == records(v2, "events")
    states = [
        {
            s["state"]["stream"]["stream_descriptor"]["name"]: s["state"]["stream"]["stream_state"]
            for s in of_type(m, "STATE")
        }
        for m in (v1, v2)
    ]
    assert states == [
        {"customers": {"updated_at": "2024-01-02T06:00:00Z"}, "events": {"ts": "2024-01-01T15:00:00Z"}},
        {"customers": {"updated_at": "2024-01-02T06:00:00+00:00"}, "events": {"ts": "2024-01-01T15:00:00Z"}},
    ]


@pytest.fixture
def fake_api_container(docker_client: docker.DockerClient, demo_tags: list[str]) -> Iterator[tuple[str, str, str]]:
    """The fake API container on a fresh network: (network name, URL of its published port, its name)."""
    network = docker_client.networks.create(f"live-tests-test-{uuid.uuid4().hex[:8]}")
    container = None
    try:
        container = docker_client.containers.run(
            images.FAKE_API_IMAGE,
            name=f"fake-api-{uuid.uuid4().hex[:8]}",
            network=network.name,
            ports={f"{images.FAKE_API_PORT}/tcp": ("127.0.0.1", None)},
            detach=True,
        )
        container.reload()
        port = container.ports[f"{images.FAKE_API_PORT}/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"{url}/__health", timeout=2) as response:
                    assert json.load(response) == {"status": "ok"}
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield network.name, url, container.name
    finally:
        if container is not None:
            container.remove(force=True)
        network.remove()


@pytest.mark.docker
def test_demo_reads_the_fake_api_container_with_the_documented_requests(
    docker_client: docker.DockerClient, demo_tags: list[str], fake_api_container: tuple[str, str, str], tmp_path: Path
) -> None:
    network, url, api_host = fake_api_container
    config = {**json.loads((DEMO_DIR / "config.json").read_text()), "api_url": f"http://{api_host}:8080/v1"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text((DEMO_DIR / "configured_catalog.json").read_text())
    stdout = docker_client.containers.run(
        demo_tags[1],
        ["read", "--config", "/inputs/config.json", "--catalog", "/inputs/catalog.json"],
        volumes={str(tmp_path): {"bind": "/inputs", "mode": "ro"}},
        network=network,
        remove=True,
    )
    found = messages(stdout)
    assert len(records(found, "orders")) == 59
    with urllib.request.urlopen(f"{url}/__requests", timeout=5) as response:
        served = [f"{r['method']} {r['path']}" for r in json.load(response)]
    assert served == [
        "GET /v1/shop",
        "GET /v1/customers?page=1&per_page=50",
        "GET /v1/orders?page=1&per_page=50",
        "GET /v1/orders?page=2&per_page=50",
        "GET /v1/events?page=1&per_page=50",
    ]
    logs = docker_client.containers.get(api_host).logs(stdout=True, stderr=False).decode()
    assert logs.splitlines()[1:] == served


@pytest.fixture(scope="session")
def faker_tags(docker_client: docker.DockerClient, base_image: str) -> list[str]:
    return [images.build_pypi_connector_image(docker_client, FAKER, version, base_image) for version in FAKER_VERSIONS]


@pytest.mark.docker
def test_pypi_faker_images_are_built_like_airbyte_images(
    docker_client: docker.DockerClient, base_image: str, faker_tags: list[str]
) -> None:
    """The image contract; every command through live-tests is in test_debug_faker.py."""
    assert faker_tags == ["airbyte/source-faker:6.2.38", "airbyte/source-faker:7.2.1"]
    for version, tag in zip(FAKER_VERSIONS, faker_tags, strict=True):
        config = docker_client.images.get(tag).attrs["Config"]
        assert config["Entrypoint"] == ["source-faker"]
        assert "AIRBYTE_ENTRYPOINT=source-faker" in config["Env"]
        assert config["Labels"]["io.airbyte.version"] == version
        [spec] = of_type(messages(run_image(docker_client, tag, "spec")), "SPEC")
        assert spec["spec"]["connectionSpecification"]["properties"]["count"]["type"] == "integer"
    # Reused, not rebuilt, while the recipe is the same.
    started = time.monotonic()
    assert images.build_pypi_connector_image(docker_client, FAKER, FAKER_VERSIONS[0], base_image) == faker_tags[0]
    assert time.monotonic() - started < 5


@pytest.mark.docker
def test_an_image_not_built_by_live_tests_is_left_alone(
    docker_client: docker.DockerClient, base_image: str, demo_tags: list[str]
) -> None:
    tag = f"live-tests-test/not-ours:{uuid.uuid4().hex[:8]}"
    docker_client.images.get(images.LOCAL_BASE_IMAGE).tag(*images.split_reference(tag))
    try:
        assert images.build_pypi_connector_image(docker_client, FAKER, "6.2.38", base_image, tag=tag) == tag
        assert images.RECIPE_LABEL not in (docker_client.images.get(tag).labels or {})
    finally:
        docker_client.images.remove(tag)


@pytest.mark.docker
def test_a_failing_build_is_a_one_line_error_with_the_build_output(
    docker_client: docker.DockerClient, faker_tags: list[str]
) -> None:
    # A base without /bin/sh or python3: the install step cannot run.
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("etc/hostname")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"empty"))
    empty_base = f"live-tests-test/empty-base:{uuid.uuid4().hex[:8]}"
    repository, tag = images.split_reference(empty_base)
    docker_client.api.import_image_from_data(archive.getvalue(), repository=repository, tag=tag)
    target = f"live-tests-test/broken:{uuid.uuid4().hex[:8]}"
    try:
        with pytest.raises(ImageBuildError) as error:
            images.build_pypi_connector_image(docker_client, FAKER, "6.2.38", empty_base, tag=target)
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith(f"building {target} failed: ")
        assert message.endswith(
            "RUN python3 -m pip install --no-cache-dir --no-index --find-links /tmp/wheels "
            "airbyte-source-faker==6.2.38 && rm -rf /tmp/wheels"
        )
        assert "/bin/sh: no such file or directory" in message
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(target)
    finally:
        remove_with_descendants(docker_client, docker_client.images.get(empty_base).id)


def remove_with_descendants(client: docker.DockerClient, image_id: str) -> None:
    """Remove an image and the intermediate images a build left on top of it (deepest first)."""
    everything = client.images.list(all=True)
    levels = [{image_id}]
    while children := {i.id for i in everything if i.attrs.get("Parent") in levels[-1]}:
        levels.append(children)
    for level in reversed(levels):
        for image in level:
            # Removing a child also prunes its untagged parents: some may be gone already.
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(image, force=True)


@pytest.mark.docker
def test_an_unknown_pypi_version_is_a_one_line_error(docker_client: docker.DockerClient, base_image: str) -> None:
    with pytest.raises(ImageBuildError) as error:
        images.build_pypi_connector_image(docker_client, FAKER, "0.0.0.dev404", base_image, tag="live-tests-test/x:1")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"pip could not get wheels for {FAKER}==0.0.0.dev404: ")
    assert "0.0.0.dev404" in message.split(": ", 1)[1]
