"""The regression suite's pytest wiring: options, the session's lazy executions, report and scrub.

    pytest regression_tests --connector-image=airbyte/source-faker --control-version=6.2.38 \\
        --target-version=7.2.1 --config-path=config.json --catalog-path=configured_catalog.json

At the end of the session: report.html / report.md / report.json are written into the session
folder, the secrets of the config are masked in every file of it (duck.db included), and the
folder's path is printed.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from live_tests.docker_engine import EngineError
from live_tests.models import Command
from live_tests.regression_tests.options import add_pytest_options, option_values
from live_tests.regression_tests.outcomes import RESULTS_KEY, SESSION_KEY, Judge, record_report
from live_tests.regression_tests.runs import CheckRun, DiscoverRun, ReadRun, SpecRun
from live_tests.regression_tests.session import ExecutionPair, RegressionSession
from live_tests.regression_tests.settings import parse_settings
from live_tests.regression_tests.wrap_up import SUMMARY_KEY, finish_session, terminal_lines


def pytest_addoption(parser: pytest.Parser) -> None:
    add_pytest_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "diagnostic: in --test-evaluation-mode=diagnostic the test's findings are reported, not failed on",
    )
    if config.option.help or getattr(config.option, "version", False):
        return
    config.stash[SESSION_KEY] = RegressionSession(parse_settings(option_values(config)))


def pytest_sessionstart(session: pytest.Session) -> None:
    regression = session.config.stash.get(SESSION_KEY, None)
    if regression is None or session.config.option.collectonly:
        return
    try:
        regression.start()
    except EngineError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "read_command" in metafunc.fixturenames:
        metafunc.parametrize(
            "read_command", [Command.READ, Command.READ_WITH_STATE], ids=lambda c: c.value, scope="session"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, None, None]:
    outcome = yield
    record_report(item, outcome.get_result(), call)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    regression = session.config.stash.get(SESSION_KEY, None)
    if regression is None or not regression.started:
        return
    results = list(session.config.stash.get(RESULTS_KEY, {}).values())
    session.config.stash[SUMMARY_KEY] = finish_session(
        regression,
        results,
        interrupted=exitstatus == pytest.ExitCode.INTERRUPTED,
        expected_tests=session.testscollected,
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    summary = terminalreporter.config.stash.get(SUMMARY_KEY, None)
    if summary is None:
        return
    terminalreporter.write_sep("-", "live-tests")
    for line in terminal_lines(summary):
        terminalreporter.write_line(line)


# --- fixtures: a test is `judge(<run>.<comparison>())` ------------------------------------------


@pytest.fixture(scope="session")
def regression_session(request: pytest.FixtureRequest) -> RegressionSession:
    return request.config.stash[SESSION_KEY]


@pytest.fixture
def judge(request: pytest.FixtureRequest) -> Judge:
    """`judge(result)`: record a comparison or validation, fail the test on its findings."""
    return Judge(request.node)


def _pair(session: RegressionSession, command: Command) -> ExecutionPair:
    missing = session.settings.inputs_missing(command)
    if missing:
        pytest.skip(f"not run: {missing}")
    if command is Command.READ_WITH_STATE and not session.settings.should_read_with_state:
        pytest.skip("not run: --should-read-with-state=false (the default without --state-path)")
    return session.pair(command)


@pytest.fixture(scope="session")
def spec(regression_session: RegressionSession) -> SpecRun:
    return SpecRun(regression_session, _pair(regression_session, Command.SPEC))


@pytest.fixture(scope="session")
def check(regression_session: RegressionSession) -> CheckRun:
    return CheckRun(regression_session, _pair(regression_session, Command.CHECK))


@pytest.fixture(scope="session")
def discover(regression_session: RegressionSession) -> DiscoverRun:
    return DiscoverRun(regression_session, _pair(regression_session, Command.DISCOVER))


@pytest.fixture(scope="session")
def read(regression_session: RegressionSession, read_command: Command) -> ReadRun:
    """`read` or `read-with-state` (the test's `read_command` parameter) on both versions."""
    return ReadRun(regression_session, _pair(regression_session, read_command))
