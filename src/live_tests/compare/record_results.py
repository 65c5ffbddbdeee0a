"""Result types of the records comparison: per-stream statistics, field diff tallies, examples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from live_tests.compare.diff import Comparison, dumps_line, short
from live_tests.store.stream_files import stream_file_name

# stream -> primary key as a list of field paths, each a list of field names (Airbyte's shape:
# [["id"]], [["account", "id"], ["date"]]). A bare string path means one top-level field.
PrimaryKeys = Mapping[str, Sequence[Sequence[str] | str]]


def key_paths(primary_keys: PrimaryKeys | None) -> dict[str, list[list[str]]]:
    """stream -> key as lists of field names, for the streams with a non-empty key."""
    keys = {s: [[p] if isinstance(p, str) else list(p) for p in paths] for s, paths in (primary_keys or {}).items()}
    return {s: paths for s, paths in keys.items() if paths}


# Outcome kinds of a differing record.
MISSING = "missing_in_target"
EXTRA = "extra_in_target"
CHANGED = "changed"

# Field changes: a value (or type) differs, a field only in target / only in control, and a field
# null on one side and absent on the other (destinations load both as NULL).
VALUE_CHANGED = "changed"
ADDED = "added"
REMOVED = "removed"
NULL_TO_ABSENT = "null_to_absent"  # null in control, absent in target
ABSENT_TO_NULL = "absent_to_null"  # absent in control, null in target


@dataclass(frozen=True)
class FieldDiffCount:
    """How many records differ at one field path (array indices shown as [*])."""

    path: str  # e.g. "$.address.city", "$.tags[*]"
    # "changed" (value/type differs) | "added" (only in target) | "removed" (only in control)
    # | "null_to_absent" (null in control, absent in target) | "absent_to_null"
    change: str
    records: int


@dataclass
class StreamRecordsDiff:
    stream: str
    primary_key: list[list[str]] | None  # None: compared as a multiset
    control_count: int = 0
    target_count: int = 0
    missing_in_target: int = 0  # control keys (multiset: control rows) with no counterpart in target
    extra_in_target: int = 0
    # Same key, some field differs; keyless streams: the same record up to fields null on one side
    # and absent on the other.
    changed: int = 0
    changed_values: int = 0  # ... of which some value changed or disappeared (not only added / null vs absent)
    duplicate_keys_control: int = 0  # keys occurring more than once
    duplicate_keys_target: int = 0
    field_diffs: list[FieldDiffCount] = field(default_factory=list)
    top_level_field_diffs: dict[str, int] = field(default_factory=dict)  # field -> records differing
    # First differing records: {"kind", "key", "differences": [{path, change, control, target}],
    # "control": record data, "target": record data}; at most max_examples per kind.
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def keyed(self) -> bool:
        return self.primary_key is not None

    @property
    def identical(self) -> bool:
        return not (self.missing_in_target or self.extra_in_target or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "primary_key": self.primary_key,
            "control_count": self.control_count,
            "target_count": self.target_count,
            "missing_in_target": self.missing_in_target,
            "extra_in_target": self.extra_in_target,
            "changed": self.changed,
            "changed_values": self.changed_values,
            "duplicate_keys_control": self.duplicate_keys_control,
            "duplicate_keys_target": self.duplicate_keys_target,
            "field_diffs": [vars(f) for f in self.field_diffs],
            "top_level_field_diffs": self.top_level_field_diffs,
        }


@dataclass
class RecordsComparison(Comparison):
    title: ClassVar[str] = "Records comparison"

    streams: dict[str, StreamRecordsDiff] = field(default_factory=dict)

    def overview_lines(self) -> list[str]:
        if not self.streams:
            return ["No records on either side."]
        width = max(12, *(len(s) for s in self.streams))
        header = (
            f"{'stream':<{width}}  {'key':<14} {'control':>10} {'target':>10} "
            f"{'missing':>9} {'extra':>9} {'changed':>9}"
        )
        lines = [header, "-" * len(header)]
        for diff in self.streams.values():
            key = ",".join(".".join(p) for p in diff.primary_key) if diff.primary_key else "(multiset)"
            changed = str(diff.changed) if diff.keyed or diff.changed else "-"
            lines.append(
                f"{diff.stream:<{width}}  {short(key, 14):<14} {diff.control_count:>10} {diff.target_count:>10} "
                f"{diff.missing_in_target:>9} {diff.extra_in_target:>9} {changed:>9}"
            )
        for diff in self.streams.values():
            if diff.field_diffs:
                lines += ["", f"Fields differing in `{diff.stream}` (records):"]
                lines += [f"  {f.path} ({f.change}): {f.records}" for f in diff.field_diffs[:30]]
                if len(diff.field_diffs) > 30:
                    lines.append(f"  … {len(diff.field_diffs) - 30} more paths (see findings.json)")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "streams": {name: s.to_dict() for name, s in self.streams.items()}}

    def _write_extra_files(self, directory: Path) -> list[Path]:
        written = []
        for diff in self.streams.values():
            if not diff.examples:
                continue
            path = directory / f"records_{stream_file_name(diff.stream, None)}.jsonl"
            with open(path, "wb") as f:
                for example in diff.examples:
                    f.write(dumps_line({"stream": diff.stream, **example}))
            written.append(path)
        return written
