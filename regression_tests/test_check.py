"""`check`: whether the connector accepts the config and reaches its source."""

from __future__ import annotations

from live_tests.regression_tests.outcomes import Judge
from live_tests.regression_tests.runs import CheckRun


def test_check_succeeds(judge: Judge, check: CheckRun) -> None:
    """The target reports the connection status SUCCEEDED with this config where the control does.

    Judged on the CONNECTION_STATUS each version printed (a connector exits 0 on a failed check):
    a control whose check did not succeed makes the test inconclusive, not failed.
    """
    judge(check.connection_status())
