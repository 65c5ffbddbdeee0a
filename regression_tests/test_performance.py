"""Performance: how fast and how heavy the target runs each command, compared with the control.

Every command that ran is compared. Slower, heavier or chattier beyond `--perf-tolerance` (and absolute
floors, so that short runs are not noise) is listed as a change: it never fails the run on its own.
"""

from __future__ import annotations

import pytest

from live_tests.models import Command
from live_tests.regression_tests.outcomes import Judge
from live_tests.regression_tests.runs import CommandRun, command_run
from live_tests.regression_tests.session import RegressionSession


@pytest.fixture(scope="session", params=list(Command), ids=lambda c: c.value)
def any_command(regression_session: RegressionSession, request: pytest.FixtureRequest) -> CommandRun:
    """Each command in turn (the test's parameter), on both versions."""
    return command_run(regression_session, request.param)


@pytest.mark.diagnostic
def test_performance_is_comparable(judge: Judge, any_command: CommandRun) -> None:
    """The target is not slower (wall time, time to first record, records/s), does not use more peak memory
    or CPU time, and makes no more HTTP calls per record than the control, beyond `--perf-tolerance`
    (default 25%) and the floors (2 s, 20 MiB, 0.5 s of CPU, 5 calls). Figures a side lacks are noted."""
    judge(any_command.performance())
