"""`live-tests regression`: the installed regression suite, run by pytest with the options passed through.

    live-tests regression --connector-image airbyte/source-faker --control-version 6.2.38 \\
        --target-version 7.2.1 --config-path config.json --catalog-path catalog.json [-- PYTEST ARGS]

The options are the suite's own table (live_tests.regression_tests.options.SUITE_OPTIONS): click's
options are built from it, and the suite checks the values; arguments after `--` go to pytest
unchanged (e.g. `-k read --junitxml report.xml`).
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import click

from live_tests.regression_tests.options import as_arguments, click_options
from live_tests.regression_tests.plugin import suite_dir


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run(pytest_args: tuple[str, ...], **values: Any) -> None:
    import pytest

    directory = suite_dir()
    # The suite is installed code: no cache folder written next to it, and its own rootdir.
    base = [str(directory), "-p", "no:cacheprovider", f"--rootdir={directory}"]
    signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM cleans up like Ctrl-C
    sys.exit(int(pytest.main([*base, *as_arguments(values), *pytest_args])))


regression = click.Command(
    "regression",
    callback=_run,
    params=[*click_options(), click.Argument(["pytest_args"], nargs=-1, type=click.UNPROCESSED)],
    context_settings={"ignore_unknown_options": True},
    help="""Run the regression suite on two versions of a connector image (control vs target).

    Writes report.html, report.md, report.json, duck.db and every artifact into the session
    folder (printed at the end). Exit status: pytest's (0 all passed, 1 a test failed, 4 bad options
    or an engine problem, 5 no test ran).
    """,
)
