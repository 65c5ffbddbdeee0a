"""Compare the records of control and target, stream by stream, entirely in DuckDB.

Streams with a primary key: records are paired by key (and occurrence, so duplicate keys pair in
order) -> missing keys, extra keys, and for each pair the field paths that differ. Streams without
one: records are compared as multisets. Each step is a function over scratch tables: it takes the
tables it needs and returns the one it made.

    number_records (c, t) -> pair_records -> keyed_field_diffs         (record_pairing)
                                         \\-> multiset_differences      (record_multiset)
    -> outcomes -> stream_stats, field_diff_counts, examples            (record_stats)
    -> stream_findings                                                  (record_findings)

Equality is decided in tiers so only records that really differ pay for the detailed diff (see
record_pairing and record_multiset). Ignored paths are left out from tier 2 on; a field null on
one side and absent on the other is its own, non-breaking, kind of change.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from live_tests.compare.diff import ExecutionKey
from live_tests.compare.ignores import RECORDS, IgnoredPath, IgnoreRules
from live_tests.compare.record_findings import stream_findings
from live_tests.compare.record_multiset import multiset_differences
from live_tests.compare.record_pairing import key_sql, keyed_field_diffs, number_records, pair_records
from live_tests.compare.record_results import (
    FieldDiffCount,
    PrimaryKeys,
    RecordsComparison,
    StreamRecordsDiff,
    key_paths,
)
from live_tests.compare.record_sides import Sides
from live_tests.compare.record_stats import examples, field_diff_counts, outcomes, stream_stats, top_level_counts
from live_tests.sql import Scratch, both_params

__all__ = ["FieldDiffCount", "PrimaryKeys", "RecordsComparison", "StreamRecordsDiff", "compare_records"]


def compare_records(
    con: duckdb.DuckDBPyConnection,
    control: ExecutionKey,
    target: ExecutionKey,
    primary_keys: PrimaryKeys | None = None,
    *,
    ignored: Sequence[IgnoredPath] = (),
    max_examples: int = 20,
) -> RecordsComparison:
    """Compare the records of two executions per stream.

    `primary_keys`: stream -> key paths (from the configured catalog); streams not listed, or
    with an empty key, are compared as multisets. `ignored`: paths into the record data left out
    of the comparison, with everything under them (those that apply to records end up in
    `result.ignored`). `emitted_at` is never compared (it is not part of the record data).
    """
    keys = key_paths(primary_keys)
    rules = IgnoreRules(con, ignored, RECORDS)
    result = RecordsComparison(control, target, ignored=rules.applied)
    with Scratch(con) as scratch:
        sides = Sides(con, scratch, both_params(control, target), rules)
        pairing_key = key_sql(keys)
        numbered_c, numbered_t = number_records(sides, "c", pairing_key), number_records(sides, "t", pairing_key)
        pairs = pair_records(sides, numbered_c, numbered_t)
        keyed_diffs = keyed_field_diffs(sides, pairs)
        multiset = multiset_differences(sides, pairs)
        field_diffs = scratch.create(
            "all_field_diffs", f"SELECT * FROM {keyed_diffs} UNION ALL SELECT * FROM {multiset.null_diffs}"
        )
        outcome = outcomes(sides, pairs, field_diffs, multiset)
        result.streams = stream_stats(sides, numbered_c, numbered_t, outcome, keys)
        for stream, counts in field_diff_counts(sides, field_diffs).items():
            result.streams[stream].field_diffs = counts
        for stream, top in top_level_counts(sides, field_diffs).items():
            result.streams[stream].top_level_field_diffs = top
        for stream, found in examples(sides, outcome, field_diffs, max_examples).items():
            result.streams[stream].examples = found
    result.findings = [finding for diff in result.streams.values() for finding in stream_findings(diff)]
    return result
