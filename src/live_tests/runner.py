"""Run one connector command in a container and stream what it prints into the store's writer.

The container is created from the image's own entrypoint; connection objects are copied in
(put_archive, not bind mounts) so a remote engine works the same. Stdout is attached before the
container starts and is never held in memory whole. The container is always removed.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import docker
from docker.errors import DockerException, NotFound
from docker.types import LogConfig
from docker.utils.socket import STDERR, STDOUT, frames_iter

from live_tests.container_usage import ContainerUsage
from live_tests.docker_engine import LABEL_EXECUTION, labels
from live_tests.models import Command, ContainerLimits, ExecutionInputs, RunOutcome

INPUTS_DIR = "/airbyte"
STDERR_TAIL_LINES = 40
# Artifacts are flushed at least this often, so a long read can be followed with `tail -f`.
FLUSH_INTERVAL_S = 1.0

ProgressCallback = Callable[[ExecutionInputs, int], None]


def airbyte_arguments(command: Command, inputs_dir: str = INPUTS_DIR) -> list[str]:
    args = [command.airbyte_verb]
    if command is not Command.SPEC:
        args += ["--config", f"{inputs_dir}/config.json"]
    if command in (Command.READ, Command.READ_WITH_STATE):
        args += ["--catalog", f"{inputs_dir}/catalog.json"]
    if command is Command.READ_WITH_STATE:
        args += ["--state", f"{inputs_dir}/state.json"]
    return args


def _inputs_archive(inputs: ExecutionInputs) -> bytes:
    """A tar of the connection objects (and extra files), readable by any image user."""
    files: dict[str, bytes] = {}
    for name in inputs.command.required_inputs:
        path: Path = getattr(inputs.inputs, name)
        files[f"{INPUTS_DIR}/{name}.json"] = path.read_bytes()
    files.update(inputs.extra_files)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dirs = sorted({str(Path(p).parent) for p in files} - {"/"})
        for directory in dirs:
            info = tarfile.TarInfo(directory.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, content in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(content), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


class _Flusher(threading.Thread):
    """Flushes the artifacts every second, also while the connector prints nothing (`tail -f`)."""

    def __init__(self, *sinks: Any) -> None:
        super().__init__(daemon=True)
        self._sinks = sinks
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(FLUSH_INTERVAL_S):
            for sink in self._sinks:
                sink.flush()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()


class _StderrSink:
    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._tail: deque[bytes] = deque(maxlen=STDERR_TAIL_LINES)
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        self._file.write(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()[-4096:]
        self._tail.extend(line[-2000:] for line in lines)

    def flush(self) -> None:
        with contextlib.suppress(ValueError):  # closed meanwhile
            self._file.flush()

    def close(self) -> str:
        self._file.close()
        if self._partial:
            self._tail.append(self._partial)
        return b"\n".join(self._tail).decode("utf-8", "replace")


class StdoutSink(Protocol):
    """Where the connector's stdout goes as it streams (the store's message writer)."""

    # time.monotonic() when the first record arrived.
    first_record_at: float | None

    def feed(self, chunk: bytes) -> None: ...

    def flush(self) -> None:
        """Called from another thread, at least once a second while the container runs."""

    @property
    def records(self) -> int: ...


def run_execution(
    client: docker.DockerClient,
    inputs: ExecutionInputs,
    stdout: StdoutSink,
    *,
    prepare: Callable[[Any], None] | None = None,
    cancel: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> RunOutcome:
    """Run the command to completion, timeout or cancellation; stdout goes to `stdout` as it streams.

    Engine errors end up in the outcome's `error`; the container is always removed.
    """
    inputs.artifacts_dir.mkdir(parents=True, exist_ok=True)
    stderr = _StderrSink(inputs.artifacts_dir / "stderr.log")
    container = None
    started = time.monotonic()
    started_at: datetime | None = None
    exit_code: int | None = None
    peak_memory: int | None = None
    cpu_seconds: float | None = None
    timed_out = interrupted = oom_killed = False
    error: str | None = None
    try:
        connector, version, command = inputs.key
        container = client.containers.create(
            inputs.connector.reference,
            command=airbyte_arguments(inputs.command),
            name=f"live-tests-{inputs.run_id}-{connector}-{command}-{uuid.uuid4().hex[:8]}",
            labels=labels(inputs.run_id, "connector", **{LABEL_EXECUTION: f"{connector}/{command}/{version}"}),
            environment=inputs.environment,
            network=inputs.network,
            # We keep our own copy of the output; the engine's log file would double the disk writes.
            log_config=LogConfig(type=LogConfig.types.NONE),
            detach=True,
            **_limits(inputs.limits),
        )
        container.put_archive("/", _inputs_archive(inputs))
        if prepare is not None:
            prepare(container)
        if cancel is not None and cancel.is_set():
            interrupted = True
        else:
            socket = client.api.attach_socket(container.id, params={"stdout": 1, "stderr": 1, "stream": 1})
            # The stream may be silent for long; the watchdog below bounds it, not a socket timeout.
            client.api._disable_socket_timeout(socket)
            timeout = threading.Event()

            def kill_on_timeout() -> None:
                timeout.set()
                _kill(container)

            watchdog = threading.Timer(inputs.timeout_s, kill_on_timeout)
            watchdog.daemon = True
            usage = ContainerUsage(client, container.id)
            flusher = _Flusher(stdout, stderr)
            container.start()
            started = time.monotonic()
            started_at = datetime.now(UTC)
            if cancel is not None and cancel.is_set():
                # Cancelled after the check above: the pipeline's kill may have listed the running
                # containers before this one started, and a silent connector would never be killed.
                _kill(container)
            watchdog.start()
            usage.start()
            flusher.start()
            try:
                _pump(socket, container, stdout, stderr, inputs, cancel, on_progress)
                if cancel is not None and cancel.is_set():
                    _kill(container)
                    interrupted = True
                exit_code = container.wait(timeout=60)["StatusCode"]
                oom_killed = _oom_killed(container)
            finally:
                watchdog.cancel()
                usage.stop()
                flusher.stop()
                socket.close()
            timed_out = timeout.is_set()
            peak_memory, cpu_seconds = usage.peak_memory, usage.cpu_seconds
    except DockerException as exc:
        error = _one_line(exc)
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        duration = time.monotonic() - started
        stderr_tail = stderr.close()
        if container is not None and (cleanup_error := _remove(container)):
            error = error or cleanup_error
    first_record = stdout.first_record_at
    return RunOutcome(
        exit_code=exit_code,
        duration_s=duration,
        started_at=started_at,
        # One clock for both: the end is the start plus the duration.
        finished_at=started_at + timedelta(seconds=duration) if started_at is not None else None,
        time_to_first_record_s=max(0.0, first_record - started) if first_record is not None else None,
        peak_memory_bytes=peak_memory,
        cpu_seconds=cpu_seconds,
        timed_out=timed_out,
        interrupted=interrupted,
        oom_killed=oom_killed,
        error=error,
        stderr_tail=stderr_tail,
    )


def _pump(
    socket: Any,
    container: Any,
    stdout: StdoutSink,
    stderr: _StderrSink,
    inputs: ExecutionInputs,
    cancel: threading.Event | None,
    on_progress: ProgressCallback | None,
) -> None:
    """Read the attached output to its end, also when cancelled.

    The engine only reports a killed container as stopped once its output has been read: a
    cancelled execution keeps draining until the kill (issued from another thread) ends the stream.
    """
    next_report = 0.0
    killing = False
    for stream, chunk in frames_iter(socket, tty=False):
        if stream == STDOUT:
            stdout.feed(chunk)
        elif stream == STDERR:
            stderr.feed(chunk)
        if not killing and cancel is not None and cancel.is_set():
            threading.Thread(target=_kill, args=(container,), daemon=True).start()
            killing = True
        if on_progress is not None and (now := time.monotonic()) >= next_report:
            on_progress(inputs, stdout.records)
            next_report = now + 0.25
    if on_progress is not None:
        on_progress(inputs, stdout.records)


def _limits(limits: ContainerLimits) -> dict[str, Any]:
    """The engine's create options for the limits; swap is capped too, so that the limit is one."""
    options: dict[str, Any] = {}
    if limits.memory_bytes is not None:
        options["mem_limit"] = options["memswap_limit"] = limits.memory_bytes
    if limits.cpus is not None:
        options["nano_cpus"] = int(limits.cpus * 1e9)
    return options


def _oom_killed(container: Any) -> bool:
    try:
        container.reload()
    except DockerException:
        return False
    return bool(container.attrs.get("State", {}).get("OOMKilled"))


def _kill(container: Any) -> None:
    with contextlib.suppress(DockerException):  # already gone or stopped
        container.kill()


def _remove(container: Any) -> str | None:
    try:
        container.remove(force=True, v=True)
    except NotFound:
        pass
    except DockerException as exc:
        return f"could not remove container {container.name}: {_one_line(exc)}"
    return None


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return (str(text).strip().splitlines() or [type(exc).__name__])[0][:300]
