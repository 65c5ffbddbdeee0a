"""Target-only records and streams are "added": listed as differences, failing only where the catalog forbids them.

A target that emits more than the control (new records, new primary keys, a stream the control
left empty, a new stream in the discovered catalog) has not broken anything a user relies on;
records of a stream that is not in the configured catalog have: the connector read what it was
not asked to.
"""

from __future__ import annotations

from collections.abc import Collection

from live_tests.compare import Finding, Severity
from live_tests.verdicts import ADDED

# Findings that only say the target has more.
ADDED_RECORD_KINDS = frozenset({"stream_extra_in_target", "extra_primary_keys", "records_extra_in_target"})
ADDED_CATALOG_KINDS = frozenset({"stream_added"})


def is_added(finding: Finding, configured_streams: Collection[str]) -> bool:
    """Whether `finding` is only an addition that the configured catalog allows."""
    return judged_severity(finding, configured_streams) == ADDED


def judged_severity(finding: Finding, configured_streams: Collection[str]) -> str:
    """The severity a test judges `finding` by: ADDED for an addition the configured catalog allows,
    breaking for records of a stream it does not configure, else the finding's own."""
    if finding.kind in ADDED_CATALOG_KINDS:
        return ADDED
    grew = (
        finding.kind == "record_count_changed"
        and isinstance(finding.control, int)
        and isinstance(finding.target, int)
        and finding.target > finding.control
    )
    if finding.kind not in ADDED_RECORD_KINDS and not grew:
        return finding.severity
    if finding.stream is None or finding.stream in configured_streams:
        return ADDED
    return Severity.BREAKING
