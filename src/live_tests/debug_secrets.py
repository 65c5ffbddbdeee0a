"""Which secrets `live-tests debug` masks, and the line its summary says about them.

The secrets are the config's values at the properties the connectors' specs mark `airbyte_secret`.
The specs are read before the run (a short `spec` container per image, no network), so that an
interrupted run is masked too. Default (`--mask-secrets` not given): mask when a spec marks a
secret. `--mask-secrets` masks also when none does (values of properties named like secrets);
`--no-mask-secrets` keeps everything raw.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import orjson
from docker.errors import DockerException

from live_tests.docker_engine import labels
from live_tests.models import ConnectorImage
from live_tests.secrets import ScrubReport, SecretMasker, scrub_session, secret_values

SPEC_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class MaskingChoice:
    """The masker of a debug run and why (`how`: part of the summary line)."""

    masker: SecretMasker
    how: str

    def summary(self, scrub: ScrubReport | None) -> str:
        if not self.masker:
            return f"Secrets: not masked ({self.how})"
        where = ""
        if scrub is not None:
            where = (
                f" in {len(scrub.files_masked)} file(s), {len(scrub.binary_dumps_masked)} .mitm dump(s)"
                f" and {scrub.database_cells_masked} duck.db cell(s)"
            )
        line = f"Secrets: masked ({self.how}): {len(self.masker.secrets)} config value(s){where}"
        if self.masker.skipped:
            line += f"; {len(self.masker.skipped)} value(s) shorter than 4 characters left as they are"
        return line

    def scrub(self, run_dir: Path) -> ScrubReport | None:
        """Mask the run folder (duck.db included; close it first). None when nothing is masked."""
        return scrub_session(run_dir, self.masker) if self.masker else None


def connector_spec(client: docker.DockerClient, image: ConnectorImage, run_id: str) -> dict[str, Any] | None:
    """The image's connectionSpecification (from `spec`, no network); None if it printed none."""
    container = None
    try:
        container = client.containers.create(
            image.reference,
            command=["spec"],
            name=f"live-tests-{run_id}-{image.name}-spec-{uuid.uuid4().hex[:8]}",
            labels=labels(run_id, "connector"),  # `live-tests cleanup` finds it like any connector
            network_disabled=True,
            detach=True,
        )
        container.start()
        container.wait(timeout=SPEC_TIMEOUT_S)
        output = container.logs(stdout=True, stderr=False)
    except (DockerException, OSError):
        return None
    finally:
        if container is not None:
            with contextlib.suppress(DockerException):
                container.remove(force=True)
    for line in reversed(output.splitlines()):
        with contextlib.suppress(orjson.JSONDecodeError):
            message = orjson.loads(line)
            spec = message.get("spec") if isinstance(message, dict) and message.get("type") == "SPEC" else None
            if isinstance(spec, dict) and isinstance(spec.get("connectionSpecification"), dict):
                return spec["connectionSpecification"]
    return None


def choose_masking(
    requested: bool | None, config: Mapping[str, Any] | None, specs: Sequence[Mapping[str, Any] | None]
) -> MaskingChoice:
    """The masker for `--mask-secrets` (True), `--no-mask-secrets` (False) or neither (None)."""
    if requested is False:
        return MaskingChoice(SecretMasker(), "--no-mask-secrets: the artifacts keep the config's values")
    if config is None:
        return MaskingChoice(SecretMasker(), "no --config-path: no secret to mask")
    known = [spec for spec in specs if spec is not None]
    marked: list[str] = []
    for spec in known:
        marked += secret_values(spec, config)
    if marked:
        return MaskingChoice(
            SecretMasker.of(marked), "the spec marks them airbyte_secret; --no-mask-secrets keeps them"
        )
    if requested or not known:
        why = "--mask-secrets" if requested else "no spec could be read"
        return MaskingChoice(
            SecretMasker.of(secret_values(None, config)), f"{why}: values of secret-looking properties"
        )
    return MaskingChoice(SecretMasker(), "the spec marks no secret; --mask-secrets masks secret-looking properties")


def debug_masking(
    client: docker.DockerClient,
    requested: bool | None,
    config_path: Path | None,
    connectors: Sequence[ConnectorImage],
    run_id: str,
) -> MaskingChoice:
    """Read the config and (unless --no-mask-secrets or no config) each image's spec, then choose."""
    if requested is False or config_path is None:
        return choose_masking(requested, None if config_path is None else {}, [])
    config = orjson.loads(config_path.read_bytes())  # checked by connector_inputs already
    specs = [connector_spec(client, connector, run_id) for connector in connectors]
    return choose_masking(requested, config if isinstance(config, dict) else {}, specs)
