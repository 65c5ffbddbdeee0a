"""One records comparison, three tests: each test sees the findings (and examples) it is about.

`compare_records` runs once per read command; the count, primary-key and content tests each get a
copy restricted to their finding kinds, with a title and overview of their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from live_tests.compare import RecordsComparison, StreamRecordsDiff

# Keeps an example (a differing record, see StreamRecordsDiff.examples) in a view.
ExampleFilter = Callable[[StreamRecordsDiff, dict[str, Any]], bool]

COUNT_KINDS = frozenset({"record_count_changed", "stream_missing_in_target", "stream_extra_in_target"})
PRIMARY_KEY_KINDS = frozenset({"missing_primary_keys", "stream_missing_in_target"})
CONTENT_KINDS = frozenset(
    {"extra_primary_keys", "records_missing_in_target", "records_extra_in_target", "record_field_changed",
     "record_field_removed", "record_field_added", "record_field_null_vs_absent", "duplicate_primary_keys"}
)  # fmt: skip


@dataclass
class RecordCountComparison(RecordsComparison):
    title: ClassVar[str] = "Record count per stream"

    def overview_lines(self) -> list[str]:
        if not self.streams:
            return ["No records on either side."]
        width = max(12, *(len(s) for s in self.streams))
        lines = [f"{'stream':<{width}}  {'control':>10} {'target':>10} {'delta':>8}"]
        for d in self.streams.values():
            delta = d.target_count - d.control_count
            lines.append(f"{d.stream:<{width}}  {d.control_count:>10} {d.target_count:>10} {delta:>+8}")
        return lines


@dataclass
class PrimaryKeysComparison(RecordsComparison):
    title: ClassVar[str] = "Control primary keys present in target"

    def overview_lines(self) -> list[str]:
        keyed = [d for d in self.streams.values() if d.keyed]
        if not keyed:
            return ["No stream with a primary key has records."]
        lines = []
        for d in keyed:
            key = ", ".join(".".join(p) for p in d.primary_key or [])
            lines.append(
                f"`{d.stream}` ({key}): {d.control_count} control records, {d.missing_in_target} keys missing in target"
            )
        return lines


@dataclass
class RecordsContentComparison(RecordsComparison):
    title: ClassVar[str] = "Records compared field by field"

    def overview_lines(self) -> list[str]:
        lines = super().overview_lines()
        # A stream on one side only has nothing to compare field by field: say where it is judged.
        for d in self.streams.values():
            if bool(d.control_count) != bool(d.target_count):
                side = "control" if d.control_count else "target"
                count = d.control_count or d.target_count
                lines.append(
                    f"`{d.stream}` has records in {side} only ({count}): nothing to compare field by field;"
                    " test_record_count_per_stream reports it"
                )
        return lines


def view(
    comparison: RecordsComparison, cls: type[RecordsComparison], kinds: frozenset[str], keep_example: ExampleFilter
) -> RecordsComparison:
    """A copy of `comparison` as `cls`, with only `kinds` of findings and the examples `keep_example` keeps."""
    keyed_only = cls is PrimaryKeysComparison
    findings = [
        f
        for f in comparison.findings
        if f.kind in kinds and not (keyed_only and f.stream is not None and not comparison.streams[f.stream].keyed)
    ]
    streams = {
        name: dataclasses.replace(diff, examples=[e for e in diff.examples if keep_example(diff, e)])
        for name, diff in comparison.streams.items()
    }
    return cls(
        control=comparison.control,
        target=comparison.target,
        findings=findings,
        streams=streams,
        ignored=list(comparison.ignored),
    )


def counts(comparison: RecordsComparison) -> RecordsComparison:
    return view(comparison, RecordCountComparison, COUNT_KINDS, lambda diff, example: False)


def primary_keys(comparison: RecordsComparison) -> RecordsComparison:
    return view(
        comparison,
        PrimaryKeysComparison,
        PRIMARY_KEY_KINDS,
        lambda diff, example: diff.keyed and example["kind"] == "missing_in_target",
    )


def content(comparison: RecordsComparison) -> RecordsComparison:
    # Missing keys belong to the primary-key test; missing records of keyless streams are content.
    return view(
        comparison,
        RecordsContentComparison,
        CONTENT_KINDS,
        lambda diff, example: not diff.keyed or example["kind"] != "missing_in_target",
    )
