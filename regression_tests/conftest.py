"""The regression suite's pytest wiring: the plugin (options, session start and end), the tests' fixtures.

    pytest regression_tests --connector-image=airbyte/source-faker --control-version=6.2.38 \\
        --target-version=7.2.1 --config-path=config.json --catalog-path=configured_catalog.json

The session's start and end live in `plugin.py` (the `pytest11` entry point `live_tests`, so that
`pytest --pyargs live_tests.regression_tests` works for a pip user); here the plugin is registered
when the entry point did not load it, and activated: collecting the suite means running it. At the
end of the session report.html / report.md / report.json are written into the session folder, the
secrets of the config are masked in every file of it (duck.db included), and the folder's path is printed.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from live_tests.models import Command
from live_tests.regression_tests import plugin
from live_tests.regression_tests.outcomes import SESSION_KEY, Judge, record_report
from live_tests.regression_tests.runs import CheckRun, DiscoverRun, ReadRun, SpecRun
from live_tests.regression_tests.session import ExecutionPair, RegressionSession


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # Installed, the entry point loaded the plugin already; from a bare checkout it is registered here.
    if not pluginmanager.is_registered(plugin) and not pluginmanager.is_blocked(plugin.PLUGIN_NAME):
        pluginmanager.register(plugin, plugin.PLUGIN_NAME)


def pytest_configure(config: pytest.Config) -> None:
    plugin.activate(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "read_command" in metafunc.fixturenames:
        metafunc.parametrize(
            "read_command", [Command.READ, Command.READ_WITH_STATE], ids=lambda c: c.value, scope="session"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, None, None]:
    outcome = yield
    record_report(item, outcome.get_result(), call)


# --- fixtures: a test is `judge(<run>.<comparison>())` ------------------------------------------


@pytest.fixture(scope="session")
def regression_session(request: pytest.FixtureRequest) -> RegressionSession:
    return request.config.stash[SESSION_KEY]


@pytest.fixture
def judge(request: pytest.FixtureRequest) -> Judge:
    """`judge(result)`: record a comparison or validation, fail the test on its findings."""
    return Judge(request.node)


def _pair(session: RegressionSession, command: Command) -> ExecutionPair:
    reason = session.skip_reason(command)
    if reason is not None:
        pytest.skip(reason)
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
