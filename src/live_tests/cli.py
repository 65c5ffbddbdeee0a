"""`live-tests` command line: a thin layer over the pipeline."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click
import docker
import duckdb

from live_tests.cli_regression import regression
from live_tests.connector_inputs import connector_inputs
from live_tests.console import console, live_progress, summary_console, summary_table
from live_tests.debug_secrets import debug_masking
from live_tests.docker_engine import EngineError, connect, ensure_image, remove_leftovers
from live_tests.limits import parse_limits
from live_tests.models import Command, ConnectorImage, ExecutionInputs, ExecutionResult, InputError
from live_tests.pipeline import DEFAULT_MAX_PARALLEL, run_executions
from live_tests.proxy import DEFAULT_PROXY_IMAGE, ProxySettings
from live_tests.run_ids import RUN_ID, default_run_id
from live_tests.secrets import SecretMasker
from live_tests.store.session_db import SessionDatabase

DEFAULT_OUTPUT_DIR = Path("live_tests_debug_reports")
DEFAULT_TIMEOUT_S = 3600.0


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.group()
@click.version_option(package_name="live-tests")
def cli() -> None:
    """Run Airbyte-protocol connector images and compare what they emit."""


@cli.command()
@click.argument("command", type=click.Choice([c.value for c in Command]))
@click.option(
    "-c",
    "--connector-image",
    "images",
    multiple=True,
    required=True,
    help="Connector image to run, e.g. airbyte/source-faker:7.2.1. Repeat to run several versions.",
)
@click.option("--config-path", type=click.Path(path_type=Path), help="Connector config JSON.")
@click.option("--catalog-path", type=click.Path(path_type=Path), help="Configured catalog JSON (read).")
@click.option("--state-path", type=click.Path(path_type=Path), help="State JSON (read-with-state).")
@click.option("--output-dir", type=click.Path(path_type=Path), default=DEFAULT_OUTPUT_DIR, show_default=True)
@click.option("--run-id", help="Name of this run's folder (default: the Unix time and a random suffix).")
@click.option(
    "--timeout", type=float, default=DEFAULT_TIMEOUT_S, show_default=True, help="Seconds before a connector is killed."
)
@click.option("--max-parallel", type=click.IntRange(1, 16), default=DEFAULT_MAX_PARALLEL, show_default=True)
@click.option(
    "--proxy-image",
    default=DEFAULT_PROXY_IMAGE,
    show_default=True,
    help="mitmproxy image with mitmdump on its PATH (the default is built locally).",
)
@click.option("--disable-proxy", is_flag=True, help="Run connectors without the proxy: no HTTP capture.")
@click.option(
    "--proxy-option",
    "proxy_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="mitmproxy option, repeatable, e.g. map_remote='|https://api.example.com|http://host.docker.internal:8000'.",
)
@click.option(
    "-hc",
    "--http-cache",
    is_flag=True,
    help="Answer the other images' requests from the first image's recording; unseen requests go upstream.",
)
@click.option(
    "--http-replay",
    type=click.Path(path_type=Path),
    help="Answer every request from this http_dump.mitm or .har of an earlier run; nothing leaves the proxy.",
)
@click.option(
    "--http-fault",
    "http_faults",
    multiple=True,
    metavar="SCENARIO",
    help="Fault the proxy injects on every image alike, repeatable: latency=MS, status=429[:retry-after=S][:every=N],"
    " status=500|503[:every=N], reset[:every=N], truncate[:every=N], invalid-json[:every=N].",
)
@click.option(
    "--memory-limit",
    metavar="SIZE",
    help="Memory limit of each connector container, e.g. 512m or 2g; going over it is reported as out of memory.",
)
@click.option("--cpus", metavar="N", help="CPUs each connector container may use, e.g. 1.5 (as docker run --cpus).")
@click.option(
    "--mask-secrets/--no-mask-secrets",
    default=None,
    help="Mask the config's secrets in every artifact and duck.db after the run. Default: on when the"
    " connector's spec marks secrets (airbyte_secret); --mask-secrets also masks secret-looking property names.",
)
def debug(
    command: str,
    images: tuple[str, ...],
    config_path: Path | None,
    catalog_path: Path | None,
    state_path: Path | None,
    output_dir: Path,
    run_id: str | None,
    timeout: float,
    max_parallel: int,
    proxy_image: str,
    disable_proxy: bool,
    proxy_options: tuple[str, ...],
    http_cache: bool,
    http_replay: Path | None,
    http_faults: tuple[str, ...],
    memory_limit: str | None,
    cpus: str | None,
    mask_secrets: bool | None,
) -> None:
    """Run COMMAND on one or more connector images and keep everything they print.

    Artifacts: OUTPUT_DIR/RUN_ID/<connector>/<command>/<version>/ and OUTPUT_DIR/RUN_ID/duck.db.
    """
    signal.signal(signal.SIGTERM, _raise_interrupt)
    run_id = run_id or default_run_id()
    try:
        if not RUN_ID.match(run_id):
            raise InputError(f"--run-id {run_id!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        if timeout <= 0:
            raise InputError("--timeout must be a positive number of seconds")
        limits = parse_limits(memory_limit, cpus)
        cmd = Command(command)
        inputs = connector_inputs(cmd, config_path, catalog_path, state_path)
        connectors = [ConnectorImage.parse(image) for image in images]
        _check_distinct(connectors)
        proxy = ProxySettings.from_cli(
            image=proxy_image,
            disable_proxy=disable_proxy,
            proxy_options=proxy_options,
            http_cache=http_cache,
            http_replay=http_replay,
            http_faults=http_faults,
        )
        client = connect()
        for connector in connectors:
            ensure_image(client, connector.reference)
        masking = debug_masking(client, mask_secrets, config_path, connectors, run_id)
        if proxy.enabled:
            from live_tests.images import ImageBuildError, ensure_base_image, ensure_proxy_image

            try:
                ensure_proxy_image(client, proxy.image, ensure_base_image(client))
            except ImageBuildError as exc:
                raise EngineError(str(exc)) from None
    except InputError as exc:
        fail(str(exc), 2)
    except EngineError as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:  # while the specs were read for masking: nothing written yet
        fail("interrupted before any connector ran", 130)

    run_dir = output_dir / run_id
    executions = [
        ExecutionInputs(
            connector=connector,
            command=cmd,
            inputs=inputs,
            artifacts_dir=run_dir / connector.name / cmd.value / connector.version,
            run_id=run_id,
            timeout_s=timeout,
            limits=limits,
        )
        for connector in connectors
    ]
    try:
        db = SessionDatabase(run_dir / "duck.db")
    except duckdb.Error as exc:
        # Typically another process (a DuckDB shell, a notebook) holds the file open.
        reason = str(exc).splitlines()[0]
        fail(f"cannot open {run_dir / 'duck.db'}: {reason} - close it there or use another --run-id", 1)
    try:
        with db, live_progress(executions) as progress:
            results = run_executions(
                client, db, executions, max_parallel=max_parallel, on_progress=progress, proxy=proxy
            )
    except KeyboardInterrupt:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the scrub must not be cut short
        console.print(masking.summary(masking.scrub(run_dir)), markup=False, highlight=False)
        console.print(f"[red]Interrupted[/]: containers removed; partial artifacts kept in {run_dir}")
        sys.exit(130)
    _print_outcome(results, run_dir, masking.masker)
    console.print(masking.summary(masking.scrub(run_dir)), markup=False, highlight=False)
    _print_replay(results, run_dir / "duck.db")
    if not proxy.enabled:
        console.print("HTTP capture: off (--disable-proxy); no http_dump.* artifacts")
    if not all(result.success for result in results):
        sys.exit(1)


def _check_distinct(connectors: list[ConnectorImage]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for connector in connectors:
        key = (connector.name, connector.version)
        if key in seen:
            raise InputError(
                f"{seen[key]} and {connector.reference} would write to the same folder "
                f"({connector.name}/{connector.version}): pass each connector version once"
            )
        seen[key] = connector.reference


def _print_outcome(results: list[ExecutionResult], run_dir: Path, masker: SecretMasker) -> None:
    summary_console.print(summary_table(results))
    for result in results:
        for warning in result.warnings:
            console.print(f"[yellow]{result.inputs.key}: warning: {warning}[/]", highlight=False)
        if not result.success:
            connector, version, command = result.inputs.key
            console.print(f"[red]{connector}:{version} {command} {result.failure_reason}[/]")
            if result.stderr_tail.strip():
                tail = masker.mask_text("\n".join(result.stderr_tail.splitlines()[-10:]))
                console.print(f"stderr (last lines):\n{tail}", style="dim", markup=False, highlight=False)
    console.print(f"Artifacts: {run_dir}/  (session database: {run_dir / 'duck.db'})")


def _print_replay(results: list[ExecutionResult], db_path: Path) -> None:
    """In cache and replay modes: how each execution's requests were answered, and the near misses."""
    from live_tests.compare.http_replay import REPLAYING_MODES, replay_counts

    replaying = [r for r in results if r.http is not None and r.http.mode in REPLAYING_MODES]
    if not replaying or not db_path.exists():
        return
    with duckdb.connect(str(db_path), read_only=True) as con:
        for result in replaying:
            counts = replay_counts(con, result.inputs.key, result.inputs.artifacts_dir)
            if counts is None:
                continue
            connector, version, command = result.inputs.key
            style = "yellow" if counts.unmatched or counts.live or counts.left_out_streamed else "green"
            line = f"HTTP {counts.mode} {connector}:{version} {command}: {counts.summary()}"
            console.print(line, style=style, markup=False, highlight=False, soft_wrap=True)
            for miss in counts.near_misses:
                how = "unmatched" if counts.mode == "replay" else "live"
                text = f"  {how}: {miss.request} - {miss.closest or 'nothing recorded'}"
                console.print(text, markup=False, highlight=False, soft_wrap=True)


@cli.command()
@click.option("--run-id", help="Only this run's leftovers (default: everything live-tests labelled).")
@click.option("--force", is_flag=True, help="Also remove what a still-running live-tests process is using.")
def cleanup(run_id: str | None, force: bool) -> None:
    """Remove containers, networks and volumes left behind by killed live-tests runs."""
    try:
        removed = remove_leftovers(connect(), run_id, force=force)
    except EngineError as exc:
        fail(str(exc), 1)
    for kind in ("containers", "networks", "volumes"):
        for name in getattr(removed, kind):
            click.echo(f"removed {kind[:-1]} {name}")
    for name in removed.kept:
        click.echo(f"kept {name}")
    click.echo(f"{removed.total} object(s) removed")


@cli.group()
def images() -> None:
    """Build the images live-tests needs where nothing can be pulled."""


def _build(what: str, build: Callable[[docker.DockerClient, str], list[str]]) -> None:
    from live_tests.images import ensure_base_image

    try:
        client = connect()
        base = ensure_base_image(client)
        for tag in build(client, base):
            click.echo(tag)
    except (EngineError, InputError) as exc:
        fail(f"{what}: {exc}", 1)


@images.command("base")
def images_base() -> None:
    """Make sure the base image exists (LIVE_TESTS_BASE_IMAGE, else a local Debian base) and print it."""
    _build("base image", lambda client, base: [base])


@images.command("demo")
def images_demo() -> None:
    """Build the demo connector (1.0.0 and 2.0.0) and the fake upstream API images."""
    from live_tests.images import build_demo_images

    _build("demo images", build_demo_images)


@images.command("proxy")
def images_proxy() -> None:
    """Build the default proxy image (mitmproxy from wheels fetched on the host) and print it."""
    from live_tests.images import ensure_proxy_image

    _build("proxy image", lambda client, base: [ensure_proxy_image(client, DEFAULT_PROXY_IMAGE, base)])


@images.command("connector")
@click.argument("requirement")
@click.option("--tag", help="Image tag (default: airbyte/<connector>:<version>).")
@click.option(
    "--override",
    "overrides",
    multiple=True,
    metavar="REQUIREMENT",
    help="Install these instead of the package's own dependencies (repeatable), e.g. 'airbyte-cdk==1.8.0'.",
)
def images_connector(requirement: str, tag: str | None, overrides: tuple[str, ...]) -> None:
    """Build a connector image from PyPI, e.g. airbyte-source-faker==7.2.1."""
    from live_tests.images import build_pypi_connector_image

    package, _, version = requirement.partition("==")
    if not package or not version:
        fail(f"{requirement!r}: give PACKAGE==VERSION, e.g. airbyte-source-faker==7.2.1")
    _build(
        requirement,
        lambda client, base: [build_pypi_connector_image(client, package, version, base, tag=tag, overrides=overrides)],
    )


DEMO_INPUTS = ("config.json", "config_http.json", "configured_catalog.json", "state.json")


@cli.command("demo-inputs")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def demo_inputs(directory: Path) -> None:
    """Copy the demo connector's config, catalog and state (installed with the package) into DIRECTORY."""
    from importlib import resources

    directory.mkdir(parents=True, exist_ok=True)
    demo = resources.files("live_tests.demo")
    for name in DEMO_INPUTS:
        target = directory / name
        if target.exists():
            fail(f"{target} exists: pick an empty folder", 2)
        target.write_bytes(demo.joinpath(name).read_bytes())
        click.echo(target)


cli.add_command(regression)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
