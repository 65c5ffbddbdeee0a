"""Compare the discovered catalogs of control and target, stream by stream.

Streams are matched by name and namespace; each matched stream object (json_schema, primary key,
cursor, sync modes, ...) is diffed path by path and every change is classified by `change_rules`:
breaking when a destination can no longer rely on what it got before (a stream or property gone,
a type changed, nullability removed, primary key or cursor changed, a sync mode removed),
compatible otherwise, cosmetic (INFO) for documentation keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import duckdb

from live_tests.compare.change_rules import Document, classify
from live_tests.compare.diff import Comparison, Finding, Severity
from live_tests.compare.document_diff import diff_documents
from live_tests.models import ExecutionKey
from live_tests.sql import Scratch, both_params, key_filter


@dataclass
class CatalogComparison(Comparison):
    title: ClassVar[str] = "Catalog comparison"

    # Stream names, `namespace.name` for a stream with a namespace.
    control_streams: list[str] = field(default_factory=list)
    target_streams: list[str] = field(default_factory=list)

    @property
    def streams_added(self) -> list[str]:
        return sorted(set(self.target_streams) - set(self.control_streams))

    @property
    def streams_removed(self) -> list[str]:
        return sorted(set(self.control_streams) - set(self.target_streams))

    def overview_lines(self) -> list[str]:
        return [
            f"Streams: control {len(self.control_streams)}, target {len(self.target_streams)}"
            f" (added {len(self.streams_added)}, removed {len(self.streams_removed)})"
        ]


def compare_catalogs(con: duckdb.DuckDBPyConnection, control: ExecutionKey, target: ExecutionKey) -> CatalogComparison:
    """Diff the last CATALOG message of each execution (the `discover` command)."""
    result = CatalogComparison(control, target)
    params = both_params(control, target)
    with Scratch(con) as scratch:
        # Three small steps, not one statement: unnesting and extracting together needs far more
        # memory (a catalog of 1000 streams then fails under the suite's 192 MB limit).
        stream_docs = scratch.create(
            "stream_docs",
            f"""WITH docs AS (
                    SELECT 'control' AS side, catalog FROM
                        (SELECT catalog FROM catalog WHERE {key_filter("c")} ORDER BY seq DESC LIMIT 1)
                    UNION ALL
                    SELECT 'target', catalog FROM
                        (SELECT catalog FROM catalog WHERE {key_filter("t")} ORDER BY seq DESC LIMIT 1))
                SELECT side, unnest(list) AS doc, unnest(range(len(list))) AS pos
                FROM (SELECT side, json_extract(catalog, '$.streams[*]') AS list FROM docs)""",
            params,
        )
        named = scratch.create(
            "stream_names",
            f"""SELECT side, pos, doc, coalesce((doc ->> '$.namespace') || '.', '') || (doc ->> '$.name') AS scope
                FROM {stream_docs}""",
        )
        scratch.drop(stream_docs)
        # A duplicated stream name is the validation test's finding; here its first entry counts.
        streams = scratch.create(
            "streams",
            f"""SELECT side, scope, doc FROM {named}
                QUALIFY row_number() OVER (PARTITION BY side, scope ORDER BY pos) = 1""",
        )
        scratch.drop(named)
        present = dict(
            con.execute(
                f"""SELECT side, count(*) FROM (
                        SELECT side FROM {streams} UNION ALL
                        SELECT 'control' FROM catalog WHERE {key_filter("c")} UNION ALL
                        SELECT 'target' FROM catalog WHERE {key_filter("t")}) GROUP BY side""",
                params,
            ).fetchall()
        )
        if not result.both_emitted(set(present), "CATALOG"):
            return result
        for side, names in con.execute(
            f"SELECT side, list(scope ORDER BY scope) FROM {streams} GROUP BY side"
        ).fetchall():
            setattr(result, f"{side}_streams", names)
        for name in result.streams_removed:
            result.findings.append(
                Finding("stream_removed", Severity.BREAKING, f"stream `{name}` was removed", stream=name)
            )
        for name in result.streams_added:
            result.findings.append(Finding("stream_added", Severity.CHANGE, f"stream `{name}` was added", stream=name))
        # Streams on one side only are one finding each (above); diff_documents pairs the others.
        diff = diff_documents(con, scratch, streams)
    result.findings += classify(diff, Document.CATALOG)
    result.findings.sort(key=lambda f: (f.severity != Severity.BREAKING, f.stream or "", f.path or "", f.kind))
    return result
