"""The proxy's lifecycle: per execution, a mitmproxy container and its networks, then its dumps.

Per execution: an internal Docker network (no route out) that the connector joins, and a proxy
container on it (alias `live-tests-proxy`) that is also on a normal per-execution network to reach
upstreams. In replay mode the proxy gets no such network at all: the recording is the only source.
On exit the proxy is stopped gracefully (it writes its dumps), the dumps are copied into the
execution's artifacts, and the container and networks are removed, whatever happened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import posixpath
import re
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, ImageNotFound, NotFound

from live_tests.docker_engine import LABEL_EXECUTION, labels
from live_tests.models import ExecutionInputs, HttpCapture, ProxyAttachment
from live_tests.proxy.faults import faults_option
from live_tests.proxy.settings import ProxyMode, ProxySettings
from live_tests.proxy.trust import (
    CA_BUNDLE_PATH,
    CA_CERT_PATH,
    PROXY_ALIAS,
    PROXY_PORT,
    TRUSTSTORE_PATH,
    ProxySessionCA,
    append_ca_to_bundle,
    connector_environment,
    java_truststore,
)

# What the addon writes (the same names as in live_tests.proxy.addon, which is imported only when
# needed: importing mitmproxy's addons takes seconds).
MITM_FILE = "http_dump.mitm"
HAR_FILE = "http_dump.har"
FLOWS_FILE = "http_flows.jsonl"
ADDON_FILE = "addon.py"
# Helpers the addon imports, copied next to it (it runs as a script, not from the package).
ADDON_HELPERS = ("addon_faults.py", "addon_matching.py")
REPLAY_FILE = "http_replay.json"

CAPTURE_FILE = "http_capture.json"
PROXY_LOG_FILE = "proxy.log"
DUMP_FILES = (MITM_FILE, HAR_FILE, FLOWS_FILE, REPLAY_FILE)

# Inside the proxy container.
_ROOT = "/live-tests"
_CONFDIR = f"{_ROOT}/confdir"
_DUMP_DIR = f"{_ROOT}/dump"
_ADDON = f"{_ROOT}/live_tests_addon.py"
_RECORDING_DIR = f"{_ROOT}/recording"


class ProxyError(Exception):
    """The proxy could not be set up; the message (one line) says why, `capture` what it recorded of that."""

    def __init__(self, message: str, capture: HttpCapture | None = None) -> None:
        super().__init__(message)
        self.capture = capture


def attach_to_proxy(inputs: ExecutionInputs, attachment: ProxyAttachment) -> ExecutionInputs:
    """The execution's inputs with the proxy's network, environment and files added."""
    return dataclasses.replace(
        inputs,
        network=attachment.network,
        environment={**inputs.environment, **attachment.environment},
        extra_files={**inputs.extra_files, **attachment.extra_files},
    )


@dataclass
class ProxiedExecution:
    """What the block of proxy_for_execution gets; once the block is over, also what the proxy captured."""

    attachment: ProxyAttachment | None  # None: the proxy is disabled
    capture: HttpCapture | None = None
    # The proxy died or stopped answering while the connector ran (one line): the execution failed.
    failure: str | None = None


@dataclass
class _ProxyRun:
    """What one proxy_for_execution created, so that exit removes exactly that."""

    networks: list[Any] = field(default_factory=list)
    container: Any = None


@contextmanager
def proxy_for_execution(
    client: docker.DockerClient,
    inputs: ExecutionInputs,
    settings: ProxySettings,
    session: ProxySessionCA,
    *,
    cache_from: Path | None = None,
) -> Iterator[ProxiedExecution]:
    """Run the execution's proxy for the duration of the block; yields what the connector needs,
    and, after the block, the capture (also written to http_capture.json for users).

    `cache_from`: in cache mode, the recording to answer from (the control's `http_dump.mitm`);
    without one (the control itself, or a control that recorded nothing) the proxy only captures.
    A proxy that cannot start raises ProxyError, after removing what it made.
    """
    artifacts = inputs.artifacts_dir
    artifacts.mkdir(parents=True, exist_ok=True)
    if not settings.enabled:
        capture = HttpCapture(enabled=False, mode="disabled")
        _write_capture_info(artifacts, capture, flows=None)
        yield ProxiedExecution(None, capture)
        return

    mode, recording = _effective_mode(settings, cache_from)
    connector, version, command = inputs.key
    base = f"live-tests-{inputs.run_id}-{connector}-{command}-{uuid.uuid4().hex[:8]}"
    object_labels = labels(inputs.run_id, "proxy", **{LABEL_EXECUTION: f"{connector}/{command}/{version}"})
    planned = HttpCapture(
        enabled=True,
        mode=mode.value,
        proxy_image=settings.image,
        recording=str(recording) if recording else None,
        options={key: list(values) for key, values in settings.options.items()},
    )
    run = _ProxyRun()
    try:
        attachment = _start_proxy(client, inputs, settings, session, mode, recording, base, object_labels, run)
    except BaseException as exc:
        error, message = _setup_error(exc)
        capture = _shutdown(client, run, artifacts, settings.stop_timeout_s, dataclasses.replace(planned, error=error))
        if message is None:  # not the proxy's (e.g. Ctrl-C): passes through untouched
            raise
        raise ProxyError(message, capture) from None
    proxied = ProxiedExecution(attachment)
    try:
        # What the block raises (a failed connector, Ctrl-C) is not ours: it passes through untouched.
        yield proxied
    finally:
        proxied.failure = _proxy_failure(run.container)
        if proxied.failure is not None:
            planned = dataclasses.replace(planned, error=proxied.failure)
        proxied.capture = _shutdown(client, run, artifacts, settings.stop_timeout_s, planned)


def _proxy_failure(container: Any) -> str | None:
    """Why the proxy is no longer serving once the connector is done, or None while it still runs."""
    try:
        container.reload()
    except NotFound:
        return "proxy: the proxy container was removed mid-run; later requests were not captured"
    except DockerException:
        return None  # the engine is the problem, not the proxy: the runner says so
    state = container.attrs.get("State") or {}
    if container.status == "running":
        return _not_answering(container)
    if container.status == "paused":
        return "proxy: the proxy stopped answering mid-run (its container is paused); requests were not served"
    since = str(state.get("FinishedAt") or "?")[:19].replace("T", " ")
    oom = ", out of memory" if state.get("OOMKilled") else ""
    return (
        f"proxy: the proxy died mid-run (exit code {state.get('ExitCode')}{oom}, at {since} UTC);"
        " later requests were neither served nor captured"
    )


# Run inside the proxy container: a line that is not HTTP gets mitmproxy's 400 at once (no flow is
# made); a hung mitmdump still accepts the connection (the kernel does) but never answers.
_PROBE = f"""
import socket
s = socket.create_connection(("127.0.0.1", {PROXY_PORT}), 5)
s.settimeout(5)
s.sendall(b"live-tests health probe\\r\\n\\r\\n")
try:
    print("answered" if s.recv(64) else "closed")
except socket.timeout:
    print("no-answer")
"""


def _not_answering(container: Any) -> str | None:
    try:
        result = container.exec_run(["python3", "-c", _PROBE])
    except DockerException:
        return None
    if b"no-answer" in (result.output or b""):
        return "proxy: the proxy stopped answering mid-run (no answer within 5s); later requests were not served"
    return None  # answered, or the probe could not run in this image: nothing to say


def _setup_error(exc: BaseException) -> tuple[str | None, str | None]:
    """(what the capture says, the ProxyError message) for a failed start; (None, None) when not the proxy's."""
    if isinstance(exc, ImageNotFound):
        error = f"image not found: {exc.explanation or exc}"
        return error, f"proxy: {error}"
    if isinstance(exc, DockerException):
        error = _one_line(exc)
        return error, f"proxy: {error}"
    if isinstance(exc, ProxyError):
        return str(exc), str(exc)
    return None, None


def _start_proxy(
    client: docker.DockerClient,
    inputs: ExecutionInputs,
    settings: ProxySettings,
    session: ProxySessionCA,
    mode: ProxyMode,
    recording: Path | None,
    base: str,
    object_labels: dict[str, str],
    run: _ProxyRun,
) -> ProxyAttachment:
    """Networks and a listening proxy; `run` records each object as it is made, for cleanup."""
    trust = session.image_trust(client, inputs.connector.reference, inputs.run_id)
    image_env = client.images.get(inputs.connector.reference).attrs.get("Config", {}).get("Env") or []
    internal = client.networks.create(f"{base}-internal", driver="bridge", internal=True, labels=object_labels)
    run.networks.append(internal)
    run.container = client.containers.create(
        settings.image,
        entrypoint=["mitmdump"],
        command=_mitmdump_args(settings, mode, recording),
        name=f"{base}-proxy",
        labels=object_labels,
        network=internal.name,
        networking_config={internal.name: client.api.create_endpoint_config(aliases=[PROXY_ALIAS])},
        extra_hosts={"host.docker.internal": "host-gateway"},
        # mitmdump's log is how we know it listens: unbuffered, it arrives when written.
        environment={"PYTHONUNBUFFERED": "1"},
        detach=True,
    )
    _put_files(run.container, _proxy_files(session, recording))
    if mode is not ProxyMode.REPLAY:  # replay gets no way out at all
        egress = client.networks.create(f"{base}-egress", driver="bridge", labels=object_labels)
        run.networks.append(egress)
        egress.connect(run.container)
    run.container.start()
    _wait_until_listening(run.container, settings.ready_timeout_s)

    def prepare(container: Any) -> None:
        for bundle in trust.bundles:
            append_ca_to_bundle(container, bundle, session.cert_pem)

    return ProxyAttachment(
        network=internal.name,
        environment=connector_environment(trust, image_env),
        extra_files={
            CA_BUNDLE_PATH: session.bundle(),
            CA_CERT_PATH: session.cert_pem,
            **({TRUSTSTORE_PATH: java_truststore(session.cert_pem)} if trust.java else {}),
        },
        prepare=prepare,
    )


def _effective_mode(settings: ProxySettings, cache_from: Path | None) -> tuple[ProxyMode, Path | None]:
    if settings.mode is ProxyMode.REPLAY:
        return ProxyMode.REPLAY, settings.replay_path
    if (
        settings.mode is ProxyMode.CACHE
        and cache_from is not None
        and cache_from.is_file()
        and cache_from.stat().st_size
    ):
        return ProxyMode.CACHE, cache_from
    return ProxyMode.CAPTURE, None


def _mitmdump_args(settings: ProxySettings, mode: ProxyMode, recording: Path | None) -> list[str]:
    args = ["-s", _ADDON, "--listen-port", str(PROXY_PORT)]
    ours = {"confdir": _CONFDIR, "live_tests_dump_dir": _DUMP_DIR, "live_tests_mode": mode.value}
    if recording is not None:
        ours["live_tests_recording"] = f"{_RECORDING_DIR}/{_recording_name(recording)}"
    if settings.faults:
        ours["live_tests_faults"] = faults_option(settings.faults)
    specs = [f"{key}={value}" for key, value in ours.items()]
    specs += [f"{key}={value}" for key, values in settings.mitmproxy_options().items() for value in values]
    return args + [arg for spec in specs for arg in ("--set", spec)]


def _recording_name(recording: Path) -> str:
    return "recording.har" if recording.suffix.lower() in (".har", ".json") else "recording.mitm"


def _proxy_files(session: ProxySessionCA, recording: Path | None) -> list[tuple[str, int, bytes | Path]]:
    """(path, mode, content) of what the proxy container needs; a Path is streamed from disk."""
    files: list[tuple[str, int, bytes | Path]] = [
        (_ADDON, 0o644, Path(str(resources.files("live_tests.proxy") / ADDON_FILE))),
        *((f"{_ROOT}/{name}", 0o644, Path(str(resources.files("live_tests.proxy") / name))) for name in ADDON_HELPERS),
        (f"{_CONFDIR}/mitmproxy-ca.pem", 0o600, session.ca_pem),
    ]
    if recording is not None:
        files.append((f"{_RECORDING_DIR}/{_recording_name(recording)}", 0o644, recording))
    return files


def _put_files(container: Any, files: list[tuple[str, int, bytes | Path]]) -> None:
    # A recording can be large: the archive goes through a temporary file, not memory.
    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for directory in (_ROOT, _CONFDIR, _DUMP_DIR, _RECORDING_DIR):
                info = tarfile.TarInfo(directory.lstrip("/"))
                # The dump dir is written by mitmdump, whatever user the image runs it as.
                info.type, info.mode = tarfile.DIRTYPE, 0o777 if directory == _DUMP_DIR else 0o755
                tar.addfile(info)
            for path, mode, content in files:
                info = tarfile.TarInfo(path.lstrip("/"))
                info.mode, info.mtime = mode, int(time.time())
                if isinstance(content, bytes):
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
                else:
                    info.size = content.stat().st_size
                    with content.open("rb") as source:
                        tar.addfile(info, source)
        archive.seek(0)
        container.put_archive("/", archive)


def _wait_until_listening(container: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        logs = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        if "proxy listening at" in logs:
            return
        container.reload()
        if container.status not in ("created", "running"):
            lines = [line.strip() for line in logs.splitlines() if line.strip()]
            reason = next((line for line in reversed(lines) if "rror" in line or "nknown" in line), None)
            raise ProxyError(f"the proxy exited at start: {reason or (lines[-1] if lines else 'no output')}")
        if time.monotonic() > deadline:
            raise ProxyError(f"the proxy did not listen within {timeout_s:g}s")
        time.sleep(0.1)


def _shutdown(
    client: docker.DockerClient, run: _ProxyRun, artifacts: Path, stop_timeout_s: float, capture: HttpCapture
) -> HttpCapture:
    """Stop (mitmdump writes its dumps on SIGTERM), copy the dumps out, remove everything. Never raises."""
    container = run.container
    try:
        if container is not None:
            with contextlib.suppress(DockerException):
                if container.status == "paused":  # a paused proxy can neither flush nor stop
                    container.unpause()
                elif container.status == "running":
                    container.kill(signal="SIGCONT")  # a stopped (SIGSTOP) mitmdump could not flush either
                container.stop(timeout=int(stop_timeout_s))
            with contextlib.suppress(DockerException, OSError):
                _save_logs(container, artifacts / PROXY_LOG_FILE)
            try:
                _copy_dumps(container, artifacts)
            except (DockerException, OSError, tarfile.TarError) as exc:
                error = capture.error or f"could not copy the proxy dumps: {_one_line(exc)}"
                capture = dataclasses.replace(capture, error=error)
    finally:
        if container is not None:
            with contextlib.suppress(DockerException):
                container.remove(force=True, v=True)
        for network in reversed(run.networks):
            _remove_network(network)
    flows_path = artifacts / FLOWS_FILE
    flows = None
    if flows_path.exists():
        capture = dataclasses.replace(capture, flows_path=flows_path)
        with flows_path.open("rb") as f:
            flows = sum(1 for line in f if line.strip())
    with contextlib.suppress(OSError):
        _write_capture_info(artifacts, capture, flows)
    return capture


# mitmdump logs each request's URL shortened: a secret in it would be cut where no mask finds it.
# proxy.log keeps the origin only; the dumps hold the whole (masked) URL.
_URL_TAIL = re.compile(rb"(\b[a-z][a-z0-9+.-]*://[^/\s?#]+)[/?#]\S*")


def _save_logs(container: Any, path: Path) -> None:
    logs = container.logs(stdout=True, stderr=True, stream=False, follow=False)
    path.write_bytes(_URL_TAIL.sub(rb"\1/...", logs))


def _copy_dumps(container: Any, artifacts: Path) -> None:
    chunks, _stat = container.get_archive(_DUMP_DIR)
    with tempfile.TemporaryFile() as archive:
        for chunk in chunks:
            archive.write(chunk)
        archive.seek(0)
        with tarfile.open(fileobj=archive) as tar:
            for member in tar:
                name = posixpath.basename(member.name)
                source = tar.extractfile(member) if member.isfile() and name in DUMP_FILES else None
                if source is None:
                    continue
                with source, (artifacts / name).open("wb") as target:
                    while block := source.read(1 << 20):
                        target.write(block)
    mitm, har = artifacts / MITM_FILE, artifacts / HAR_FILE
    if mitm.exists() and not har.exists():  # mitmdump was killed before it could write the HAR
        from live_tests.proxy.addon import write_har

        write_har(mitm, har)


def _remove_network(network: Any) -> None:
    with contextlib.suppress(DockerException):
        network.reload()
        # A connector the runner could not remove would keep the network alive.
        for container in network.containers:
            with contextlib.suppress(DockerException):
                network.disconnect(container, force=True)
        network.remove()


def _write_capture_info(artifacts: Path, capture: HttpCapture, flows: int | None) -> None:
    """http_capture.json: for users (nothing reads it back; the capture itself goes to the store)."""
    info: dict[str, Any] = dataclasses.asdict(capture)
    info.pop("flows_path")
    if not capture.enabled:
        info = {"enabled": False, "mode": capture.mode}
    elif flows is not None:
        info["flows"] = flows
    (artifacts / CAPTURE_FILE).write_text(json.dumps(info, indent=2) + "\n")


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return (str(text).strip().splitlines() or [type(exc).__name__])[0][:300]
