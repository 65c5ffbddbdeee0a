"""`read` and `read-with-state`: the records, states and stream statuses of a sync.

Every test runs for `read` and, with --should-read-with-state (the default when --state-path is
given), for `read-with-state` too. Primary keys come from the configured catalog (`primary_key`,
else the stream's `source_defined_primary_key`); streams without one are compared as multisets.
"""

from __future__ import annotations

import pytest

from live_tests.compare import compare_inferred_schemas, compare_states, compare_traces
from live_tests.regression_tests import record_views
from live_tests.regression_tests.outcomes import judge, require_success
from live_tests.regression_tests.read_validation import (
    validate_primary_keys_not_null,
    validate_record_schemas,
    validate_states,
    validate_stream_statuses,
)
from live_tests.regression_tests.session import ExecutionPair, RegressionSession

# --- control vs target -------------------------------------------------------------------------


def test_record_count_per_stream(
    request: pytest.FixtureRequest, regression_session: RegressionSession, read_pair: ExecutionPair
) -> None:
    """Both versions read successfully and emit the same number of records in every stream."""
    require_success(request, read_pair)
    judge(request, record_views.counts(regression_session.records_comparison(read_pair.command)))


def test_all_control_primary_keys_in_target(
    request: pytest.FixtureRequest, regression_session: RegressionSession, read_pair: ExecutionPair
) -> None:
    """Every primary key the control emits, the target emits too (streams with a primary key)."""
    require_success(request, read_pair)
    judge(request, record_views.primary_keys(regression_session.records_comparison(read_pair.command)))


@pytest.mark.diagnostic
def test_records_are_the_same(
    request: pytest.FixtureRequest, regression_session: RegressionSession, read_pair: ExecutionPair
) -> None:
    """Records with the same primary key are equal field by field (nested fields included; `emitted_at`
    is not compared); streams without a primary key hold the same records, compared as multisets.
    Also reports keys only the target emits and new duplicate keys."""
    require_success(request, read_pair)
    judge(request, record_views.content(regression_session.records_comparison(read_pair.command)))


@pytest.mark.diagnostic
def test_inferred_schemas_are_the_same(
    request: pytest.FixtureRequest, regression_session: RegressionSession, read_pair: ExecutionPair
) -> None:
    """The schema inferred from the records of each stream is the same: the same top-level fields,
    with the same JSON types and the same nullability."""
    require_success(request, read_pair)
    judge(request, compare_inferred_schemas(regression_session.query(), read_pair.control_key, read_pair.target_key))


@pytest.mark.diagnostic
def test_states_are_the_same(
    request: pytest.FixtureRequest, regression_session: RegressionSession, read_pair: ExecutionPair
) -> None:
    """Both versions emit states for the same streams, of the same type, and with the same final value
    (key order aside): a target whose state the control could not resume from is a regression."""
    require_success(request, read_pair)
    judge(request, compare_states(regression_session.query(), read_pair.control_key, read_pair.target_key))


def test_stream_statuses_and_errors_are_the_same(
    request: pytest.FixtureRequest, regression_session: RegressionSession, read_pair: ExecutionPair
) -> None:
    """Each stream goes through the same statuses on both versions, and the target emits no ERROR
    trace the control does not."""
    require_success(request, read_pair)
    judge(request, compare_traces(regression_session.query(), read_pair.control_key, read_pair.target_key))


# --- target alone ------------------------------------------------------------------------------


def test_records_conform_to_schema(
    request: pytest.FixtureRequest, regression_session: RegressionSession, read_pair: ExecutionPair
) -> None:
    """Target alone: every record validates against its stream's JSON schema in the configured catalog
    (streams above 100,000 records: a reproducible random sample of 100,000), and no record belongs
    to a stream that is not configured."""
    require_success(request, read_pair)
    con = regression_session.query()
    judge(request, validate_record_schemas(con, read_pair.target_key, regression_session.configured_streams()))


def test_primary_keys_are_not_null(
    request: pytest.FixtureRequest, regression_session: RegressionSession, read_pair: ExecutionPair
) -> None:
    """Target alone: no record of a stream with a primary key has a null or missing key field."""
    require_success(request, read_pair)
    con = regression_session.query()
    judge(request, validate_primary_keys_not_null(con, read_pair.target_key, regression_session.primary_keys()))


def test_incremental_streams_emit_state(
    request: pytest.FixtureRequest, regression_session: RegressionSession, read_pair: ExecutionPair
) -> None:
    """Target alone: every stream read incrementally gets at least one STATE message."""
    require_success(request, read_pair)
    con = regression_session.query()
    judge(request, validate_states(con, read_pair.target_key, regression_session.configured_streams()))


def test_stream_statuses_are_complete(
    request: pytest.FixtureRequest, regression_session: RegressionSession, read_pair: ExecutionPair
) -> None:
    """Target alone: every configured stream reports STARTED, then RUNNING any number of times, then COMPLETE."""
    require_success(request, read_pair)
    con = regression_session.query()
    judge(request, validate_stream_statuses(con, read_pair.target_key, regression_session.configured_streams()))
