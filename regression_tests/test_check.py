"""`check`: whether the connector accepts the config and reaches its source."""

from __future__ import annotations

import pytest

from live_tests.models import ExecutionKey
from live_tests.regression_tests.outcomes import judge, require_success
from live_tests.regression_tests.session import ExecutionPair, RegressionSession
from live_tests.regression_tests.validation import Validation


def _status(session: RegressionSession, key: ExecutionKey) -> tuple[str | None, str | None]:
    if not session.has_table("connection_status"):
        return None, None
    row = (
        session.query()
        .execute(
            "SELECT status, message FROM connection_status WHERE connector = ? AND version = ? AND command = ?"
            " ORDER BY seq DESC LIMIT 1",
            list(key),
        )
        .fetchone()
    )
    return (row[0], row[1]) if row else (None, None)


def test_check_succeeds(
    request: pytest.FixtureRequest, regression_session: RegressionSession, check_pair: ExecutionPair
) -> None:
    """Both versions run `check` successfully and report the connection status SUCCEEDED with this config."""
    require_success(request, check_pair)
    result = Validation("Connection check", f"{' '.join(check_pair.control_key)} vs {' '.join(check_pair.target_key)}")
    for side, key in (("control", check_pair.control_key), ("target", check_pair.target_key)):
        status, message = _status(regression_session, key)
        detail = f" ({message})" if message else ""
        result.overview.append(f"{side}: {status or 'no CONNECTION_STATUS message'}{detail}")
        if status != "SUCCEEDED":
            result.add(
                "check_not_succeeded",
                f"{side} connection status is {status or 'missing'}{f': {message}' if message else ''}",
                control=status if side == "control" else None,
                target=status if side == "target" else None,
            )
    judge(request, result)
