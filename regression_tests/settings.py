"""The suite's command-line options, declared for pytest and checked into one `SuiteSettings`.

Every problem with the options is a `pytest.UsageError`: one line saying what to fix.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from live_tests.connector_inputs import connector_inputs
from live_tests.models import Command, ConnectorImage, InputError
from live_tests.proxy import DEFAULT_PROXY_IMAGE, ProxySettings
from live_tests.reports import EvaluationMode

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_TIMEOUT_S = 3600.0
CATALOG_FILE = "configured_catalog.json"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("live-tests", "live-tests regression suite (control vs target connector versions)")
    group.addoption("--connector-image", help="Connector image without tag, e.g. airbyte/source-faker.")
    group.addoption("--control-version", help="Tag of the version that ships today, e.g. 6.2.38.")
    group.addoption("--target-version", help="Tag of the candidate version, e.g. 7.2.1.")
    group.addoption("--config-path", help="Connector config JSON (check, discover, read).")
    group.addoption("--catalog-path", help="Configured catalog JSON (read).")
    group.addoption("--state-path", help="State JSON (read-with-state).")
    group.addoption("--pr-url", help="Pull request the run is for; shown in the reports.")
    group.addoption(
        "--stream",
        action="append",
        default=[],
        dest="live_tests_streams",
        help="Only this stream of the configured catalog (repeatable).",
    )
    group.addoption("--run-id", help="Session id (default: the current Unix time).")
    group.addoption(
        "--test-evaluation-mode",
        choices=[m.value for m in EvaluationMode],
        default=EvaluationMode.STRICT.value,
        help="strict: any difference fails; diagnostic: tests marked `diagnostic` report their "
        "findings as 'passed with findings' instead of failing.",
    )
    group.addoption(
        "--should-read-with-state",
        choices=["true", "false"],
        default=None,
        help="Also run the read tests with --state-path (default: true when a state path is given).",
    )
    group.addoption(
        "--http-cache",
        action="store_true",
        default=False,
        help="Answer the target's HTTP requests from the control's recording where possible.",
    )
    group.addoption("--disable-proxy", action="store_true", default=False, help="No mitmproxy: no HTTP capture.")
    group.addoption(
        "--proxy-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="mitmproxy option for every execution's proxy, repeatable, e.g. map_remote='|https://a|http://b'.",
    )
    group.addoption(
        "--proxy-image",
        default=DEFAULT_PROXY_IMAGE,
        help="mitmproxy image with mitmdump on its PATH (the default is built locally).",
    )
    group.addoption("--session-dir", help="Artifacts folder (default: <tmp>/live-tests/session_<run-id>).")
    group.addoption(
        "--execution-timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"Seconds before a connector is killed (default {DEFAULT_TIMEOUT_S:g}).",
    )


@dataclass(frozen=True)
class SuiteSettings:
    control: ConnectorImage
    target: ConnectorImage
    config_path: Path | None
    # The catalog the reads use: the user's, filtered by --stream, written into the session folder.
    catalog_path: Path | None
    state_path: Path | None
    configured_catalog: dict[str, Any] | None
    streams: tuple[str, ...]
    run_id: str
    session_dir: Path
    evaluation_mode: EvaluationMode
    should_read_with_state: bool
    proxy: ProxySettings
    pr_url: str | None
    timeout_s: float

    def write_catalog(self) -> None:
        if self.catalog_path is not None and self.configured_catalog is not None:
            self.catalog_path.parent.mkdir(parents=True, exist_ok=True)
            self.catalog_path.write_bytes(orjson.dumps(self.configured_catalog, option=orjson.OPT_INDENT_2))

    @property
    def connector(self) -> str:
        return self.control.name

    @property
    def read_commands(self) -> list[Command]:
        if self.catalog_path is None:
            return []
        return [Command.READ, Command.READ_WITH_STATE] if self.should_read_with_state else [Command.READ]

    def inputs_missing(self, command: Command) -> str | None:
        """Why `command` cannot run with the given options (None: it can)."""
        option = {"config": "--config-path", "catalog": "--catalog-path", "state": "--state-path"}
        given = {"config": self.config_path, "catalog": self.catalog_path, "state": self.state_path}
        missing = [option[kind] for kind in command.required_inputs if given[kind] is None]
        return f"'{command.value}' needs {' and '.join(missing)}" if missing else None


def _option(config: pytest.Config, name: str) -> Any:
    return config.getoption(name)


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def parse_settings(config: pytest.Config) -> SuiteSettings:
    """Check the options; nothing is written and Docker is not involved yet."""
    image = _option(config, "--connector-image")
    control_version = _option(config, "--control-version")
    target_version = _option(config, "--target-version")
    for name, value in (
        ("--connector-image", image),
        ("--control-version", control_version),
        ("--target-version", target_version),
    ):
        if not value:
            raise pytest.UsageError(f"{name} is required, e.g. {name}={_EXAMPLES[name]}")
    try:
        control = ConnectorImage.parse(f"{image}:{control_version}")
        target = ConnectorImage.parse(f"{image}:{target_version}")
    except InputError as exc:
        raise pytest.UsageError(str(exc)) from None
    if ConnectorImage.parse(image).tag != "latest" or image.endswith(":latest"):
        raise pytest.UsageError(
            f"--connector-image {image}: give the image without a tag;"
            " the tags are --control-version and --target-version"
        )
    if control.version == target.version:
        raise pytest.UsageError(
            f"--control-version and --target-version are both {control.version}: compare two different versions"
        )

    run_id = _option(config, "--run-id") or str(int(time.time()))
    if not _RUN_ID.match(run_id):
        raise pytest.UsageError(f"--run-id {run_id!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    session_dir = _path(_option(config, "--session-dir")) or Path(tempfile.gettempdir()) / "live-tests" / (
        f"session_{run_id}"
    )
    session_dir = session_dir.resolve()
    if session_dir.exists() and (not session_dir.is_dir() or any(session_dir.iterdir())):
        raise pytest.UsageError(
            f"session folder {session_dir} already holds a run: pass another --run-id or --session-dir"
        )

    config_path = _path(_option(config, "--config-path"))
    catalog_path = _path(_option(config, "--catalog-path"))
    state_path = _path(_option(config, "--state-path"))
    try:
        if config_path is not None:
            connector_inputs(Command.CHECK, config_path, None, None)
        if catalog_path is not None:
            connector_inputs(Command.READ, config_path, catalog_path, None)
        if state_path is not None:
            connector_inputs(Command.READ_WITH_STATE, config_path, catalog_path, state_path)
    except InputError as exc:
        raise pytest.UsageError(str(exc)) from None

    flag = _option(config, "--should-read-with-state")
    should_read_with_state = state_path is not None if flag is None else flag == "true"
    if should_read_with_state and state_path is None:
        raise pytest.UsageError("--should-read-with-state=true needs --state-path")
    if should_read_with_state and catalog_path is None:
        raise pytest.UsageError("--should-read-with-state=true needs --catalog-path")

    streams = tuple(dict.fromkeys(_option(config, "live_tests_streams") or ()))
    if streams and catalog_path is None:
        raise pytest.UsageError("--stream filters the configured catalog: give --catalog-path too")

    timeout = _option(config, "--execution-timeout")
    if timeout <= 0:
        raise pytest.UsageError("--execution-timeout must be a positive number of seconds")
    try:
        proxy = ProxySettings.from_cli(
            image=_option(config, "--proxy-image"),
            disable_proxy=_option(config, "--disable-proxy"),
            proxy_options=_option(config, "--proxy-option"),
            http_cache=_option(config, "--http-cache"),
        )
    except InputError as exc:
        raise pytest.UsageError(str(exc)) from None

    configured_catalog = None
    used_catalog_path = None
    if catalog_path is not None:
        configured_catalog = filter_catalog(orjson.loads(catalog_path.read_bytes()), streams, catalog_path)
        used_catalog_path = session_dir / CATALOG_FILE  # written when the session starts

    return SuiteSettings(
        control=control,
        target=target,
        config_path=config_path,
        catalog_path=used_catalog_path,
        state_path=state_path,
        configured_catalog=configured_catalog,
        streams=streams,
        run_id=run_id,
        session_dir=session_dir,
        evaluation_mode=EvaluationMode(_option(config, "--test-evaluation-mode")),
        should_read_with_state=should_read_with_state,
        proxy=proxy,
        pr_url=_option(config, "--pr-url"),
        timeout_s=timeout,
    )


_EXAMPLES = {
    "--connector-image": "airbyte/source-faker",
    "--control-version": "6.2.38",
    "--target-version": "7.2.1",
}


def filter_catalog(catalog: dict[str, Any], streams: tuple[str, ...], path: Path) -> dict[str, Any]:
    """The configured catalog restricted to `streams` (all when empty); unknown names are an error."""
    if not streams:
        return catalog
    available = [s.get("stream", {}).get("name") for s in catalog.get("streams", [])]
    unknown = [name for name in streams if name not in available]
    if unknown:
        raise pytest.UsageError(
            f"--stream {', '.join(unknown)}: not in {path} (its streams: {', '.join(map(str, available))})"
        )
    return {**catalog, "streams": [s for s in catalog["streams"] if s["stream"]["name"] in streams]}
