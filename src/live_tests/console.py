"""What the CLI shows on the terminal: live progress while connectors run, and the summary table."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

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


def _human_bytes(value: int | None) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return "-"


def summary_table(results: Sequence[ExecutionResult]) -> Table:
    table = Table(title="live-tests executions", show_lines=True)
    for column in (
        "execution",
        "status",
        "exit",
        "duration",
        "1st record",
        "peak mem",
        "messages",
        "records per stream",
    ):
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
            "-" if result.time_to_first_record_s is None else f"{result.time_to_first_record_s:.2f}s",
            _human_bytes(result.peak_memory_bytes),
            messages or "-",
            streams or "-",
        )
    return table
