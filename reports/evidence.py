"""Evidence shown inline in the reports: for each changed field, a few records with both values.

The records comparison keeps its first differing records as examples (StreamRecordsDiff.examples,
each with its field differences); `record_evidence` regroups them by (stream, path). `highlight`
splits two values' JSON text into the common start, the differing middle and the common end, so
the HTML report can mark the part that changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

# Example records per changed field, and fields per test, shown inline.
EXAMPLES_PER_FIELD = 3
FIELDS_PER_TEST = 20
_VALUE_CHARS = 200


@dataclass(frozen=True)
class Example:
    key: str  # the primary key as JSON text, "" for a keyless stream
    control: str  # JSON text, "absent" when the field is not there
    target: str


@dataclass
class FieldEvidence:
    stream: str
    path: str
    change: str  # "changed", "removed", "added", "null_to_absent", "absent_to_null"
    records: int | None = None  # records differing at this path (all of them, not only the examples)
    examples: list[Example] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "path": self.path,
            "change": self.change,
            "records": self.records,
            "examples": [vars(e) for e in self.examples],
        }


def _text(value: Any, present: bool) -> str:
    if not present:
        return "absent"
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def record_evidence(streams: Iterable[Any]) -> list[FieldEvidence]:
    """Per (stream, path): up to EXAMPLES_PER_FIELD example records (key, control value, target value).

    `streams` are StreamRecordsDiff-like: `.stream`, `.examples`, `.field_diffs` (for the counts).
    """
    found: dict[tuple[str, str], FieldEvidence] = {}
    for diff in streams:
        counts = {(f.path, f.change): f.records for f in getattr(diff, "field_diffs", [])}
        for example in diff.examples:
            key = "" if example.get("key") is None else orjson.dumps(example["key"], default=str).decode()
            for difference in example.get("differences") or []:
                path, change = difference.get("path"), difference.get("change")
                if not path:
                    continue
                evidence = found.get((diff.stream, path))
                if evidence is None:
                    if len(found) >= FIELDS_PER_TEST:
                        continue
                    evidence = FieldEvidence(diff.stream, path, change, counts.get((path, change)))
                    found[(diff.stream, path)] = evidence
                if len(evidence.examples) < EXAMPLES_PER_FIELD:
                    evidence.examples.append(
                        Example(
                            key,
                            _text(difference.get("control"), change not in ("added", "absent_to_null")),
                            _text(difference.get("target"), change not in ("removed", "null_to_absent")),
                        )
                    )
    return list(found.values())


def highlight(control: str, target: str) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """((start, changed, end) of control, (start, changed, end) of target): start and end are common."""
    prefix = 0
    while prefix < min(len(control), len(target)) and control[prefix] == target[prefix]:
        prefix += 1
    suffix = 0
    while (
        suffix < min(len(control), len(target)) - prefix
        and control[len(control) - 1 - suffix] == target[len(target) - 1 - suffix]
    ):
        suffix += 1
    c_end, t_end = len(control) - suffix, len(target) - suffix
    return (
        (control[:prefix], control[prefix:c_end], control[c_end:]),
        (target[:prefix], target[prefix:t_end], target[t_end:]),
    )
