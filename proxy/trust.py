"""TLS trust for proxied connectors: the run's CA, and every way a connector image is made to trust it.

The CA is generated once per run. A connector is pointed at the proxy with the usual proxy
variables and trusts the CA through env vars, by appending it to its image's certifi and system
bundles (found by a probe container, once per image), and, for a JVM, a JKS truststore.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import posixpath
import struct
import tarfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, NotFound

from live_tests.docker_engine import labels

PROXY_ALIAS = "live-tests-proxy"
PROXY_PORT = 8080  # the first execution's port; the next ones follow (one port per execution)
# Inside the connector container.
CA_BUNDLE_PATH = "/etc/live-tests/ca-bundle.pem"
CA_CERT_PATH = "/etc/live-tests/mitmproxy-ca-cert.pem"
TRUSTSTORE_PATH = "/etc/live-tests/truststore.jks"
TRUSTSTORE_PASSWORD = "changeit"  # a truststore holds no secret; Java just wants a password

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
    _bundles: dict[str, tuple[PatchedBundle, ...]] = field(default_factory=dict, repr=False)  # by image id

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

    def patch_bundles(self, container: Any, image: str, trust: ImageTrust) -> None:
        """Append the CA to the image's bundles in a created container; read once per image and run."""
        with self._lock:
            patched = self._bundles.get(image)
        if patched is None:
            found = (patched_bundle(container, path, self.cert_pem) for path in trust.bundles)
            patched = tuple(bundle for bundle in found if bundle is not None)
            with self._lock:
                self._bundles[image] = patched
        write_bundles(container, patched)

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


@dataclass(frozen=True)
class PatchedBundle:
    """A CA bundle of an image with our CA appended: what to write where, owned as the original."""

    path: str  # symlinks resolved
    content: bytes
    mode: int
    uid: int
    gid: int
    uname: str
    gname: str


def patched_bundle(container: Any, path: str, cert_pem: bytes) -> PatchedBundle | None:
    """The bundle at `path` in a (created, not started) container with the CA appended; None if absent."""
    for _ in range(8):
        try:
            chunks, _stat = container.get_archive(path)
        except NotFound:
            return None
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.next()
            if member is None:
                return None
            if member.issym():
                path = posixpath.normpath(posixpath.join(posixpath.dirname(path), member.linkname))
                continue
            extracted = tar.extractfile(member) if member.isfile() else None
            if extracted is None:
                return None
            content = extracted.read()
        if cert_pem not in content:
            content = content.rstrip(b"\n") + b"\n" + cert_pem
        return PatchedBundle(path, content, member.mode, member.uid, member.gid, member.uname, member.gname)
    return None


def write_bundles(container: Any, bundles: Sequence[PatchedBundle]) -> None:
    """All patched bundles into the container in one archive."""
    if not bundles:
        return
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for bundle in bundles:
            info = tarfile.TarInfo(bundle.path.lstrip("/"))
            info.size, info.mode, info.mtime = len(bundle.content), bundle.mode, int(time.time())
            info.uid, info.gid, info.uname, info.gname = bundle.uid, bundle.gid, bundle.uname, bundle.gname
            out.addfile(info, io.BytesIO(bundle.content))
    container.put_archive("/", buffer.getvalue())


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


def connector_environment(trust: ImageTrust, image_env: Sequence[str] = (), port: int = PROXY_PORT) -> dict[str, str]:
    """What tells the connector to go through its proxy port and to trust the run's CA."""
    url = f"http://{PROXY_ALIAS}:{port}"
    env = {
        "HTTP_PROXY": url,
        "HTTPS_PROXY": url,
        "http_proxy": url,
        "https_proxy": url,
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
            "http.proxyPort": str(port),
            "https.proxyHost": PROXY_ALIAS,
            "https.proxyPort": str(port),
            "javax.net.ssl.trustStore": TRUSTSTORE_PATH,
            "javax.net.ssl.trustStorePassword": TRUSTSTORE_PASSWORD,
            "javax.net.ssl.trustStoreType": "JKS",
        }
        env["JAVA_TOOL_OPTIONS"] = " ".join([existing, *(f"-D{k}={v}" for k, v in properties.items())]).strip()
    return env
