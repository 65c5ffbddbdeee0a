"""Findings of a records comparison, per stream, from its statistics and examples."""

from __future__ import annotations

from live_tests.compare.diff import Finding, Severity, short
from live_tests.compare.record_results import (
    ABSENT_TO_NULL,
    ADDED,
    EXTRA,
    MISSING,
    NULL_TO_ABSENT,
    REMOVED,
    VALUE_CHANGED,
    StreamRecordsDiff,
)

# Field change -> (finding kind, severity, what the message says about the path)
_FIELD_FINDINGS = {
    VALUE_CHANGED: ("record_field_changed", Severity.BREAKING, "differs"),
    REMOVED: ("record_field_removed", Severity.BREAKING, "is missing in target"),
    ADDED: ("record_field_added", Severity.CHANGE, "is new in target"),
    # Destinations load null and absent alike (as NULL): listed, not a regression.
    NULL_TO_ABSENT: ("record_field_null_vs_absent", Severity.CHANGE, "null in control, absent in target"),
    ABSENT_TO_NULL: ("record_field_null_vs_absent", Severity.CHANGE, "absent in control, null in target"),
}


def stream_findings(diff: StreamRecordsDiff) -> list[Finding]:
    """What differs in one stream, most severe first within each topic."""
    s = diff.stream
    if diff.control_count and not diff.target_count:
        return [
            Finding(
                "stream_missing_in_target", Severity.BREAKING,
                f"`{s}`: {diff.control_count} records in control, none in target",
                stream=s, control=diff.control_count, target=0, count=diff.control_count,
            )
        ]  # fmt: skip
    if diff.target_count and not diff.control_count:
        return [
            Finding(
                "stream_extra_in_target", Severity.CHANGE,
                f"`{s}`: no records in control, {diff.target_count} in target",
                stream=s, control=0, target=diff.target_count, count=diff.target_count,
            )
        ]  # fmt: skip
    findings = []
    if diff.control_count != diff.target_count:
        # Fewer records is data lost; more is listed (the suite judges it as added).
        fewer = diff.target_count < diff.control_count
        findings.append(
            Finding(
                "record_count_changed", Severity.BREAKING if fewer else Severity.CHANGE,
                f"`{s}`: record count {diff.control_count} -> {diff.target_count}",
                stream=s, control=diff.control_count, target=diff.target_count,
            )
        )  # fmt: skip
    what = "primary keys" if diff.keyed else "records"
    examples = {
        kind: [
            e["key"] if diff.keyed else e["control" if kind == MISSING else "target"]
            for e in diff.examples
            if e["kind"] == kind
        ][:5]
        for kind in (MISSING, EXTRA)
    }
    for kind, count, severity in ((MISSING, diff.missing_in_target, Severity.BREAKING),
                                  (EXTRA, diff.extra_in_target, Severity.CHANGE)):  # fmt: skip
        if not count:
            continue
        sides = "control {what} not in target" if kind == MISSING else "target {what} not in control"
        example = f" (e.g. {short(examples[kind][0], 80)})" if examples[kind] else ""
        finding_kind = (
            ("missing" if kind == MISSING else "extra") + "_primary_keys" if diff.keyed else "records_" + kind
        )
        findings.append(
            Finding(
                finding_kind, severity, f"`{s}`: {count} {sides.format(what=what)}{example}",
                stream=s, count=count, **{"control" if kind == MISSING else "target": examples[kind]},
            )
        )  # fmt: skip
    for fd in diff.field_diffs:
        kind, severity, verb = _FIELD_FINDINGS[fd.change]
        values = {}
        if fd.change == NULL_TO_ABSENT:
            values = {"control": "null", "target": "absent"}
        elif fd.change == ABSENT_TO_NULL:
            values = {"control": "absent", "target": "null"}
        findings.append(
            Finding(
                kind, severity, f"`{s}`: `{fd.path}` {verb} in {fd.records} records",
                stream=s, path=fd.path, count=fd.records, **values,
            )
        )  # fmt: skip
    if diff.duplicate_keys_target > diff.duplicate_keys_control:
        findings.append(
            Finding(
                "duplicate_primary_keys", Severity.CHANGE,
                f"`{s}`: {diff.duplicate_keys_target} duplicated primary keys in target"
                f" (control {diff.duplicate_keys_control})",
                stream=s, control=diff.duplicate_keys_control, target=diff.duplicate_keys_target,
            )
        )  # fmt: skip
    elif diff.duplicate_keys_control:
        findings.append(
            Finding(
                "duplicate_primary_keys", Severity.INFO,
                f"`{s}`: duplicated primary keys: control {diff.duplicate_keys_control},"
                f" target {diff.duplicate_keys_target}",
                stream=s, control=diff.duplicate_keys_control, target=diff.duplicate_keys_target,
            )
        )  # fmt: skip
    return findings
