"""`discover`: the streams and schemas the connector offers."""

from __future__ import annotations

import pytest

from live_tests.compare import compare_catalogs
from live_tests.regression_tests.outcomes import judge, require_success
from live_tests.regression_tests.session import ExecutionPair, RegressionSession
from live_tests.regression_tests.validation import validate_catalog


def test_catalogs_are_the_same(
    request: pytest.FixtureRequest, regression_session: RegressionSession, discover_pair: ExecutionPair
) -> None:
    """Both versions discover the same streams with the same schemas, primary keys, cursors and sync modes.

    Every difference is reported (streams or properties added or removed, types and nullability
    changed, primary key or cursor changed, sync modes removed); in strict mode any of them fails.
    """
    require_success(request, discover_pair)
    judge(request, compare_catalogs(regression_session.query(), discover_pair.control_key, discover_pair.target_key))


def test_discovered_catalog_is_valid(
    request: pytest.FixtureRequest, regression_session: RegressionSession, discover_pair: ExecutionPair
) -> None:
    """Target alone: stream names are unique, each json_schema is a valid JSON schema, and the
    source-defined primary keys and default cursor fields are properties of their stream's schema."""
    require_success(request, discover_pair)
    catalog = regression_session.last_message("catalog", "catalog", discover_pair.target_key)
    judge(request, validate_catalog(catalog, " ".join(discover_pair.target_key)))
