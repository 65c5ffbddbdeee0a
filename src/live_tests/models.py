"""Plain typed objects that flow through the pipeline: what to run, and what came out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

# Airbyte message type -> artifact/table name (the baseline tool's file names).
MESSAGE_KINDS: dict[str, str] = {
    "RECORD": "records",
    "STATE": "states",
    "LOG": "logs",
    "TRACE": "traces",
    "CATALOG": "catalog",
    "SPEC": "spec",
    "CONNECTION_STATUS": "connection_status",
    "CONTROL": "controls",
}
# Stdout lines that are not Airbyte messages are kept under this kind, never dropped.
INVALID_KIND = "invalid_lines"
ALL_KINDS: tuple[str, ...] = (*MESSAGE_KINDS.values(), INVALID_KIND)


class InputError(Exception):
    """Bad user input: the message says what to fix."""


class ExecutionKey(NamedTuple):
    """Identifies one execution: its rows in duck.db carry these three columns."""

    connector: str
    version: str
    command: str

    def __str__(self) -> str:
        return f"{self.connector} {self.version} {self.command}"


class Command(StrEnum):
    SPEC = "spec"
    CHECK = "check"
    DISCOVER = "discover"
    READ = "read"
    READ_WITH_STATE = "read-with-state"

    @property
    def required_inputs(self) -> tuple[str, ...]:
        return {
            Command.SPEC: (),
            Command.CHECK: ("config",),
            Command.DISCOVER: ("config",),
            Command.READ: ("config", "catalog"),
            Command.READ_WITH_STATE: ("config", "catalog", "state"),
        }[self]

    @property
    def airbyte_verb(self) -> str:
        return "read" if self is Command.READ_WITH_STATE else self.value


_IMAGE_RE = re.compile(r"^(?P<repo>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]+))?$")


@dataclass(frozen=True)
class ConnectorImage:
    """A connector image reference, e.g. `airbyte/source-faker:6.2.38`."""

    repository: str
    tag: str = "latest"

    @classmethod
    def parse(cls, reference: str) -> ConnectorImage:
        match = _IMAGE_RE.match(reference.strip())
        if not match:
            raise InputError(f"invalid image reference {reference!r}: expected NAME[:TAG]")
        repo, tag, digest = match["repo"], match["tag"], match["digest"]
        # A ':' followed by a path is a registry port, not a tag (e.g. localhost:5000/src).
        if tag is None and ":" in repo.rsplit("/", 1)[-1]:
            raise InputError(f"invalid image reference {reference!r}")
        if digest:
            return cls(f"{repo}:{tag}" if tag else repo, f"@{digest}")
        return cls(repo, tag or "latest")

    @property
    def reference(self) -> str:
        return f"{self.repository}{self.tag}" if self.tag.startswith("@") else f"{self.repository}:{self.tag}"

    @property
    def name(self) -> str:
        """Connector name used in artifact paths: the last path component of the repository."""
        return self.repository.rsplit("/", 1)[-1].split(":")[0]

    @property
    def version(self) -> str:
        """Version used in artifact paths: the tag (a digest is shortened)."""
        return self.tag[1:20].replace(":", "-") if self.tag.startswith("@") else self.tag

    def with_tag(self, tag: str) -> ConnectorImage:
        return ConnectorImage(self.repository, tag)


@dataclass(frozen=True)
class ConnectorInputs:
    """The connection objects given to a connector, as files on the host."""

    config: Path | None = None
    catalog: Path | None = None
    state: Path | None = None


@dataclass(frozen=True)
class ContainerLimits:
    """Resource limits of a connector container; None: no limit (the engine's default)."""

    memory_bytes: int | None = None
    cpus: float | None = None

    @property
    def memory_mb(self) -> int | None:
        return None if self.memory_bytes is None else round(self.memory_bytes / 2**20)


@dataclass(frozen=True)
class ExecutionInputs:
    """Everything needed to run one connector command once."""

    connector: ConnectorImage
    command: Command
    inputs: ConnectorInputs
    artifacts_dir: Path
    run_id: str
    timeout_s: float = 3600.0
    environment: dict[str, str] = field(default_factory=dict)
    # Docker network to attach the container to (the proxy stage provides one); None = engine default.
    network: str | None = None
    # Files to place into the container besides the connection objects: container path -> bytes.
    extra_files: dict[str, bytes] = field(default_factory=dict)
    # Tells apart two executions of one image and command, e.g. "rerun" for the control run twice
    # (the noise baseline). Shown in the key's version after a '+', which no Docker tag contains.
    label: str = ""
    limits: ContainerLimits = ContainerLimits()

    @property
    def key(self) -> ExecutionKey:
        version = f"{self.connector.version}+{self.label}" if self.label else self.connector.version
        return ExecutionKey(self.connector.name, version, self.command.value)


@dataclass(frozen=True)
class RecordsSegment:
    """A finished file of record lines, the `lines` records from number `first_seq` on."""

    path: Path
    first_seq: int
    lines: int
    # At least the longest line's length in bytes: the loader sizes its JSON reader by it.
    longest_line: int


@dataclass(frozen=True)
class RunOutcome:
    """What the runner saw of one container run; the output itself went to the store as it streamed."""

    exit_code: int | None = None
    duration_s: float = 0.0
    # Wall clock (UTC) of the container's start and end; None when it never started.
    started_at: datetime | None = None
    finished_at: datetime | None = None
    time_to_first_record_s: float | None = None
    peak_memory_bytes: int | None = None
    # CPU time the container used (user + system), from the engine's last sample before it exited.
    cpu_seconds: float | None = None
    timed_out: bool = False
    interrupted: bool = False
    # The engine killed it for going over its memory limit (State.OOMKilled).
    oom_killed: bool = False
    # Why the container could not run or complete (engine error, missing image, ...), one line.
    error: str | None = None
    stderr_tail: str = ""


@dataclass(frozen=True)
class StoredOutput:
    """What the store filed and loaded of one execution's stdout (and HTTP flows)."""

    lines: int = 0
    stdout_bytes: int = 0
    # At least the longest line written to any JSONL file, in bytes.
    longest_line_bytes: int = 0
    message_counts: dict[str, int] = field(default_factory=dict)
    records_per_stream: dict[str, int] = field(default_factory=dict)
    http_flows: int = 0
    # The fast path was undone: stdout.log was filed again, every line parsed.
    refiled: bool = False
    # The queryable copy in duck.db could not be loaded (the JSONL artifacts are complete), one line.
    error: str | None = None
    # What was filed other than the connector printed it (e.g. a line over the cap), one line each.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class HttpCapture:
    """How the proxy captured one execution's HTTP traffic (http_capture.json says the same, for users)."""

    enabled: bool
    mode: str  # capture | cache | replay | disabled
    proxy_image: str | None = None
    recording: str | None = None
    options: dict[str, list[str]] = field(default_factory=dict)
    # Why the proxy failed (could not start, dumps not copied), one line.
    error: str | None = None
    # The proxy's one-line-per-flow summary in the artifacts, when it wrote one.
    flows_path: Path | None = None


@dataclass(frozen=True)
class ExecutionResult:
    """What one execution produced, composed once from its stages. Messages live in the artifacts and duck.db."""

    inputs: ExecutionInputs
    exit_code: int | None = None
    duration_s: float = 0.0
    time_to_first_record_s: float | None = None
    peak_memory_bytes: int | None = None
    cpu_seconds: float | None = None
    # Wall clock (UTC) of the container's start and end; None when it never started.
    started_at: datetime | None = None
    finished_at: datetime | None = None
    timed_out: bool = False
    interrupted: bool = False
    oom_killed: bool = False
    # Why the execution could not run or complete (engine error, missing image, ...), one line.
    error: str | None = None
    stderr_tail: str = ""
    stdout_lines: int = 0
    stdout_bytes: int = 0
    longest_line_bytes: int = 0
    message_counts: dict[str, int] = field(default_factory=dict)
    records_per_stream: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # None: the execution ran without the proxy stage at all.
    http: HttpCapture | None = None
    # HTTP flows loaded into duck.db (0 also when not captured: `http` says whether it was).
    http_flows: int = 0

    @classmethod
    def compose(
        cls,
        inputs: ExecutionInputs,
        run: RunOutcome,
        output: StoredOutput | None = None,
        http: HttpCapture | None = None,
        *,
        cancelled: bool = False,
    ) -> ExecutionResult:
        """The one place a result is made: the runner's outcome, what the store loaded, the proxy's capture."""
        output = output or StoredOutput()
        return cls(
            inputs=inputs,
            exit_code=run.exit_code,
            duration_s=run.duration_s,
            time_to_first_record_s=run.time_to_first_record_s,
            peak_memory_bytes=run.peak_memory_bytes,
            cpu_seconds=run.cpu_seconds,
            started_at=run.started_at,
            finished_at=run.finished_at,
            timed_out=run.timed_out,
            interrupted=run.interrupted or cancelled,
            oom_killed=run.oom_killed,
            error=run.error or output.error,
            stderr_tail=run.stderr_tail,
            stdout_lines=output.lines,
            stdout_bytes=output.stdout_bytes,
            longest_line_bytes=output.longest_line_bytes,
            message_counts=output.message_counts,
            records_per_stream=output.records_per_stream,
            warnings=output.warnings,
            http=http,
            http_flows=output.http_flows,
        )

    @property
    def records(self) -> int:
        return self.message_counts.get("records", 0)

    @property
    def success(self) -> bool:
        return self.error is None and not self.timed_out and not self.interrupted and self.exit_code == 0

    @property
    def status(self) -> str:
        if self.interrupted:
            return "interrupted"
        if self.timed_out:
            return "timed out"
        if self.error is not None:
            return "error"
        if self.oom_killed:
            return "out of memory"
        return "ok" if self.exit_code == 0 else f"failed (exit {self.exit_code})"

    @property
    def failure_reason(self) -> str | None:
        """One line saying why the execution failed, or None when it succeeded."""
        if self.success:
            return None
        if self.error:
            return self.error
        if self.timed_out:
            return f"timed out after {self.inputs.timeout_s:g}s and was killed"
        if self.interrupted:
            return "interrupted"
        if self.oom_killed:
            limit = self.inputs.limits.memory_mb
            return f"killed: out of memory (limit {limit} MB)" if limit else "killed: out of memory (no limit set)"
        last = self.stderr_tail.strip().splitlines()[-1:] or ["(no stderr)"]
        return f"exited with code {self.exit_code}: {last[0][:300]}"


@dataclass(frozen=True)
class ProxyAttachment:
    """What the proxy stage gives an execution: where to plug the container in and what to inject."""

    network: str
    environment: dict[str, str] = field(default_factory=dict)
    extra_files: dict[str, bytes] = field(default_factory=dict)
    # Called with the created, not yet started, container (e.g. to patch a CA bundle in the image).
    prepare: Callable[[Any], None] | None = None
