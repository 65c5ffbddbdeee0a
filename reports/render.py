"""report.html (self-contained) and report.md (a PR comment) rendered from a `ReportContext`; report.json too."""

from __future__ import annotations

import inspect
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import orjson
from markupsafe import Markup, escape

from live_tests.reports.context import ReportContext, TestResult
from live_tests.reports.evidence import FieldEvidence, highlight
from live_tests.reports.http_section import http_view
from live_tests.reports.report_json import link, report_json
from live_tests.verdicts import Outcome

TEMPLATES_PACKAGE = "live_tests.reports"
# Lines of a diff summary shown inline; the whole text is in the test's summary.txt.
SUMMARY_LINES_HTML = 400
SUMMARY_LINES_MD = 60
# GitHub rejects comments over 65,536 characters.
MARKDOWN_MAX_CHARS = 60_000


def write_reports(out_dir: Path, context: ReportContext) -> dict[str, Path]:
    """Write report.html, report.md and report.json into `out_dir`; returns {"html"|"md"|"json": path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"html": out_dir / "report.html", "md": out_dir / "report.md", "json": out_dir / "report.json"}
    view = _view(out_dir, context)
    paths["html"].write_text(_environment(autoescape=True).get_template("report.html.j2").render(view), "utf-8")
    markdown = _environment(autoescape=False).get_template("report.md.j2").render(view)
    if len(markdown) > MARKDOWN_MAX_CHARS:
        cut = markdown.rfind("\n", 0, MARKDOWN_MAX_CHARS - 200)
        markdown = markdown[:cut] + "\n\n… (truncated: see report.html for the full report)\n"
    paths["md"].write_text(markdown, "utf-8")
    paths["json"].write_bytes(orjson.dumps(report_json(out_dir, context), option=orjson.OPT_INDENT_2))
    return paths


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["signed"] = lambda n: f"{n:+,}" if n else "0"
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["bytes"] = _human_bytes
    env.filters["md_cell"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    env.filters["md_code"] = _markdown_code_block
    env.filters["md_inline"] = _markdown_inline_code
    env.filters["code_spans"] = code_spans
    env.filters["anchor"] = lambda name: "test-" + re.sub(r"[^A-Za-z0-9_-]+", "-", str(name)).strip("-")
    return env


def _load_template(name: str) -> str:
    return resources.files(TEMPLATES_PACKAGE).joinpath(name).read_text("utf-8")


def _view(out_dir: Path, context: ReportContext) -> dict[str, Any]:
    """What the templates see: the context plus links, trimmed summaries, evidence and repeats folded."""
    ordered = context.sorted_results
    same_as = _repeats(ordered)
    results = []
    for r in ordered:
        lines = r.summary.rstrip("\n").splitlines()
        results.append(
            {
                "result": r,
                "links": [(p.name, link(out_dir, p)) for p in r.diff_files],
                "summary_html": _trim(lines, SUMMARY_LINES_HTML),
                "summary_md": _trim(lines, SUMMARY_LINES_MD),
                "docstring": _dedent_docstring(r.docstring),
                "evidence": [_evidence_view(e) for e in r.evidence],
                "same_as": same_as.get(r.name),
                "detailed": r.outcome in _DETAILED or bool(r.evidence),
            }
        )
    return {
        "ctx": context,
        "results": results,
        "counts": context.outcome_counts,
        "Outcome": Outcome,
        "http": http_view(context.http_calls, lambda path: link(out_dir, path)),
        "css": _load_template("report.css"),
        "date": context.date.strftime("%Y-%m-%d %H:%M:%S %Z").strip(),
    }


_DETAILED = (Outcome.FAILED, Outcome.ERROR, Outcome.INCONCLUSIVE)


def _repeats(results: list[TestResult]) -> dict[str, str]:
    """Test name -> the test it repeats word for word (`test_x[read-with-state]` -> `test_x[read]`).

    The read tests run for `read` and `read-with-state`; when both found the same (up to the command's
    name), the report shows the findings once and points the other test to them.
    """
    groups: dict[tuple[Any, ...], list[TestResult]] = {}
    for r in results:
        if "[" not in r.name or r.outcome in (Outcome.PASSED, Outcome.SKIPPED):
            continue
        signature = (r.name.partition("[")[0], r.outcome, *(_without_command(t) for t in (r.message, r.summary)))
        evidence = tuple((e.stream, e.path, tuple(e.examples)) for e in r.evidence)
        groups.setdefault((*signature, evidence), []).append(r)
    repeats = {}
    for group in groups.values():
        if len(group) < 2:
            continue
        first = next((r for r in group if r.name.endswith("[read]")), group[0])
        repeats |= {r.name: first.name for r in group if r is not first}
    return repeats


def _without_command(text: str) -> str:
    return text.replace("read-with-state", "read")


def _evidence_view(evidence: FieldEvidence) -> dict[str, Any]:
    return {
        "evidence": evidence,
        "examples": [(e, *highlight(e.control, e.target)) for e in evidence.examples],
    }


def code_spans(text: str) -> Markup:
    """HTML of a message whose `backticked` parts are shown as code (everything else escaped)."""
    parts = re.split(r"`([^`\n]+)`", str(text))
    html = [escape(part) if i % 2 == 0 else Markup("<code>%s</code>") % part for i, part in enumerate(parts)]
    return Markup("").join(html)


def _trim(lines: list[str], limit: int) -> str:
    if len(lines) <= limit:
        return "\n".join(lines)
    return "\n".join([*lines[:limit], f"… {len(lines) - limit} more lines in summary.txt"])


def _dedent_docstring(text: str) -> str:
    return inspect.cleandoc(text) if text else ""


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _markdown_inline_code(text: str) -> str:
    """An inline code span for a table cell: fenced past any backtick run inside, pipes escaped."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|").replace("\n", " ")


def _markdown_code_block(text: str) -> str:
    """A fenced block whose fence is longer than any backtick run inside (so the text can't end it)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"
