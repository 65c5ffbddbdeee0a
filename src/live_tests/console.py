"""What the CLI shows on the terminal: live progress while connectors run, and the summary table."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from live_tests.compare.performance import format_figure
from live_tests.models import ALL_KINDS, ExecutionInputs, ExecutionResult
from live_tests.runner import ProgressCallback

# Progress and errors go to stderr, the summary to stdout; wide enough for the table when piped.
console = Console(stderr=True)
summary_console = Console(width=None if Console().is_terminal else 160)


def _label(inputs: ExecutionInputs) -> str:
    connector, version, command = inputs.key
    return f"{connector}:{version} {command}"


@contextmanager
def live_progress(executions: Sequence[ExecutionInputs]) -> Iterator[ProgressCallback]:
    """A progress line per execution with the records streamed so far."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("[cyan]{task.fields[records]:,} records"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        tasks = {id(inputs): progress.add_task(_label(inputs), records=0, total=None) for inputs in executions}
        lock = threading.Lock()

        def update(inputs: ExecutionInputs, records: int) -> None:
            with lock:
                progress.update(tasks[id(inputs)], records=records)

        yield update


def figures(result: ExecutionResult) -> str:
    """The execution's performance figures, one per line; a figure not measured is left out."""
    records, seconds = result.records, result.duration_s
    lines = [
        ("1st record", format_figure(result.time_to_first_record_s, "s") if records else None),
        ("records/s", format_figure(records / seconds, "1/s") if records and seconds > 0 else None),
        ("stdout/s", format_figure(result.stdout_bytes / seconds, "B/s") if seconds > 0 else None),
        ("peak mem", format_figure(result.peak_memory_bytes, "B") if result.peak_memory_bytes else None),
        ("cpu", format_figure(result.cpu_seconds, "s") if result.cpu_seconds is not None else None),
        ("http calls", f"{result.http_flows:,}" if result.http is not None and result.http.enabled else None),
    ]
    return "\n".join(f"{label} {value}" for label, value in lines if value is not None)


def summary_table(results: Sequence[ExecutionResult]) -> Table:
    table = Table(title="live-tests executions", show_lines=True)
    for column in ("execution", "status", "exit", "duration", "figures", "messages", "records per stream"):
        table.add_column(column)
    for result in results:
        status_style = "green" if result.success else "red"
        messages = "\n".join(
            f"{kind} {result.message_counts[kind]:,}" for kind in ALL_KINDS if kind in result.message_counts
        )
        streams = "\n".join(f"{name} {count:,}" for name, count in sorted(result.records_per_stream.items()))
        table.add_row(
            _label(result.inputs),
            f"[{status_style}]{result.status}[/]",
            "-" if result.exit_code is None else str(result.exit_code),
            f"{result.duration_s:.1f}s",
            figures(result) or "-",
            messages or "-",
            streams or "-",
        )
    return table
