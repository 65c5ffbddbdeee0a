"""The suite's options, declared once: pytest's `addoption` and `live-tests regression`'s click options are both
built from `SUITE_OPTIONS`.

This module imports nothing heavy: the CLI reads the table without loading the suite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from live_tests.verdicts import EvaluationMode

if TYPE_CHECKING:
    import click
    import pytest

DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_PERF_TOLERANCE = 0.25


class Kind(StrEnum):
    TEXT = "text"
    PATH = "path"
    NUMBER = "number"  # a float
    FLAG = "flag"  # on when given
    SWITCH = "switch"  # --name / --no-name, `default` when neither is given
    CHOICE = "choice"


@dataclass(frozen=True)
class SuiteOption:
    name: str  # e.g. "--connector-image"
    help: str
    kind: Kind = Kind.TEXT
    default: Any = None  # the suite's default (None: not given)
    choices: tuple[str, ...] = ()
    repeatable: bool = False
    required: bool = False  # checked by the suite; click also marks it required
    metavar: str | None = None
    dest_name: str | None = None  # pytest dest when the plain one could clash with another plugin's

    @property
    def dest(self) -> str:
        return self.dest_name or self.name.removeprefix("--").replace("-", "_")


SUITE_OPTIONS: tuple[SuiteOption, ...] = (
    SuiteOption("--connector-image", "Connector image without tag, e.g. airbyte/source-faker.", required=True),
    SuiteOption("--control-version", "Tag of the version that ships today, e.g. 6.2.38.", required=True),
    SuiteOption("--target-version", "Tag of the candidate version, e.g. 7.2.1.", required=True),
    SuiteOption("--config-path", "Connector config JSON (check, discover, read).", Kind.PATH),
    SuiteOption("--catalog-path", "Configured catalog JSON (read).", Kind.PATH),
    SuiteOption("--state-path", "State JSON (read-with-state).", Kind.PATH),
    SuiteOption("--pr-url", "Pull request the run is for; shown in the reports."),
    SuiteOption(
        "--stream",
        "Only this stream of the configured catalog (repeatable).",
        repeatable=True,
        dest_name="live_tests_streams",
    ),
    SuiteOption("--run-id", "Session id (default: the Unix time and a random suffix)."),
    SuiteOption(
        "--test-evaluation-mode",
        "strict: any difference fails; diagnostic: tests marked `diagnostic` report their findings"
        " as 'passed with findings' instead of failing.",
        Kind.CHOICE,
        default=EvaluationMode.STRICT.value,
        choices=tuple(m.value for m in EvaluationMode),
    ),
    SuiteOption(
        "--should-read-with-state",
        "Also run the read tests with --state-path (default: true when a state path is given).",
        Kind.CHOICE,
        choices=("true", "false"),
    ),
    SuiteOption(
        "--noise-baseline",
        "Run the control's reads twice and set aside (list, never fail on) every path that differs between"
        " the two runs or holds the run's own clock; --no-noise-baseline runs the control once (clock-stamped"
        " paths are still set aside).",
        Kind.SWITCH,
        default=True,
    ),
    SuiteOption(
        "--ignore-field",
        "Leave this field out of the record, state and schema comparisons, repeatable: STREAM:JSONPATH,"
        " `*` for any stream, e.g. users:$.updated_at or '*:$.meta.synced_at'.",
        repeatable=True,
        metavar="STREAM:JSONPATH",
    ),
    SuiteOption(
        "--accepted-diffs",
        "YAML (or .json) file of findings accepted for this version pair: shown as accepted, they do not fail.",
        Kind.PATH,
        metavar="FILE",
    ),
    SuiteOption(
        "--update-accepted-diffs",
        "Write every finding of this run into the --accepted-diffs file (created if missing).",
        Kind.FLAG,
        default=False,
    ),
    SuiteOption(
        "--http-cache",
        "Answer the target's HTTP requests from the control's recording where possible.",
        Kind.FLAG,
        default=False,
    ),
    SuiteOption("--disable-proxy", "No mitmproxy: no HTTP capture.", Kind.FLAG, default=False),
    SuiteOption(
        "--http-fault",
        "HTTP fault the proxy injects into every execution alike, repeatable: latency=MS,"
        " status=429[:retry-after=S][:every=N], status=500|503[:every=N], reset[:every=N], truncate[:every=N],"
        " invalid-json[:every=N] (see the README).",
        repeatable=True,
        metavar="SCENARIO",
    ),
    SuiteOption(
        "--proxy-option",
        "mitmproxy option for every execution's proxy, repeatable, e.g. map_remote='|https://a|http://b'.",
        repeatable=True,
        metavar="KEY=VALUE",
    ),
    SuiteOption("--proxy-image", "mitmproxy image with mitmdump on its PATH (the default is built locally)."),
    SuiteOption("--session-dir", "Artifacts folder (default: <tmp>/live-tests/session_<run-id>).", Kind.PATH),
    SuiteOption(
        "--execution-timeout",
        f"Seconds before a connector is killed (default {DEFAULT_TIMEOUT_S:g}).",
        Kind.NUMBER,
        default=DEFAULT_TIMEOUT_S,
    ),
    SuiteOption(
        "--memory-limit",
        "Memory limit of each connector container, e.g. 512m or 2g; going over it is reported as out of memory.",
        metavar="SIZE",
    ),
    SuiteOption("--cpus", "CPUs each connector container may use, e.g. 1.5 (as docker run --cpus).", metavar="N"),
    SuiteOption(
        "--max-parallel",
        "Executions run at the same time (default: the number of CPU cores, at least 2).",
        Kind.NUMBER,
        metavar="N",
    ),
    SuiteOption(
        "--perf-tolerance",
        f"How much slower, hungrier or chattier (HTTP calls per record) the target may be before"
        f" test_performance_is_comparable flags it, as a fraction (default {DEFAULT_PERF_TOLERANCE:g}, a quarter).",
        Kind.NUMBER,
        default=DEFAULT_PERF_TOLERANCE,
        metavar="FRACTION",
    ),
)


def add_pytest_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("live-tests", "live-tests regression suite (control vs target connector versions)")
    for option in SUITE_OPTIONS:
        kwargs: dict[str, Any] = {"help": option.help, "dest": option.dest}
        if option.kind is Kind.SWITCH:
            off = "--no-" + option.name.removeprefix("--")
            group.addoption(off, action="store_false", dest=option.dest, help=f"See {option.name}.")
            kwargs |= {"action": "store_true", "default": bool(option.default)}
        elif option.kind is Kind.FLAG:
            kwargs |= {"action": "store_true", "default": bool(option.default)}
        elif option.repeatable:
            kwargs |= {"action": "append", "default": []}
        else:
            kwargs["default"] = option.default
        if option.kind is Kind.CHOICE:
            kwargs["choices"] = list(option.choices)
        if option.kind is Kind.NUMBER:
            kwargs["type"] = float
        if option.metavar:
            kwargs["metavar"] = option.metavar
        group.addoption(option.name, **kwargs)


def option_values(config: pytest.Config) -> dict[str, Any]:
    """dest -> value of every suite option, as pytest parsed them."""
    return {option.dest: config.getoption(option.dest) for option in SUITE_OPTIONS}


def click_options() -> list[click.Option]:
    """The same options for click. No defaults: what is not given is left to the suite."""
    import click

    options = []
    for option in SUITE_OPTIONS:
        kwargs: dict[str, Any] = {"help": option.help, "required": option.required, "metavar": option.metavar}
        declaration = option.name
        if option.kind is Kind.SWITCH:
            declaration = f"{option.name}/--no-{option.name.removeprefix('--')}"
            kwargs["default"] = None  # neither given: the suite's default
        elif option.kind is Kind.FLAG:
            kwargs["is_flag"] = True
        elif option.kind is Kind.CHOICE:
            kwargs["type"] = click.Choice(option.choices)
        elif option.kind is Kind.NUMBER:
            kwargs["type"] = float
        elif option.kind is Kind.PATH:
            kwargs["type"] = click.Path()
        if option.repeatable:
            kwargs["multiple"] = True
        if option.default not in (None, False):
            kwargs["help"] += f"  [suite default: {option.default}]" if "default" not in option.help else ""
        options.append(click.Option([declaration], **{k: v for k, v in kwargs.items() if v is not None}))
    return options


def as_arguments(values: Mapping[str, Any]) -> list[str]:
    """Click's parsed values (by click parameter name) back into suite arguments for pytest."""
    args: list[str] = []
    for option in SUITE_OPTIONS:
        value = values.get(option.name.removeprefix("--").replace("-", "_"))
        if option.kind is Kind.SWITCH:
            args += [] if value is None else [option.name if value else f"--no-{option.name.removeprefix('--')}"]
        elif option.kind is Kind.FLAG:
            args += [option.name] if value else []
        elif option.repeatable:
            args += [f"{option.name}={item}" for item in _items(value)]
        elif value is not None:
            args.append(f"{option.name}={value}")
    return args


def _items(value: Any) -> Sequence[Any]:
    return () if value is None else tuple(value)
