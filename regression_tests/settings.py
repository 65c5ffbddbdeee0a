"""The suite's options (declared in options.py) checked into one `SuiteSettings`.

`parse_settings` takes the values by option dest, so it runs without pytest's config too. Every
problem with the options is a `pytest.UsageError`: one line saying what to fix.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from live_tests.connector_inputs import connector_inputs
from live_tests.limits import parse_limits
from live_tests.models import Command, ConnectorImage, ContainerLimits, InputError
from live_tests.proxy import DEFAULT_PROXY_IMAGE, ProxySettings
from live_tests.regression_tests.accepted import AcceptedDiffs
from live_tests.regression_tests.options import DEFAULT_PERF_TOLERANCE, DEFAULT_TIMEOUT_S
from live_tests.regression_tests.session_lock import in_use_error, lock_holder
from live_tests.reports import EvaluationMode
from live_tests.run_ids import RUN_ID, default_run_id

if TYPE_CHECKING:
    from live_tests.compare.ignores import IgnoredPath

CATALOG_FILE = "configured_catalog.json"


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
    # Run the control's reads a second time to find run-time noise (see RegressionSession.ignored_paths).
    noise_baseline: bool = True
    # --ignore-field paths (live_tests.compare.ignores.IgnoredPath) and the --accepted-diffs file.
    ignored_fields: tuple[IgnoredPath, ...] = ()
    accepted_diffs: AcceptedDiffs = field(default_factory=AcceptedDiffs)
    update_accepted_diffs: bool = False
    # --memory-limit / --cpus of the connector containers.
    limits: ContainerLimits = field(default_factory=ContainerLimits)
    # Executions at the same time (--max-parallel); the fraction test_performance_is_comparable allows.
    max_parallel: int = 2
    perf_tolerance: float = DEFAULT_PERF_TOLERANCE

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


def _option(values: Mapping[str, Any], name: str) -> Any:
    """The value of `--name` (or of a dest, `live_tests_streams`)."""
    return values.get(name.removeprefix("--").replace("-", "_"))


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def parse_settings(values: Mapping[str, Any]) -> SuiteSettings:
    """Check the options (dest -> value, see options.option_values); nothing is written, no Docker yet."""
    image = _option(values, "--connector-image")
    control_version = _option(values, "--control-version")
    target_version = _option(values, "--target-version")
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

    run_id = _option(values, "--run-id") or default_run_id()
    if not RUN_ID.match(run_id):
        raise pytest.UsageError(f"--run-id {run_id!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    session_dir = _path(_option(values, "--session-dir")) or Path(tempfile.gettempdir()) / "live-tests" / (
        f"session_{run_id}"
    )
    session_dir = session_dir.resolve()
    holder = lock_holder(session_dir)
    if holder is not None:
        raise in_use_error(session_dir, holder)
    if session_dir.exists() and (not session_dir.is_dir() or any(session_dir.iterdir())):
        raise pytest.UsageError(
            f"session folder {session_dir} already holds a run: pass another --run-id or --session-dir"
        )

    config_path = _path(_option(values, "--config-path"))
    catalog_path = _path(_option(values, "--catalog-path"))
    state_path = _path(_option(values, "--state-path"))
    try:
        if config_path is not None:
            connector_inputs(Command.CHECK, config_path, None, None)
        if catalog_path is not None:
            connector_inputs(Command.READ, config_path, catalog_path, None)
        if state_path is not None:
            connector_inputs(Command.READ_WITH_STATE, config_path, catalog_path, state_path)
    except InputError as exc:
        raise pytest.UsageError(str(exc)) from None

    flag = _option(values, "--should-read-with-state")
    should_read_with_state = state_path is not None if flag is None else flag == "true"
    if should_read_with_state and state_path is None:
        raise pytest.UsageError("--should-read-with-state=true needs --state-path")
    if should_read_with_state and catalog_path is None:
        raise pytest.UsageError("--should-read-with-state=true needs --catalog-path")

    streams = tuple(dict.fromkeys(_option(values, "live_tests_streams") or ()))
    if streams and catalog_path is None:
        raise pytest.UsageError("--stream filters the configured catalog: give --catalog-path too")

    timeout = _option(values, "--execution-timeout")
    if timeout is None:
        timeout = DEFAULT_TIMEOUT_S
    if timeout <= 0:
        raise pytest.UsageError("--execution-timeout must be a positive number of seconds")
    max_parallel = _option(values, "--max-parallel")
    if max_parallel is None:
        max_parallel = default_max_parallel()
    if max_parallel < 1 or max_parallel != int(max_parallel):
        raise pytest.UsageError("--max-parallel must be a whole number of at least 1")
    perf_tolerance = _option(values, "--perf-tolerance")
    if perf_tolerance is None:
        perf_tolerance = DEFAULT_PERF_TOLERANCE
    if perf_tolerance < 0:
        raise pytest.UsageError("--perf-tolerance must be a fraction of at least 0, e.g. 0.25 for 25%")
    try:
        limits = parse_limits(_option(values, "--memory-limit"), _option(values, "--cpus"))
    except InputError as exc:
        raise pytest.UsageError(str(exc)) from None
    try:
        proxy = ProxySettings.from_cli(
            image=_option(values, "--proxy-image") or DEFAULT_PROXY_IMAGE,
            disable_proxy=bool(_option(values, "--disable-proxy")),
            proxy_options=_option(values, "--proxy-option") or [],
            http_cache=bool(_option(values, "--http-cache")),
            http_faults=_option(values, "--http-fault") or [],
        )
    except InputError as exc:
        raise pytest.UsageError(str(exc)) from None

    configured_catalog = None
    used_catalog_path = None
    if catalog_path is not None:
        configured_catalog = filter_catalog(orjson.loads(catalog_path.read_bytes()), streams, catalog_path)
        used_catalog_path = session_dir / CATALOG_FILE  # written when the session starts

    ignored_fields = _ignored_fields(_option(values, "--ignore-field") or ())
    accepted_path = _path(_option(values, "--accepted-diffs"))
    update_accepted = bool(_option(values, "--update-accepted-diffs"))
    if update_accepted and accepted_path is None:
        raise pytest.UsageError("--update-accepted-diffs needs --accepted-diffs FILE (the file to write)")
    accepted = AcceptedDiffs(accepted_path)
    if accepted_path is not None and (accepted_path.exists() or not update_accepted):
        try:
            accepted = AcceptedDiffs.load(accepted_path, control.name, control.version, target.version)
        except InputError as exc:
            raise pytest.UsageError(str(exc)) from None

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
        evaluation_mode=EvaluationMode(_option(values, "--test-evaluation-mode") or EvaluationMode.STRICT),
        should_read_with_state=should_read_with_state,
        proxy=proxy,
        pr_url=_option(values, "--pr-url"),
        timeout_s=timeout,
        noise_baseline=_option(values, "--noise-baseline") is not False,
        ignored_fields=ignored_fields,
        accepted_diffs=accepted,
        update_accepted_diffs=update_accepted,
        limits=limits,
        max_parallel=int(max_parallel),
        perf_tolerance=float(perf_tolerance),
    )


def default_max_parallel() -> int:
    """One execution per core, at least 2 (the control and the target of a command side by side)."""
    return max(2, os.cpu_count() or 2)


def _ignored_fields(texts: Sequence[str]) -> tuple[IgnoredPath, ...]:
    from live_tests.compare.ignores import IgnoredPath

    parsed = []
    for text in dict.fromkeys(texts):
        try:
            parsed.append(IgnoredPath.parse(text))
        except ValueError as exc:
            raise pytest.UsageError(f"--ignore-field: {exc}") from None
    return tuple(parsed)


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
