"""`live-tests regression`: the installed regression suite, run by pytest with the options passed through.

    live-tests regression --connector-image airbyte/source-faker --control-version 6.2.38 \\
        --target-version 7.2.1 --config-path config.json --catalog-path catalog.json [-- PYTEST ARGS]

The options are the suite's own (declared in regression_tests/conftest.py), which also checks
them; arguments after `--` go to pytest unchanged (e.g. `-k read --junitxml report.xml`).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

# The suite's modes (live_tests.verdicts.EvaluationMode).
EVALUATION_MODES = ("strict", "diagnostic")


def suite_dir() -> Path:
    """Where the installed suite lives (the package `live_tests.regression_tests`)."""
    import live_tests.regression_tests

    return Path(live_tests.regression_tests.__file__).resolve().parent


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--connector-image", required=True, help="Connector image without tag, e.g. airbyte/source-faker.")
@click.option("--control-version", required=True, help="Tag of the version that ships today.")
@click.option("--target-version", required=True, help="Tag of the candidate version.")
@click.option("--config-path", type=click.Path(path_type=Path), help="Connector config JSON.")
@click.option("--catalog-path", type=click.Path(path_type=Path), help="Configured catalog JSON.")
@click.option("--state-path", type=click.Path(path_type=Path), help="State JSON (read-with-state).")
@click.option("--pr-url", help="Pull request the run is for; shown in the reports.")
@click.option("--stream", "streams", multiple=True, help="Only this stream of the configured catalog (repeatable).")
@click.option("--run-id", help="Session id (default: the current Unix time).")
@click.option(
    "--test-evaluation-mode",
    type=click.Choice(EVALUATION_MODES),
    default=EVALUATION_MODES[0],
    show_default=True,
    help="diagnostic: tests marked `diagnostic` report their findings instead of failing.",
)
@click.option(
    "--should-read-with-state",
    type=click.Choice(["true", "false"]),
    help="Also run the read tests with the state (default: true when --state-path is given).",
)
@click.option("--http-cache", is_flag=True, help="Answer the target's requests from the control's recording.")
@click.option("--disable-proxy", is_flag=True, help="No mitmproxy: no HTTP capture.")
@click.option(
    "--proxy-option", "proxy_options", multiple=True, metavar="KEY=VALUE", help="mitmproxy option, repeatable."
)
@click.option("--proxy-image", help="mitmproxy image with mitmdump on its PATH (the default is built locally).")
@click.option("--session-dir", type=click.Path(path_type=Path), help="Artifacts folder.")
@click.option("--execution-timeout", type=float, help="Seconds before a connector is killed (default 3600).")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def regression(
    connector_image: str,
    control_version: str,
    target_version: str,
    config_path: Path | None,
    catalog_path: Path | None,
    state_path: Path | None,
    pr_url: str | None,
    streams: tuple[str, ...],
    run_id: str | None,
    test_evaluation_mode: str,
    should_read_with_state: str | None,
    http_cache: bool,
    disable_proxy: bool,
    proxy_options: tuple[str, ...],
    proxy_image: str | None,
    session_dir: Path | None,
    execution_timeout: float | None,
    pytest_args: tuple[str, ...],
) -> None:
    """Run the regression suite on two versions of a connector image (control vs target).

    Writes report.html, report.md, report.json, duck.db and every artifact into the session
    folder (printed at the end). Exit status: pytest's (0 all passed, 1 a test failed, 4 bad options
    or an engine problem).
    """
    import pytest

    values = {
        "--connector-image": connector_image,
        "--control-version": control_version,
        "--target-version": target_version,
        "--config-path": config_path,
        "--catalog-path": catalog_path,
        "--state-path": state_path,
        "--pr-url": pr_url,
        "--run-id": run_id,
        "--test-evaluation-mode": test_evaluation_mode,
        "--should-read-with-state": should_read_with_state,
        "--session-dir": session_dir,
        "--execution-timeout": execution_timeout,
        "--proxy-image": proxy_image,
    }
    args = [f"{name}={value}" for name, value in values.items() if value is not None]
    args += [f"--stream={stream}" for stream in streams]
    args += [f"--proxy-option={option}" for option in proxy_options]
    args += [flag for flag, on in (("--http-cache", http_cache), ("--disable-proxy", disable_proxy)) if on]
    directory = suite_dir()
    # The suite is installed code: no cache folder written next to it, and its own rootdir.
    base = [str(directory), "-p", "no:cacheprovider", f"--rootdir={directory}"]
    signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM cleans up like Ctrl-C
    sys.exit(int(pytest.main([*base, *args, *pytest_args])))
