"""Compare the SPEC of control and target: what a user's config must look like.

The whole spec object (connectionSpecification, documentationUrl, auth flows, ...) is diffed path
by path; every change is listed and classified by `change_rules`: breaking when a config valid for
control may be rejected or mishandled by target, compatible otherwise, cosmetic (INFO) for
documentation and UI keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import duckdb

from live_tests.compare.change_rules import Document, classify
from live_tests.compare.diff import Comparison, Severity
from live_tests.compare.document_diff import diff_documents
from live_tests.models import ExecutionKey
from live_tests.sql import Scratch, both_params, key_filter


@dataclass
class SpecComparison(Comparison):
    title: ClassVar[str] = "Spec comparison"

    control_properties: int = 0
    target_properties: int = 0

    def overview_lines(self) -> list[str]:
        return [f"Config properties: control {self.control_properties}, target {self.target_properties}"]


def compare_spec(con: duckdb.DuckDBPyConnection, control: ExecutionKey, target: ExecutionKey) -> SpecComparison:
    """Diff the last SPEC message of each execution (usually the `spec` command)."""
    result = SpecComparison(control, target)
    with Scratch(con) as scratch:
        docs = scratch.create(
            "docs",
            f"""SELECT 'control' AS side, 'spec' AS scope, spec AS doc FROM
                    (SELECT spec FROM spec WHERE {key_filter("c")} ORDER BY seq DESC LIMIT 1)
                UNION ALL
                SELECT 'target', 'spec', spec FROM
                    (SELECT spec FROM spec WHERE {key_filter("t")} ORDER BY seq DESC LIMIT 1)""",
            both_params(control, target),
        )
        sides = {row[0] for row in con.execute(f"SELECT side FROM {docs}").fetchall()}
        if not result.both_emitted(sides, "SPEC"):
            return result
        diff = diff_documents(con, scratch, docs)
    result.control_properties = diff.properties.get("control", 0)
    result.target_properties = diff.properties.get("target", 0)
    result.findings = classify(diff, Document.SPEC)
    result.findings.sort(key=lambda f: (f.severity != Severity.BREAKING, f.path or "", f.kind))
    return result
