"""HTTP: what control and target asked of the APIs through the proxy, for `read` and `read-with-state`."""

from __future__ import annotations

import pytest

from live_tests.regression_tests.outcomes import Judge
from live_tests.regression_tests.runs import ReadRun


@pytest.mark.diagnostic
def test_http_traffic_is_the_same(judge: Judge, read: ReadRun) -> None:
    """Both versions make the same calls: the same endpoints (method, host, path with ids folded), request
    counts within a tolerance, no new error statuses, the same query parameters and values, no more
    retries, the same pagination and no more calls per record. Under `--http-fault` the same faults hit
    both versions alike, so this also shows whether the target recovers as well as the control."""
    judge(read.http_calls())
