"""The proxy stage: every execution talks to the world through its own mitmproxy container.

Per execution: an internal Docker network (no route out) that the connector joins, and a proxy
container on it (alias `live-tests-proxy`) that is also on a normal per-execution network to reach
upstreams. In replay mode the proxy gets no such network at all: the recording is the only source.
The connector is pointed at the proxy with the usual proxy variables and trusts the run's CA,
generated once per run, through env vars and by appending it to its image's certifi and system
bundles. On exit the proxy is stopped gracefully (it writes its dumps), the dumps are copied into
the execution's artifacts, and the container and networks are removed, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import json
import posixpath
import struct
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, ImageNotFound, NotFound

from live_tests.docker_engine import LABEL_EXECUTION, labels
from live_tests.models import ExecutionInputs, InputError, ProxyAttachment
from live_tests.proxy_image.image import DEFAULT_PROXY_IMAGE

# What the addon writes (the same names as in live_tests_addon, which is imported only when needed:
# importing mitmproxy's addons takes seconds).
MITM_FILE = "http_dump.mitm"
HAR_FILE = "http_dump.har"
FLOWS_FILE = "http_flows.jsonl"
ADDON_FILE = "live_tests_addon.py"

PROXY_ALIAS = "live-tests-proxy"
PROXY_PORT = 8080
PROXY_URL = f"http://{PROXY_ALIAS}:{PROXY_PORT}"
CAPTURE_FILE = "http_capture.json"
PROXY_LOG_FILE = "proxy.log"
DUMP_FILES = (MITM_FILE, HAR_FILE, FLOWS_FILE)

# Inside the proxy container.
_ROOT = "/live-tests"
_CONFDIR = f"{_ROOT}/confdir"
_DUMP_DIR = f"{_ROOT}/dump"
_ADDON = f"{_ROOT}/{ADDON_FILE}"
_RECORDING_DIR = f"{_ROOT}/recording"
# Inside the connector container.
CA_BUNDLE_PATH = "/etc/live-tests/ca-bundle.pem"
CA_CERT_PATH = "/etc/live-tests/mitmproxy-ca-cert.pem"
TRUSTSTORE_PATH = "/etc/live-tests/truststore.jks"
TRUSTSTORE_PASSWORD = "changeit"  # a truststore holds no secret; Java just wants a password

# Options the stage sets itself; the rest of mitmproxy's options are the user's (--proxy-option).
_RESERVED_OPTIONS = frozenset(
    {"confdir", "listen_host", "listen_port", "mode", "live_tests_dump_dir", "live_tests_mode", "live_tests_recording"}
)
# Bundles that programs read without being told (Debian/Ubuntu/Alpine, RHEL, others).
_SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")
_PROBE_SCRIPT = """
for py in python3 python; do
  command -v "$py" >/dev/null 2>&1 && "$py" -c 'import certifi; print("bundle=" + certifi.where())' 2>/dev/null
done
for f in {system}; do [ -e "$f" ] && echo "bundle=$f"; done
command -v java >/dev/null 2>&1 && echo "java=$(command -v java)"
exit 0
""".format(system=" ".join(_SYSTEM_BUNDLES))


class ProxyError(Exception):
    """The proxy could not be set up; the message (one line) says why."""


class ProxyMode(StrEnum):
    CAPTURE = "capture"  # everything goes upstream and is recorded
    CACHE = "cache"  # the control's recording answers the target; the rest goes upstream
    REPLAY = "replay"  # hermetic: only a given recording answers, nothing leaves the proxy


def parse_proxy_options(values: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`KEY=VALUE` strings (repeatable, e.g. map_remote) -> {key: values in order}."""
    options: dict[str, list[str]] = {}
    for value in values:
        key, sep, val = value.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(
                f"--proxy-option {value!r}: expected KEY=VALUE, e.g. map_remote='|https://api|http://host:8000'"
            )
        if key in _RESERVED_OPTIONS:
            raise InputError(f"--proxy-option {key}: live-tests sets this mitmproxy option itself")
        options.setdefault(key, []).append(val)
    return {key: tuple(vals) for key, vals in options.items()}


@dataclass(frozen=True)
class ProxySettings:
    """How executions are proxied; one per run."""

    image: str = DEFAULT_PROXY_IMAGE
    mode: ProxyMode = ProxyMode.CAPTURE
    # REPLAY: the .mitm or HAR every request is answered from.
    replay_path: Path | None = None
    # mitmproxy options (`--set KEY=VALUE`), several values for a repeatable one.
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # False: --disable-proxy, connectors run on the engine's default network, nothing is captured.
    enabled: bool = True
    ready_timeout_s: float = 60.0
    stop_timeout_s: float = 30.0

    @classmethod
    def from_cli(
        cls,
        *,
        image: str = DEFAULT_PROXY_IMAGE,
        disable_proxy: bool = False,
        proxy_options: Sequence[str] = (),
        http_cache: bool = False,
        http_replay: Path | None = None,
    ) -> ProxySettings:
        """Settings from the `live-tests debug` flags, checked; InputError says what to fix."""
        if http_cache and http_replay is not None:
            raise InputError("--http-cache and --http-replay exclude each other: pick one")
        if disable_proxy and (http_cache or http_replay is not None or proxy_options):
            raise InputError("--disable-proxy turns the proxy off: drop --http-cache, --http-replay and --proxy-option")
        mode = ProxyMode.REPLAY if http_replay is not None else ProxyMode.CACHE if http_cache else ProxyMode.CAPTURE
        settings = cls(
            image=image,
            mode=mode,
            replay_path=http_replay,
            options=parse_proxy_options(proxy_options),
            enabled=not disable_proxy,
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if not self.enabled:
            return
        if self.mode is ProxyMode.REPLAY:
            if self.replay_path is None:
                raise InputError("replay mode needs a recording: --http-replay PATH (an http_dump.mitm or .har)")
            check_recording(self.replay_path)
        validate_mitmproxy_options(self.options)


def check_recording(path: Path) -> int:
    """Number of recorded responses in a .mitm or HAR file; InputError when it cannot be used."""
    from mitmproxy import exceptions, http
    from mitmproxy.io import FlowReader

    if not path.is_file():
        raise InputError(
            f"--http-replay {path}: no such file (give an http_dump.mitm or http_dump.har of an earlier run)"
        )
    count = 0
    try:
        with path.open("rb") as f:
            for flow in FlowReader(f).stream():
                count += isinstance(flow, http.HTTPFlow) and flow.response is not None
    except (exceptions.FlowReadException, OSError, ValueError) as exc:
        raise InputError(f"--http-replay {path}: not a mitmproxy dump or HAR file ({exc})") from None
    return count


def validate_mitmproxy_options(options: Mapping[str, Sequence[str]]) -> None:
    """Check option names and values with the host's mitmproxy, so a typo fails before any container."""
    if not options:
        return
    from mitmproxy import exceptions
    from mitmproxy import options as mitm_options
    from mitmproxy.addons import default_addons
    from mitmproxy.addons.mapremote import parse_map_remote_spec
    from mitmproxy.addons.termlog import TermLog
    from mitmproxy.tools.dump import dumper, errorcheck, keepserving, readfile

    from live_tests.proxy_image.live_tests_addon import LiveTestsAddon

    class _Loader:  # what an addon's load() needs to declare its options, without running it
        def __init__(self, opts: Any) -> None:
            self.add_option = opts.add_option

        def add_command(self, *args: Any, **kwargs: Any) -> None:
            pass

    async def declare_all() -> Any:
        opts = mitm_options.Options()
        loader = _Loader(opts)
        extra = (dumper.Dumper(), keepserving.KeepServing(), readfile.ReadFileStdin(), errorcheck.ErrorCheck())
        for addon in (*default_addons(), *extra, TermLog(), LiveTestsAddon()):
            if hasattr(addon, "load"):
                addon.load(loader)
        return opts

    opts = asyncio.run(declare_all())  # some addons want an event loop when constructed
    for key, values in options.items():
        shown = f"--proxy-option {key}={values[-1]}"
        try:
            opts.set(*(f"{key}={value}" for value in values))
        except exceptions.OptionsError as exc:
            raise InputError(f"{shown}: {exc}") from None
        choices = opts._options[key].choices
        if choices and any(value not in choices for value in values):
            raise InputError(f"{shown}: expected one of {', '.join(choices)}")
        for spec in values if key == "map_remote" else ():
            try:
                parse_map_remote_spec(spec)
            except ValueError as exc:
                raise InputError(f"--proxy-option map_remote={spec}: {exc}") from None


@dataclass(frozen=True)
class ImageTrust:
    """Where a connector image keeps the CA bundles it reads, and whether it runs a JVM."""

    bundles: tuple[str, ...] = ()
    java: str | None = None


@dataclass
class ProxySessionCA:
    """The run's mitmproxy CA, made once and shared by all its proxies; also caches image probes."""

    ca_pem: bytes  # private key + certificate: the proxy's confdir `mitmproxy-ca.pem`
    cert_pem: bytes  # the certificate alone: what connectors must trust
    _trust: dict[str, ImageTrust] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _image_locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)

    @classmethod
    def generate(cls, run_id: str) -> ProxySessionCA:
        from cryptography.hazmat.primitives import serialization
        from mitmproxy.certs import create_ca

        key, cert = create_ca(organization="live-tests", cn=f"live-tests run {run_id}", key_size=2048)
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        return cls(ca_pem=key_pem + cert_pem, cert_pem=cert_pem)

    def bundle(self) -> bytes:
        """Public CAs plus ours: for clients told to use one bundle instead of their own."""
        import certifi

        return Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n" + self.cert_pem

    def image_trust(self, client: docker.DockerClient, image: str, run_id: str) -> ImageTrust:
        """Probed once per image; different images are probed concurrently."""
        image_id = client.images.get(image).id
        with self._lock:
            image_lock = self._image_locks.setdefault(image_id, threading.Lock())
        with image_lock:
            if image_id not in self._trust:
                self._trust[image_id] = probe_image_trust(client, image, run_id)
            return self._trust[image_id]


def probe_image_trust(client: docker.DockerClient, image: str, run_id: str) -> ImageTrust:
    """Run a throwaway container of the image (no network) that prints its CA bundle paths."""
    container = None
    try:
        container = client.containers.create(
            image,
            entrypoint=["/bin/sh", "-c", _PROBE_SCRIPT],
            command=[],
            labels=labels(run_id, "probe"),
            network_mode="none",
            detach=True,
        )
        container.start()
        container.wait(timeout=60)
        output = container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
    except (DockerException, OSError):
        return ImageTrust()  # no shell in the image: the environment variables are all we can do
    finally:
        if container is not None:
            with contextlib.suppress(DockerException):
                container.remove(force=True)
    bundles: dict[str, None] = {}
    java = None
    for line in output.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "bundle" and value.startswith("/"):
            bundles[value] = None
        elif key == "java" and value:
            java = value
    return ImageTrust(tuple(bundles), java)


def append_ca_to_bundle(container: Any, path: str, cert_pem: bytes) -> bool:
    """Append the CA to a bundle file in a (created, not started) container; follows symlinks."""
    for _ in range(8):
        try:
            chunks, _stat = container.get_archive(path)
        except NotFound:
            return False
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.next()
            if member is None:
                return False
            if member.issym():
                path = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
                continue
            extracted = tar.extractfile(member) if member.isfile() else None
            if extracted is None:
                return False
            content = extracted.read()
        if cert_pem in content:
            return True
        content = content.rstrip(b"\n") + b"\n" + cert_pem
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as out:
            info = tarfile.TarInfo(posixpath.basename(path))
            info.size, info.mode, info.mtime = len(content), member.mode, int(time.time())
            info.uid, info.gid, info.uname, info.gname = member.uid, member.gid, member.uname, member.gname
            out.addfile(info, io.BytesIO(content))
        container.put_archive(posixpath.dirname(path), buffer.getvalue())
        return True
    return False


def java_truststore(cert_pem: bytes, password: str = TRUSTSTORE_PASSWORD) -> bytes:
    """A JKS truststore holding the CA as a trusted certificate (any JVM reads JKS).

    Layout: magic, version 2, entry count, per entry (tag 2 = trusted cert, alias, date,
    certificate type and DER), then SHA-1 over the password (UTF-16BE), "Mighty Aphrodite" and
    everything before: the integrity check Java runs when a password is given.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)

    def utf(text: str) -> bytes:
        data = text.encode()
        return struct.pack(">H", len(data)) + data

    body = struct.pack(">III", 0xFEEDFEED, 2, 1)
    body += struct.pack(">I", 2) + utf("live-tests-ca") + struct.pack(">q", int(time.time() * 1000))
    body += utf("X.509") + struct.pack(">I", len(der)) + der
    digest = hashlib.sha1(password.encode("utf-16-be") + b"Mighty Aphrodite" + body).digest()
    return body + digest


def connector_environment(trust: ImageTrust, image_env: Sequence[str] = ()) -> dict[str, str]:
    env = {
        "HTTP_PROXY": PROXY_URL,
        "HTTPS_PROXY": PROXY_URL,
        "http_proxy": PROXY_URL,
        "https_proxy": PROXY_URL,
        "NO_PROXY": "",
        "no_proxy": "",
        "REQUESTS_CA_BUNDLE": CA_BUNDLE_PATH,
        "SSL_CERT_FILE": CA_BUNDLE_PATH,
        "CURL_CA_BUNDLE": CA_BUNDLE_PATH,
        "NODE_EXTRA_CA_CERTS": CA_CERT_PATH,
    }
    if trust.java:
        # The JVM reads neither *_PROXY nor the PEM bundles: system properties and a truststore.
        existing = next((e.split("=", 1)[1] for e in image_env if e.startswith("JAVA_TOOL_OPTIONS=")), "")
        properties = {
            "http.proxyHost": PROXY_ALIAS,
            "http.proxyPort": str(PROXY_PORT),
            "https.proxyHost": PROXY_ALIAS,
            "https.proxyPort": str(PROXY_PORT),
            "javax.net.ssl.trustStore": TRUSTSTORE_PATH,
            "javax.net.ssl.trustStorePassword": TRUSTSTORE_PASSWORD,
            "javax.net.ssl.trustStoreType": "JKS",
        }
        env["JAVA_TOOL_OPTIONS"] = " ".join([existing, *(f"-D{k}={v}" for k, v in properties.items())]).strip()
    return env


def attach_to_proxy(inputs: ExecutionInputs, attachment: ProxyAttachment) -> ExecutionInputs:
    """The execution's inputs with the proxy's network, environment and files added."""
    return dataclasses.replace(
        inputs,
        network=attachment.network,
        environment={**inputs.environment, **attachment.environment},
        extra_files={**inputs.extra_files, **attachment.extra_files},
    )


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
) -> Iterator[ProxyAttachment | None]:
    """Run the execution's proxy for the duration of the block; yields what the connector needs.

    `cache_from`: in cache mode, the recording to answer from (the control's `http_dump.mitm`);
    without one (the control itself, or a control that recorded nothing) the proxy only captures.
    Yields None when the proxy is disabled.
    """
    artifacts = inputs.artifacts_dir
    artifacts.mkdir(parents=True, exist_ok=True)
    if not settings.enabled:
        _write_capture_info(artifacts, {"enabled": False, "mode": "disabled"})
        yield None
        return

    mode, recording = _effective_mode(settings, cache_from)
    connector, version, command = inputs.key
    base = f"live-tests-{inputs.run_id}-{connector}-{command}-{uuid.uuid4().hex[:8]}"
    object_labels = labels(inputs.run_id, "proxy", **{LABEL_EXECUTION: f"{connector}/{command}/{version}"})
    info: dict[str, Any] = {
        "enabled": True,
        "mode": mode.value,
        "proxy_image": settings.image,
        "recording": str(recording) if recording else None,
        "options": {key: list(values) for key, values in settings.options.items()},
        "error": None,
    }
    run = _ProxyRun()
    try:
        try:
            attachment = _start_proxy(client, inputs, settings, session, mode, recording, base, object_labels, run)
        except ImageNotFound as exc:
            info["error"] = f"image not found: {exc.explanation or exc}"
            raise ProxyError(f"proxy: {info['error']}") from None
        except DockerException as exc:
            info["error"] = _one_line(exc)
            raise ProxyError(f"proxy: {info['error']}") from None
        except ProxyError as exc:
            info["error"] = str(exc)
            raise
        # What the block raises (a failed connector, Ctrl-C) is not ours: it passes through untouched.
        yield attachment
    finally:
        _shutdown(client, run, artifacts, settings.stop_timeout_s, info)


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
    ours = {
        "confdir": _CONFDIR,
        # Without it mitmproxy connects to the original host before map_remote can redirect.
        "connection_strategy": "lazy",
        "live_tests_dump_dir": _DUMP_DIR,
        "live_tests_mode": mode.value,
    }
    if recording is not None:
        ours["live_tests_recording"] = f"{_RECORDING_DIR}/{_recording_name(recording)}"
    specs = [f"{key}={value}" for key, value in ours.items()]
    # The user's options come last: they may override ours that are not reserved.
    specs += [f"{key}={value}" for key, values in settings.options.items() for value in values]
    return args + [arg for spec in specs for arg in ("--set", spec)]


def _recording_name(recording: Path) -> str:
    return "recording.har" if recording.suffix.lower() in (".har", ".json") else "recording.mitm"


def _proxy_files(session: ProxySessionCA, recording: Path | None) -> list[tuple[str, int, bytes | Path]]:
    """(path, mode, content) of what the proxy container needs; a Path is streamed from disk."""
    files: list[tuple[str, int, bytes | Path]] = [
        (_ADDON, 0o644, Path(str(resources.files("live_tests.proxy_image") / ADDON_FILE))),
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


def _shutdown(client: docker.DockerClient, run: _ProxyRun, artifacts: Path, stop_timeout_s: float, info: dict) -> None:
    """Stop (mitmdump writes its dumps on SIGTERM), copy the dumps out, remove everything. Never raises."""
    container = run.container
    try:
        if container is not None:
            with contextlib.suppress(DockerException):
                container.stop(timeout=int(stop_timeout_s))
            with contextlib.suppress(DockerException, OSError):
                _save_logs(container, artifacts / PROXY_LOG_FILE)
            try:
                _copy_dumps(container, artifacts)
            except (DockerException, OSError, tarfile.TarError) as exc:
                info["error"] = info["error"] or f"could not copy the proxy dumps: {_one_line(exc)}"
    finally:
        if container is not None:
            with contextlib.suppress(DockerException):
                container.remove(force=True, v=True)
        for network in reversed(run.networks):
            _remove_network(network)
        flows = artifacts / FLOWS_FILE
        if flows.exists():
            with flows.open("rb") as f:
                info["flows"] = sum(1 for line in f if line.strip())
        with contextlib.suppress(OSError):
            _write_capture_info(artifacts, info)


def _save_logs(container: Any, path: Path) -> None:
    with path.open("wb") as out:
        for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=False):
            out.write(chunk)


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
        from live_tests.proxy_image.live_tests_addon import write_har

        write_har(mitm, har)


def _remove_network(network: Any) -> None:
    with contextlib.suppress(DockerException):
        network.reload()
        # A connector the runner could not remove would keep the network alive.
        for container in network.containers:
            with contextlib.suppress(DockerException):
                network.disconnect(container, force=True)
        network.remove()


def _write_capture_info(artifacts: Path, info: Mapping[str, Any]) -> None:
    (artifacts / CAPTURE_FILE).write_text(json.dumps(info, indent=2) + "\n")


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    return (str(text).strip().splitlines() or [type(exc).__name__])[0][:300]
