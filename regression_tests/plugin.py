"""The regression suite as a pytest plugin: its options, the session's start and end, SIGTERM, a heartbeat.

Installed as the `pytest11` entry point `live_tests`, so that a pip user runs the suite without a
checkout:

    pytest --pyargs live_tests.regression_tests --connector-image=… --control-version=… --target-version=…

A checkout without the entry point gets it from regression_tests/conftest.py, which registers it
unless it is already loaded. Loaded into every pytest run of the environment, it does nothing unless
the suite's options are given or the suite is collected, and imports nothing heavy until then.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from live_tests.regression_tests.options import add_pytest_options, option_values

PLUGIN_NAME = "live_tests"
SUITE_PACKAGE = "live_tests.regression_tests"
HEARTBEAT_S = 10.0
ACTIVE_KEY = pytest.StashKey[bool]()
_LOCK_KEY = pytest.StashKey[Path]()
_HEARTBEAT_KEY = pytest.StashKey["Heartbeat"]()
_SIGTERM_KEY = pytest.StashKey[Any]()
_REQUIRED = ("connector_image", "control_version", "target_version")


def suite_dir() -> Path:
    """Where the installed suite lives (the package `live_tests.regression_tests`)."""
    return Path(__file__).resolve().parent


def suite_requested(config: pytest.Config) -> bool:
    """The suite's options are given, or an argument names the suite (its folder, a file in it, the package)."""
    if any(config.getoption(dest, None) for dest in _REQUIRED):
        return True
    suite = suite_dir()
    for arg in config.args:
        target = arg.split("::")[0]
        if target == SUITE_PACKAGE or target.startswith(SUITE_PACKAGE + "."):
            return True
        path = Path(target).resolve()
        if path == suite or suite in path.parents:
            return True
    return False


def activate(config: pytest.Config) -> None:
    """Set the session up from the options (once; a pytest.UsageError names the bad option)."""
    if config.stash.get(ACTIVE_KEY, False):
        return
    config.stash[ACTIVE_KEY] = True
    config.addinivalue_line(
        "markers",
        "diagnostic: in --test-evaluation-mode=diagnostic the test's findings are reported, not failed on",
    )
    if config.option.help or getattr(config.option, "version", False):
        return
    from live_tests.regression_tests.outcomes import SESSION_KEY
    from live_tests.regression_tests.session import RegressionSession
    from live_tests.regression_tests.settings import parse_settings

    config.stash[SESSION_KEY] = RegressionSession(parse_settings(option_values(config)))


def _session(config: pytest.Config) -> Any:
    """The RegressionSession of this run, when the plugin is active (else None)."""
    if not config.stash.get(ACTIVE_KEY, False):
        return None
    from live_tests.regression_tests.outcomes import SESSION_KEY

    return config.stash.get(SESSION_KEY, None)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def pytest_addoption(parser: pytest.Parser) -> None:
    add_pytest_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    if suite_requested(config):
        activate(config)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    regression = _session(config)
    if regression is None or config.option.collectonly:
        return
    from live_tests.docker_engine import EngineError
    from live_tests.regression_tests import session_lock

    config.stash[_LOCK_KEY] = session_lock.acquire(regression.session_dir)
    # Plain `pytest` dies on SIGTERM without cleanup: make it Ctrl-C, which removes the
    # containers and ends with the report and the scrub (interrupted).
    if threading.current_thread() is threading.main_thread():
        config.stash[_SIGTERM_KEY] = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        regression.start()
    except EngineError as exc:
        session_lock.release(config.stash[_LOCK_KEY])
        raise pytest.UsageError(str(exc)) from None
    heartbeat = Heartbeat.for_output(session)
    if heartbeat is not None:
        heartbeat.activity = lambda: regression.activity  # the executions a test waits for
        config.stash[_HEARTBEAT_KEY] = heartbeat
        heartbeat.start()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Plan the commands the tests left after -k and deselection need: the first of them runs them all."""
    regression = _session(session.config)
    if regression is None or not regression.started:
        return
    from live_tests.regression_tests.schedule import commands_used

    regression.plan(commands_used(session.items))


def pytest_runtest_setup(item: pytest.Item) -> None:
    heartbeat = item.config.stash.get(_HEARTBEAT_KEY, None)
    if heartbeat is not None:
        heartbeat.doing = f"running {item.nodeid}"


def pytest_runtest_teardown(item: pytest.Item) -> None:
    heartbeat = item.config.stash.get(_HEARTBEAT_KEY, None)
    if heartbeat is not None:
        heartbeat.finished += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    regression = _session(config)
    if regression is None or not regression.started:
        return
    heartbeat = config.stash.get(_HEARTBEAT_KEY, None)
    if heartbeat is not None:
        heartbeat.doing = "writing the reports, masking secrets"
    from live_tests.regression_tests import session_lock
    from live_tests.regression_tests.outcomes import RESULTS_KEY
    from live_tests.regression_tests.wrap_up import SUMMARY_KEY, finish_session

    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the scrub must not be cut short
    try:
        results = list(config.stash.get(RESULTS_KEY, {}).values())
        summary = config.stash[SUMMARY_KEY] = finish_session(
            regression, results, interrupted=interrupted, expected_tests=session.testscollected
        )
        if summary.undecided and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # inconclusive is not a pass
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        lock = config.stash.get(_LOCK_KEY, None)
        if lock is not None:
            session_lock.release(lock)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not terminalreporter.config.stash.get(ACTIVE_KEY, False):
        return
    from live_tests.regression_tests.wrap_up import SUMMARY_KEY, terminal_lines

    summary = terminalreporter.config.stash.get(SUMMARY_KEY, None)
    if summary is None:
        return
    terminalreporter.write_sep("-", "live-tests")
    for line in terminal_lines(summary):
        terminalreporter.write_line(line)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_SIGTERM_KEY, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)


class Heartbeat:
    """A line every HEARTBEAT_S seconds on stdout when it is not a terminal (CI logs): which test runs, for how long.

    It writes to its own copy of stdout: pytest captures fd 1 while a test runs.
    """

    def __init__(self, fd: int, session: pytest.Session, interval_s: float = HEARTBEAT_S) -> None:
        self._fd, self._session, self._interval = fd, session, interval_s
        self.doing = "collecting"
        self.activity: Callable[[], str | None] = lambda: None
        self.finished = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-tests-heartbeat", daemon=True)
        self._started = time.monotonic()

    @classmethod
    def for_output(cls, session: pytest.Session) -> Heartbeat | None:
        capture = session.config.pluginmanager.getplugin("capturemanager")
        try:
            if capture is not None:
                with capture.global_and_fixture_disabled():  # fd 1 is pytest's until then
                    fd = os.dup(1)
            else:
                fd = os.dup(1)
        except OSError:
            return None
        if os.isatty(fd):
            os.close(fd)
            return None
        return cls(fd, session)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self._fd)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            elapsed = int(time.monotonic() - self._started)
            activity = f" {waiting};" if (waiting := self.activity()) else ""
            line = (
                f"[live-tests {time.strftime('%H:%M:%S')}] {elapsed}s: {self.doing};{activity}"
                f" {self.finished} of {self._session.testscollected} test(s) done\n"
            )
            writer = self._session.config.get_terminal_writer()
            if writer.width_of_current_line:
                line = "\n" + line
            try:
                os.write(self._fd, line.encode("utf-8", "replace"))
            except OSError:
                return
