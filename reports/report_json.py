"""report.json: the machine-readable verdict and figures of a session."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from live_tests.compare.performance import PerformanceComparison
from live_tests.reports.context import CountRow, ReportContext
from live_tests.reports.http_section import http_json


def report_json(out_dir: Path, context: ReportContext) -> dict[str, Any]:
    """What report.json holds."""
    verdict = context.session_verdict
    return {
        "connector": context.connector,
        "control_version": context.control_version,
        "target_version": context.target_version,
        "run_id": context.run_id,
        "pr_url": context.pr_url,
        "date": context.date.isoformat(),
        "evaluation_mode": context.evaluation_mode.value,
        "verdict": verdict.word,
        "verdict_text": verdict.text,
        "blocking": verdict.blocking,
        "interrupted": context.interrupted,
        "outcomes": {o.value: n for o, n in context.outcome_counts.items()},
        "tests": [
            {
                "name": r.name,
                "outcome": r.outcome.value,
                "message": r.message,
                "summary": r.summary,  # the same text as summary.txt; findings.json has every finding
                "duration_s": r.duration_s,
                "diff_files": [link(out_dir, p) for p in r.diff_files],
                "evidence": [e.to_dict() for e in r.evidence],  # example records per changed field
            }
            for r in context.sorted_results
        ],
        "coverage": {
            "catalog": context.coverage.catalog,
            "configured": context.coverage.configured,
            "with_data": context.coverage.with_data,
            "untested": context.coverage.untested,
        },
        "message_counts": [_count_json(row) for row in context.message_counts],
        "records_per_stream": [_count_json(row) for row in context.records_per_stream],
        "noise": [n.to_dict() for n in context.noise],
        "http_capture": context.http_capture,
        "http_traffic": {
            version: None if t is None else {**vars(t), "top_endpoints": [list(e) for e in t.top_endpoints]}
            for version, t in context.http_traffic.items()
        },
        "http_calls": http_json(context.http_calls, lambda path: link(out_dir, path)),
        "performance": [_performance_json(p) for p in context.performance],
    }


def _performance_json(comparison: PerformanceComparison) -> dict[str, Any]:
    """One command: each side's figures (null: not measured), the rows as shown, what was flagged."""
    return {
        "command": comparison.control.command,
        "tolerance": comparison.tolerance,
        "floors": asdict(comparison.floors),
        "control": None if comparison.control_figures is None else comparison.control_figures.to_dict(),
        "target": None if comparison.target_figures is None else comparison.target_figures.to_dict(),
        "rows": [
            {"metric": r.metric.name, "control": r.control, "target": r.target, "flagged": r.flagged}
            for r in comparison.rows()
        ],
        "findings": [f.to_dict() for f in comparison.findings],
    }


def _count_json(row: CountRow) -> dict[str, Any]:
    return {"command": row.command, "name": row.label, "control": row.control, "target": row.target, "delta": row.delta}


def link(out_dir: Path, path: Path) -> str:
    """Link to a diff file relative to the report, so the artifacts folder can move as a whole."""
    try:
        return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()
    except ValueError:  # another drive (Windows): keep it absolute
        return path.resolve().as_posix()
