"""The proxy's lifecycle: one mitmproxy container per run, a lane in it per execution, then its dumps.

Per run: an internal Docker network (no route out) that every connector joins, and a proxy
container on it (alias `live-tests-proxy`) that is also on a normal network to reach upstreams. In
replay mode the proxy gets no such network at all: the recording is the only source. The proxy
listens on one port per execution from the start, so an execution only registers its lane (mode,
recording, faults: see addon_lanes) and points its connector at its port: no proxy start per
execution. When the execution ends, its lane is closed (the addon writes its dumps and answers: a
proxy that cannot answer is dead or hung, which fails the execution) and its dumps are copied into
the execution's artifacts. At the end of the run the proxy is stopped and removed, with its networks,
whatever happened.
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
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, ImageNotFound, NotFound

from live_tests.docker_engine import labels
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
    connector_environment,
    java_truststore,
)

# What a lane's addon writes (the same names as in live_tests.proxy.addon_lanes, which is imported
# only when needed: importing mitmproxy's addons takes seconds).
MITM_FILE = "http_dump.mitm"
HAR_FILE = "http_dump.har"
FLOWS_FILE = "http_flows.jsonl"
REPLAY_FILE = "http_replay.json"
ADDON_FILE = "addon.py"
# Helpers the addon imports, copied next to it (it runs as a script, not from the package).
ADDON_HELPERS = ("addon_faults.py", "addon_matching.py", "addon_recording.py", "addon_har.py", "addon_lanes.py")

CAPTURE_FILE = "http_capture.json"
PROXY_LOG_FILE = "proxy.log"
DUMP_FILES = (MITM_FILE, HAR_FILE, FLOWS_FILE, REPLAY_FILE)

# Inside the proxy container.
_ROOT = "/live-tests"
_CONFDIR = f"{_ROOT}/confdir"
_LANES_DIR = f"{_ROOT}/lanes"
_ADDON = f"{_ROOT}/live_tests_addon.py"
_RECORDING_DIR = f"{_ROOT}/recording"
# How long a running proxy may take to answer a lane's close, or go without a heartbeat, before it
# counts as hung.
_ANSWER_TIMEOUT_S = 5.0
_POLL_S = 0.02
_MONITOR_S = 1.0


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
    """What the block of RunProxy.lane gets; once the block is over, also what the proxy captured."""

    attachment: ProxyAttachment | None  # None: the proxy is disabled
    capture: HttpCapture | None = None
    # The proxy died or stopped answering while the connector ran (one line): the execution failed.
    failure: str | None = None
    # The proxy stage stopped the connector because its proxy failed: the failure is the execution's error.
    connector_stopped: bool = False


class RunProxy:
    """The one proxy of a run: `lanes` executions at most, each served on a port of its own."""

    def __init__(self, client: docker.DockerClient, settings: ProxySettings, ca: ProxySessionCA, run_id: str) -> None:
        self.client, self.settings, self.ca, self.run_id = client, settings, ca, run_id
        self.networks: list[Any] = []
        self.container: Any = None
        self.start_error: ProxyError | None = None
        # Set by the monitor when the proxy died or hung mid-run (one line); the connectors were stopped.
        self.failure: str | None = None
        self._monitor_stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._startup_log = b""
        self._next_port = PROXY_PORT
        self._lanes = 0
        self._open_lanes = 0  # lanes whose dumps are not written yet: the proxy must stop gracefully
        self._lock = threading.Lock()

    @classmethod
    @contextmanager
    def running(
        cls,
        client: docker.DockerClient,
        settings: ProxySettings,
        ca: ProxySessionCA | None,
        run_id: str,
        lanes: int,
        images: Sequence[str] = (),
    ) -> Iterator[RunProxy]:
        """The run's proxy, started (unless disabled) for the block, stopped and removed after it.

        `images`: the connector images the lanes will serve, probed for their CA bundles while the
        proxy boots. A proxy that cannot start does not raise here: every lane then fails with its ProxyError.
        """
        if ca is None and settings.enabled:
            ca = ProxySessionCA.generate(run_id)
        proxy = cls(client, settings, ca, run_id)  # type: ignore[arg-type]  # no CA only when disabled
        proxy._lanes = max(1, lanes)
        try:
            if settings.enabled:
                with ThreadPoolExecutor(max_workers=2, thread_name_prefix="proxy-start") as pool:
                    probes = [pool.submit(proxy._probe, image) for image in dict.fromkeys(images)]
                    proxy._start()
                    wait(probes)
            yield proxy
        finally:
            proxy._stop()

    def _probe(self, image: str) -> None:
        with contextlib.suppress(DockerException):  # the lane says what is wrong with the image
            self.ca.image_trust(self.client, image, self.run_id)

    # --- the run's container -----------------------------------------------------------------

    def _start(self) -> None:
        base = f"live-tests-{self.run_id}-{uuid.uuid4().hex[:8]}"
        object_labels = labels(self.run_id, "proxy")
        try:
            internal = self.client.networks.create(
                f"{base}-internal", driver="bridge", internal=True, labels=object_labels
            )
            self.networks.append(internal)
            self.container = self.client.containers.create(
                self.settings.image,
                entrypoint=["mitmdump"],
                command=self._mitmdump_args(),
                name=f"{base}-proxy",
                labels=object_labels,
                network=internal.name,
                networking_config={internal.name: self.client.api.create_endpoint_config(aliases=[PROXY_ALIAS])},
                extra_hosts={"host.docker.internal": "host-gateway"},
                # mitmdump's log is how we know it listens: unbuffered, it arrives when written.
                environment={"PYTHONUNBUFFERED": "1"},
                detach=True,
            )
            _put_files(self.container, self._proxy_files(), directories=(_ROOT, _CONFDIR, _LANES_DIR, _RECORDING_DIR))
            if self.settings.mode is not ProxyMode.REPLAY:  # replay gets no way out at all
                egress = self.client.networks.create(f"{base}-egress", driver="bridge", labels=object_labels)
                self.networks.append(egress)
                egress.connect(self.container)
            self.container.start()
            self._startup_log = _wait_until_listening(self.container, self.settings.ready_timeout_s)
            self._monitor = threading.Thread(target=self._watch, name="proxy-monitor", daemon=True)
            self._monitor.start()
        except (DockerException, ProxyError) as exc:
            error, message = _setup_error(exc)
            assert error is not None and message is not None
            self.start_error = ProxyError(message, self._planned(ProxyMode.CAPTURE, None, error=error))

    def _mitmdump_args(self) -> list[str]:
        args = ["-s", _ADDON]
        for index in range(self._lanes):
            args += ["--mode", f"regular@{PROXY_PORT + index}"]
        specs = [f"confdir={_CONFDIR}", f"live_tests_lanes_dir={_LANES_DIR}"]
        specs += [f"{key}={value}" for key, values in self.settings.mitmproxy_options().items() for value in values]
        return args + [arg for spec in specs for arg in ("--set", spec)]

    def _proxy_files(self) -> list[tuple[str, int, bytes | Path]]:
        """(path, mode, content) of what the proxy container needs; a Path is streamed from disk."""
        package = resources.files("live_tests.proxy")
        files: list[tuple[str, int, bytes | Path]] = [
            (_ADDON, 0o644, Path(str(package / ADDON_FILE))),
            *((f"{_ROOT}/{name}", 0o644, Path(str(package / name))) for name in ADDON_HELPERS),
            (f"{_CONFDIR}/mitmproxy-ca.pem", 0o600, self.ca.ca_pem),
        ]
        if self.settings.mode is ProxyMode.REPLAY and self.settings.replay_path is not None:
            recording = self.settings.replay_path
            files.append((f"{_RECORDING_DIR}/{_recording_name(recording)}", 0o644, recording))
        return files

    def _watch(self) -> None:
        """While the run lasts: a proxy that dies or whose event loop stops beating fails the run now,
        its connectors stopped, instead of leaving them to wait on it until their own timeout."""
        last_beat, beating_since = None, time.monotonic()
        while not self._monitor_stop.wait(_MONITOR_S):
            failure = self._failure()
            if failure is None:
                beat = self._read_json(f"{_LANES_DIR}/heartbeat")
                if beat != last_beat:
                    last_beat, beating_since = beat, time.monotonic()
                elif time.monotonic() - beating_since > _ANSWER_TIMEOUT_S:
                    failure = _HUNG
            if failure is not None and not self._monitor_stop.is_set():
                self.failure = f"{failure}; the connectors it served were stopped"
                self._stop_connectors()
                return

    def _stop_connectors(self) -> None:
        """Kill every container on the run's internal network but the proxy: the connectors."""
        with contextlib.suppress(DockerException):
            network = self.networks[0]
            network.reload()
            for container_id in _attached(network):
                if container_id != self.container.id:
                    with contextlib.suppress(DockerException):
                        self.client.api.kill(container_id)

    def _stop(self) -> None:
        """Stop (mitmdump writes the dumps of lanes still open on SIGTERM), remove everything. Never raises."""
        self._monitor_stop.set()
        if self._monitor is not None:
            self._monitor.join()
        container = self.container
        try:
            if container is not None and self._open_lanes:
                with contextlib.suppress(DockerException):
                    container.reload()
                    if container.status == "paused":  # a paused proxy can neither flush nor stop
                        container.unpause()
                    elif container.status == "running":
                        container.kill(signal="SIGCONT")  # a stopped (SIGSTOP) mitmdump could not stop either
                    container.stop(timeout=int(self.settings.stop_timeout_s))
        finally:
            if container is not None:
                with contextlib.suppress(DockerException):
                    container.remove(force=True, v=True)
            for network in reversed(self.networks):
                _remove_network(network)

    def _planned(self, mode: ProxyMode, recording: Path | None, error: str | None = None) -> HttpCapture:
        return HttpCapture(
            enabled=True,
            mode=mode.value,
            proxy_image=self.settings.image,
            recording=str(recording) if recording else None,
            options={key: list(values) for key, values in self.settings.options.items()},
            error=error,
        )

    # --- one execution ---------------------------------------------------------------------

    @contextmanager
    def lane(self, inputs: ExecutionInputs, cache_from: Path | None = None) -> Iterator[ProxiedExecution]:
        """Serve one execution for the duration of the block; yields what the connector needs, and,
        after the block, the capture (also written to http_capture.json for users).

        `cache_from`: in cache mode, the recording to answer from (the control's `http_dump.mitm`);
        without one (the control itself, or a control that recorded nothing) the lane only captures.
        A lane that cannot be served raises ProxyError.
        """
        artifacts = inputs.artifacts_dir
        artifacts.mkdir(parents=True, exist_ok=True)
        if not self.settings.enabled:
            capture = HttpCapture(enabled=False, mode="disabled")
            _write_capture_info(artifacts, capture, flows=None)
            yield ProxiedExecution(None, capture)
            return
        mode, recording = _effective_mode(self.settings, cache_from)
        planned = self._planned(mode, recording)
        if self.start_error is not None or self.failure is not None:
            error = self.start_error or ProxyError(self.failure or "", dataclasses.replace(planned, error=self.failure))
            capture = error.capture or planned
            with contextlib.suppress(OSError):
                _write_capture_info(artifacts, capture, flows=None)
            raise ProxyError(str(error), capture)
        with self._lock:
            port, self._next_port = self._next_port, self._next_port + 1
        if port >= PROXY_PORT + self._lanes:
            raise ProxyError(f"proxy: no port left for {inputs.key} (the run's proxy serves {self._lanes} executions)")
        folder = f"{_LANES_DIR}/{port}"
        since = time.time()
        with self._lock:
            self._open_lanes += 1
        try:
            attachment = self._register(inputs, mode, recording, port, folder)
        except BaseException as exc:
            error, message = _setup_error(exc)
            capture = self._collect(artifacts, folder, since, dataclasses.replace(planned, error=error))
            if message is None:  # not the proxy's (e.g. Ctrl-C): passes through untouched
                raise
            raise ProxyError(message, capture) from None
        proxied = ProxiedExecution(attachment)
        try:
            # What the block raises (a failed connector, Ctrl-C) is not ours: it passes through untouched.
            yield proxied
        finally:
            proxied.failure = self._close(folder)
            proxied.connector_stopped = self.failure is not None and proxied.failure == self.failure
            if proxied.failure is None:
                with self._lock:
                    self._open_lanes -= 1
            if proxied.failure is not None:
                planned = dataclasses.replace(planned, error=proxied.failure)
            proxied.capture = self._collect(artifacts, folder, since, planned)

    def _register(
        self, inputs: ExecutionInputs, mode: ProxyMode, recording: Path | None, port: int, folder: str
    ) -> ProxyAttachment:
        trust = self.ca.image_trust(self.client, inputs.connector.reference, inputs.run_id)
        image = self.client.images.get(inputs.connector.reference)
        image_env = image.attrs.get("Config", {}).get("Env") or []
        lane: dict[str, Any] = {"name": "/".join(inputs.key), "mode": mode.value, "recording": ""}
        files: list[tuple[str, int, bytes | Path]] = []
        if mode is ProxyMode.REPLAY and recording is not None:
            lane["recording"] = f"{_RECORDING_DIR}/{_recording_name(recording)}"  # copied at start
        elif recording is not None:
            lane["recording"] = f"{folder}/{_recording_name(recording)}"
            files.append((lane["recording"], 0o644, recording))
        if self.settings.faults:
            lane["faults"] = faults_option(self.settings.faults)
        files += [(f"{folder}/lane.json", 0o644, json.dumps(lane).encode()), (f"{folder}/registered", 0o644, b"")]
        # The dump folder is written by mitmdump, whatever user the image runs it as.
        _put_files(self.container, files, directories=(folder,))
        answer = self._answer(f"{folder}/ready", self.settings.ready_timeout_s)
        if answer is None:
            raise ProxyError(self._failure() or "proxy: the proxy did not take the execution (no answer)")
        if not answer.get("ok"):
            raise ProxyError(f"proxy: {answer.get('error') or 'the proxy refused the execution'}")

        def prepare(container: Any) -> None:
            self.ca.patch_bundles(container, image.id, trust)

        return ProxyAttachment(
            network=self.networks[0].name,
            environment=connector_environment(trust, image_env, port),
            extra_files={
                CA_BUNDLE_PATH: self.ca.bundle(),
                CA_CERT_PATH: self.ca.cert_pem,
                **({TRUSTSTORE_PATH: java_truststore(self.ca.cert_pem)} if trust.java else {}),
            },
            prepare=prepare,
        )

    def _close(self, folder: str) -> str | None:
        """Ask the lane to write its dumps; why the proxy could not (dead, paused, hung), or None."""
        failure = self.failure or self._failure()
        if failure is not None:
            return failure
        try:
            _put_files(self.container, [(f"{folder}/close", 0o644, b"")])
        except DockerException:
            return self._failure()
        if self._answer(f"{folder}/closed", _ANSWER_TIMEOUT_S) is not None:
            return None
        return self.failure or self._failure() or _HUNG

    def _read_json(self, path: str) -> dict[str, Any] | None:
        """A file the addon wrote (whole, by rename), or None while there is none."""
        try:
            chunks, _stat = self.container.get_archive(path)
            with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
                member = tar.next()
                source = tar.extractfile(member) if member is not None else None
                return json.loads(source.read() or b"{}") if source is not None else None
        except (NotFound, tarfile.TarError, ValueError):
            return None

    def _answer(self, path: str, timeout_s: float) -> dict[str, Any] | None:
        """The addon's answer file, once it is there; None when none came in time or the proxy is gone."""
        deadline = time.monotonic() + timeout_s
        checked = time.monotonic()
        while time.monotonic() < deadline:
            answer = self._read_json(path)
            if answer is not None:
                return answer
            if self.failure is not None:
                return None
            if time.monotonic() - checked > 1.0:  # a dead proxy will not answer: do not wait it out
                checked = time.monotonic()
                if self._failure() is not None:
                    return None
            time.sleep(_POLL_S)
        return None

    def _failure(self) -> str | None:
        """Why the proxy is no longer serving, or None while it runs."""
        try:
            self.container.reload()
        except NotFound:
            return "proxy: the proxy container was removed mid-run; later requests were not captured"
        except DockerException:
            return None  # the engine is the problem, not the proxy: the runner says so
        state = self.container.attrs.get("State") or {}
        if self.container.status == "running":
            return None
        if self.container.status == "paused":
            return "proxy: the proxy stopped answering mid-run (its container is paused); requests were not served"
        since = str(state.get("FinishedAt") or "?")[:19].replace("T", " ")
        oom = ", out of memory" if state.get("OOMKilled") else ""
        return (
            f"proxy: the proxy died mid-run (exit code {state.get('ExitCode')}{oom}, at {since} UTC);"
            " later requests were neither served nor captured"
        )

    def _collect(self, artifacts: Path, folder: str, since: float, capture: HttpCapture) -> HttpCapture:
        """The lane's dumps and log into the artifacts, and the capture's summary. Never raises."""
        with contextlib.suppress(DockerException, OSError):
            window = self.container.logs(stdout=True, stderr=True, since=int(since))
            _save_log(self._startup_log + window, artifacts / PROXY_LOG_FILE)
        try:
            _copy_dumps(self.container, f"{folder}/dump", artifacts)
        except NotFound:
            pass  # the lane never opened: nothing was captured
        except (DockerException, OSError, tarfile.TarError) as exc:
            error = capture.error or f"could not copy the proxy dumps: {_one_line(exc)}"
            capture = dataclasses.replace(capture, error=error)
        flows_path = artifacts / FLOWS_FILE
        flows = None
        if flows_path.exists():
            capture = dataclasses.replace(capture, flows_path=flows_path)
            with flows_path.open("rb") as f:
                flows = sum(1 for line in f if line.strip())
        with contextlib.suppress(OSError):
            _write_capture_info(artifacts, capture, flows)
        return capture


_HUNG = (
    f"proxy: the proxy stopped answering mid-run (no answer within {_ANSWER_TIMEOUT_S:g}s);"
    " later requests were not served"
)


@contextmanager
def proxy_for_execution(
    client: docker.DockerClient,
    inputs: ExecutionInputs,
    settings: ProxySettings,
    session: ProxySessionCA,
    *,
    cache_from: Path | None = None,
) -> Iterator[ProxiedExecution]:
    """One execution behind a proxy of its own (a run of one): see RunProxy."""
    with (
        RunProxy.running(client, settings, session, inputs.run_id, lanes=1) as proxy,
        proxy.lane(inputs, cache_from) as proxied,
    ):
        yield proxied


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


def _recording_name(recording: Path) -> str:
    return "recording.har" if recording.suffix.lower() in (".har", ".json") else "recording.mitm"


def _put_files(container: Any, files: list[tuple[str, int, bytes | Path]], directories: tuple[str, ...] = ()) -> None:
    """Copy files (a Path is streamed from disk) and world-writable directories into the container."""
    # A recording can be large: the archive goes through a temporary file, not memory.
    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for directory in directories:
                info = tarfile.TarInfo(directory.lstrip("/"))
                # mitmdump writes into them, whatever user the image runs it as.
                info.type, info.mode = tarfile.DIRTYPE, 0o777
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


def _wait_until_listening(container: Any, timeout_s: float) -> bytes:
    """mitmdump's log once it listens on every port."""
    deadline = time.monotonic() + timeout_s
    while True:
        logs = container.logs(stdout=True, stderr=True)
        text = logs.decode("utf-8", "replace")
        if "live-tests proxy ready" in text:
            return logs
        container.reload()
        if container.status not in ("created", "running"):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            reason = next((line for line in reversed(lines) if "rror" in line or "nknown" in line), None)
            raise ProxyError(f"the proxy exited at start: {reason or (lines[-1] if lines else 'no output')}")
        if time.monotonic() > deadline:
            raise ProxyError(f"the proxy did not listen within {timeout_s:g}s")
        time.sleep(0.05)


# mitmdump logs each request's URL shortened: a secret in it would be cut where no mask finds it.
# proxy.log keeps the origin only; the dumps hold the whole (masked) URL.
_URL_TAIL = re.compile(rb"(\b[a-z][a-z0-9+.-]*://[^/\s?#]+)[/?#]\S*")


def _save_log(logs: bytes, path: Path) -> None:
    path.write_bytes(_URL_TAIL.sub(rb"\1/...", logs))


def _copy_dumps(container: Any, dump_dir: str, artifacts: Path) -> None:
    chunks, _stat = container.get_archive(dump_dir)
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
    if mitm.exists() and not har.exists():  # the proxy died before it could write the HAR
        from live_tests.proxy.addon_har import write_har

        write_har(mitm, har)


def _remove_network(network: Any) -> None:
    with contextlib.suppress(DockerException):
        network.reload()
        # A connector the runner could not remove would keep the network alive.
        for container_id in _attached(network):
            with contextlib.suppress(DockerException):
                network.disconnect(container_id, force=True)
        network.remove()


def _attached(network: Any) -> list[str]:
    """Ids of the containers on `network` (`network.containers` inspects each: fails for one removed meanwhile)."""
    return list(network.attrs.get("Containers") or {})


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
