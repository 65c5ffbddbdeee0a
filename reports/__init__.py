"""The report stage: a session's verdict as report.html (self-contained), report.md (PR comment), report.json.

`build_report_context` (context.py) fills a `ReportContext` from duck.db and the suite's test
results; `write_reports` (render.py) renders the three files from it with the templates of this
folder (report.html.j2, report.md.j2, report.css).
"""

from live_tests.reports.context import (
    CountRow,
    ReportContext,
    StreamCoverage,
    TestResult,
    build_report_context,
)
from live_tests.reports.evidence import Example, FieldEvidence, record_evidence
from live_tests.reports.render import write_reports
from live_tests.reports.report_json import report_json
from live_tests.verdicts import EvaluationMode, Outcome

__all__ = [
    "CountRow",
    "EvaluationMode",
    "Example",
    "FieldEvidence",
    "Outcome",
    "ReportContext",
    "StreamCoverage",
    "TestResult",
    "build_report_context",
    "record_evidence",
    "report_json",
    "write_reports",
]
