"""`read` and `read-with-state`: the records, states and stream statuses of a sync.

Every test runs for `read` and, with --should-read-with-state (the default when --state-path is
given), for `read-with-state` too. Primary keys come from the configured catalog (`primary_key`,
else the stream's `source_defined_primary_key`); streams without one are compared as multisets.
"""

from __future__ import annotations

import pytest

from live_tests.regression_tests.outcomes import Judge
from live_tests.regression_tests.runs import ReadRun

# --- control vs target -------------------------------------------------------------------------


def test_record_count_per_stream(judge: Judge, read: ReadRun) -> None:
    """Both versions read successfully and emit the same number of records in every stream."""
    judge(read.record_counts())


def test_all_control_primary_keys_in_target(judge: Judge, read: ReadRun) -> None:
    """Every primary key the control emits, the target emits too (streams with a primary key)."""
    judge(read.primary_keys())


@pytest.mark.diagnostic
def test_records_are_the_same(judge: Judge, read: ReadRun) -> None:
    """Records with the same primary key are equal field by field (nested fields included; `emitted_at`
    is not compared); streams without a primary key hold the same records, compared as multisets.
    Also reports keys only the target emits and new duplicate keys."""
    judge(read.records_content())


@pytest.mark.diagnostic
def test_inferred_schemas_are_the_same(judge: Judge, read: ReadRun) -> None:
    """The schema inferred from the records of each stream is the same: the same top-level fields,
    with the same JSON types and the same nullability."""
    judge(read.inferred_schemas())


@pytest.mark.diagnostic
def test_states_are_the_same(judge: Judge, read: ReadRun) -> None:
    """Both versions emit states for the same streams, of the same type, and with the same final value
    (key order aside): a target whose state the control could not resume from is a regression."""
    judge(read.states())


def test_stream_statuses_and_errors_are_the_same(judge: Judge, read: ReadRun) -> None:
    """Each stream goes through the same statuses on both versions, and the target emits no ERROR
    trace the control does not."""
    judge(read.traces())


def test_no_new_non_protocol_output(judge: Judge, read: ReadRun) -> None:
    """The target prints no stdout lines that are not Airbyte messages where the control printed none
    (more of them than the control is listed)."""
    judge(read.invalid_lines())


# --- target alone ------------------------------------------------------------------------------


def test_records_conform_to_schema(judge: Judge, read: ReadRun) -> None:
    """Target alone: every record validates against its stream's JSON schema in the configured catalog
    (streams above 100,000 records: a reproducible random sample of 100,000), and no record belongs
    to a stream that is not configured."""
    judge(read.record_schemas())


def test_primary_keys_are_not_null(judge: Judge, read: ReadRun) -> None:
    """Target alone: no record of a stream with a primary key has a null or missing key field."""
    judge(read.primary_keys_not_null())


def test_incremental_streams_emit_state(judge: Judge, read: ReadRun) -> None:
    """Target alone: every stream read incrementally gets at least one STATE message."""
    judge(read.states_emitted())


def test_stream_statuses_are_complete(judge: Judge, read: ReadRun) -> None:
    """Target alone: every configured stream reports STARTED, then RUNNING any number of times, then COMPLETE."""
    judge(read.stream_statuses())
