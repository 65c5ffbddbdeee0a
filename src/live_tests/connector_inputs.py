"""Check the connection objects a command needs before anything is started."""

from __future__ import annotations

from pathlib import Path

import orjson

from live_tests.models import Command, ConnectorInputs, InputError

_OPTION = {"config": "--config-path", "catalog": "--catalog-path", "state": "--state-path"}


def _check_json(kind: str, path: Path) -> None:
    if not path.is_file():
        raise InputError(f"{_OPTION[kind]} {path}: no such file")
    try:
        document = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{_OPTION[kind]} {path} is not valid JSON: {exc}") from None
    if kind == "catalog":
        streams = document.get("streams") if isinstance(document, dict) else None
        if not isinstance(streams, list) or not streams:
            raise InputError(f"{_OPTION[kind]} {path} is not a configured catalog: it needs a non-empty 'streams' list")
    elif kind == "config" and not isinstance(document, dict):
        raise InputError(f"{_OPTION[kind]} {path} must hold a JSON object")
    elif kind == "state" and not isinstance(document, dict | list):
        raise InputError(f"{_OPTION[kind]} {path} must hold a JSON array of state messages or an object")


def connector_inputs(
    command: Command, config: Path | None, catalog: Path | None, state: Path | None
) -> ConnectorInputs:
    """The inputs the command needs, each checked to be readable JSON of the right shape."""
    given = {"config": config, "catalog": catalog, "state": state}
    missing = [_OPTION[kind] for kind in command.required_inputs if given[kind] is None]
    if missing:
        raise InputError(f"'{command.value}' needs {' and '.join(missing)}")
    for kind in command.required_inputs:
        _check_json(kind, given[kind])  # type: ignore[arg-type]
    needed = {kind: given[kind] for kind in command.required_inputs}
    return ConnectorInputs(**needed)
