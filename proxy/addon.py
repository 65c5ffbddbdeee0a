"""mitmdump addon of live-tests: record every flow of one execution, and answer from a recording.

Runs inside the proxy container (`mitmdump -s addon.py`), so it imports only the
standard library and mitmproxy. It writes, into `live_tests_dump_dir`:

- `http_dump.mitm`: every flow, written as it completes (mitmproxy's FlowWriter; mitmweb reads it),
- `http_flows.jsonl`: one summary line per flow, also written as it completes,
- `http_dump.har`: HAR 1.2, made from `http_dump.mitm` on shutdown (streamed: mitmproxy's own
  `hardump` option would keep every flow in memory until then).

Recorded requests are the requests as the connector sent them: map_remote / modify_headers
rewrites are what went upstream (kept in the flow's metadata as `live_tests.sent_url`), but a
recording must match what the *next* connector sends, and reviewers want to see what was asked.

Modes (`live_tests_mode`):
- capture: everything goes upstream.
- cache: requests found in `live_tests_recording` are answered from it (cache hits); the others go
  upstream (cache misses).
- replay: hermetic. Every request is answered from the recording; one without a recorded answer
  gets a `live_tests_unmatched_status` response whose body names it, and every upstream connection
  is refused (server_connect), whatever a flow or another addon asks.

Matching never alters the request: the key normalises (sorted query parameters, lower-case host)
on a copy of the request's parts only (addon_matching). A request not found gets its near miss (the
closest recorded request and what differed) in its flow line. Flows with streamed bodies are left
out of a recording (listed in `http_replay.json`), and so are answers made by a fault.

`live_tests_faults` (`--http-fault`, see addon_faults) applies before the recording or the API.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.parse
from collections.abc import Hashable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from mitmproxy import connection, ctx, exceptions, http, io, version
from mitmproxy.addons.savehar import SaveHar
from mitmproxy.io import compat, tnetstring
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.tls import TlsData

try:  # on the host (option checks); in the proxy container the helpers sit next to this file
    from live_tests.proxy.addon_faults import FaultInjector, fault_of, is_injected
    from live_tests.proxy.addon_matching import RequestParts, match_key
except ImportError:
    from addon_faults import FaultInjector, fault_of, is_injected  # type: ignore[no-redef]
    from addon_matching import RequestParts, match_key  # type: ignore[no-redef]

MITM_FILE = "http_dump.mitm"
HAR_FILE = "http_dump.har"
FLOWS_FILE = "http_flows.jsonl"
MODES = ("capture", "cache", "replay")
DEFAULT_UNMATCHED_STATUS = 599

META_SENT_URL = "live_tests.sent_url"
META_REPLAY = "live_tests.replay"  # "hit" | "miss" | "unmatched"; absent in capture mode
META_NEAR_MISS = "live_tests.near_miss"  # for a miss or unmatched: the closest recorded request
REPLAY_FILE = "http_replay.json"  # what the recording could answer, and what it left out

logger = logging.getLogger("live_tests")


def _read_flow_at(fo: BinaryIO, offset: int) -> http.HTTPFlow:
    fo.seek(offset)
    loaded = tnetstring.load(fo)
    return http.HTTPFlow.from_state(compat.migrate_flow(loaded))  # type: ignore[arg-type]


class Recording:
    """Responses of an earlier run by match key, served in recorded order; the last one repeats.

    A .mitm recording is indexed by file offset and each response read back when served, so a
    large recording is not held in memory. A HAR (JSON, read whole anyway) is kept as flows.
    """

    def __init__(self, path: str, ignore_params: frozenset[str], ignore_content: bool) -> None:
        self.path = path
        self._ignore = (ignore_params, ignore_content)
        self._entries: dict[Hashable, list[int | http.HTTPFlow]] = {}
        # One description per distinct recorded request, to name the closest one of a request not found.
        self._described: dict[Hashable, RequestParts] = {}
        # Flows whose bodies were streamed (not kept): they cannot be answered faithfully.
        self.left_out: list[str] = []
        self._fo: BinaryIO | None = None
        with open(path, "rb") as fo:
            is_har = fo.read(1) in (b"{", b"\xef")
        if is_har:
            with open(path, "rb") as fo:
                for f in io.FlowReader(fo).stream():
                    self._add(f, f)
        else:
            self._fo = open(path, "rb")  # noqa: SIM115 - kept open to read responses when served
            for offset, f in self._scan(self._fo):
                self._add(f, offset)

    @staticmethod
    def _scan(fo: BinaryIO) -> Iterator[tuple[int, Any]]:
        while True:
            offset = fo.tell()
            if not fo.read(1):
                return
            fo.seek(offset)
            try:
                loaded = tnetstring.load(fo)
                yield offset, http.HTTPFlow.from_state(compat.migrate_flow(loaded))  # type: ignore[arg-type]
            except (ValueError, TypeError, IndexError, KeyError) as exc:
                raise exceptions.OptionsError(f"cannot read recording {fo.name}: {exc}") from exc

    def _add(self, f: Any, entry: int | http.HTTPFlow) -> None:
        # A HAR lists failed requests with status 0: they have no answer to give.
        if not (isinstance(f, http.HTTPFlow) and f.response is not None and f.response.status_code):
            return
        if is_injected(f):
            return  # an --http-fault answer is not the API's: replaying it would fault the next run twice
        if f.websocket is not None or f.response.raw_content is None or f.request.raw_content is None:
            self.left_out.append(f"{f.request.method} {f.request.pretty_url}")
            return
        key = match_key(f.request, *self._ignore)
        self._entries.setdefault(key, []).append(entry)
        self._described.setdefault(key, RequestParts.of(f.request, self._ignore[0], self._ignore[1]))

    def near_miss(self, request: http.Request) -> str | None:
        """The closest recorded request and what differs, like vcrpy's near-miss messages."""
        sent = RequestParts.of(request, *self._ignore)
        best = min(self._described.values(), key=sent.distance, default=None)
        if best is None:
            return None
        return f"closest recorded: {best.method} {best.url} ({'; '.join(sent.differences(best)) or 'no difference'})"

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def take(self, request: http.Request) -> http.Response | None:
        entries = self._entries.get(match_key(request, *self._ignore))
        if not entries:
            return None
        entry = entries.pop(0) if len(entries) > 1 else entries[0]
        recorded = entry if isinstance(entry, http.HTTPFlow) else _read_flow_at(self._fo, entry)  # type: ignore[arg-type]
        assert recorded.response is not None
        response = recorded.response.copy()
        response.timestamp_start = response.timestamp_end = time.time()
        return response

    def close(self) -> None:
        if self._fo is not None:
            self._fo.close()


class LiveTestsAddon:
    def __init__(self) -> None:
        self.mode = "capture"
        self.recording: Recording | None = None
        self._mitm: BinaryIO | None = None
        self._writer: io.FlowWriter | None = None
        self._flows: BinaryIO | None = None
        self._dump_dir: Path | None = None
        # The request as the connector sent it, by flow id, until the flow is written.
        self._as_sent: dict[str, http.Request] = {}
        self._written: set[str] = set()
        self.faults = FaultInjector()

    def load(self, loader: Any) -> None:
        loader.add_option("live_tests_mode", str, "capture", "capture | cache | replay.", choices=list(MODES))
        loader.add_option("live_tests_dump_dir", str, "", "Directory for http_dump.mitm/.har and http_flows.jsonl.")
        loader.add_option("live_tests_recording", str, "", "A .mitm or HAR recording to answer from (cache, replay).")
        loader.add_option(
            "live_tests_unmatched_status",
            int,
            DEFAULT_UNMATCHED_STATUS,
            "Status of the answer to an unrecorded request in replay mode.",
        )
        loader.add_option("live_tests_faults", str, "", "--http-fault scenarios, as JSON (see addon_faults).")

    def configure(self, updated: set[str]) -> None:
        if "live_tests_dump_dir" in updated and ctx.options.live_tests_dump_dir:
            self._open_dumps(Path(ctx.options.live_tests_dump_dir))
        if "live_tests_faults" in updated:
            try:
                self.faults.configure(ctx.options.live_tests_faults)
            except (ValueError, TypeError) as exc:
                raise exceptions.OptionsError(f"live_tests_faults: {exc}") from exc
        if updated & {
            "live_tests_mode",
            "live_tests_recording",
            "server_replay_ignore_params",
            "server_replay_ignore_content",
        }:
            self.mode = ctx.options.live_tests_mode
            if self.mode != "capture" and not ctx.options.live_tests_recording:
                raise exceptions.OptionsError(f"live_tests_mode={self.mode} needs live_tests_recording")
            if self.recording is not None:
                self.recording.close()
                self.recording = None
            if self.mode != "capture":
                try:
                    self.recording = Recording(
                        ctx.options.live_tests_recording,
                        frozenset(ctx.options.server_replay_ignore_params),
                        ctx.options.server_replay_ignore_content,
                    )
                except (OSError, exceptions.FlowReadException) as exc:
                    raise exceptions.OptionsError(
                        f"cannot read recording {ctx.options.live_tests_recording}: {exc}"
                    ) from exc
                logger.warning(f"live-tests {self.mode} mode: {len(self.recording)} recorded responses")
                if self.recording.left_out:
                    logger.warning(
                        f"live-tests {self.mode}: left out {len(self.recording.left_out)} flows with streamed bodies"
                        f" (not kept in the recording, cannot be replayed faithfully): {self.recording.left_out[:5]}"
                    )
                self._write_replay_info()

    def _open_dumps(self, dump_dir: Path) -> None:
        dump_dir.mkdir(parents=True, exist_ok=True)
        self._dump_dir = dump_dir
        self._mitm = open(dump_dir / MITM_FILE, "wb")  # noqa: SIM115 - closed in done()
        self._writer = io.FlowWriter(self._mitm)
        self._flows = open(dump_dir / FLOWS_FILE, "wb")  # noqa: SIM115

    def _write_replay_info(self) -> None:
        if self._dump_dir is None or self.recording is None:
            return
        info = {
            "recording": os.path.basename(self.recording.path),
            "responses": len(self.recording),
            "left_out_streamed": self.recording.left_out,
        }
        (self._dump_dir / REPLAY_FILE).write_text(json.dumps(info, indent=2) + "\n")

    def running(self) -> None:
        logger.warning(f"live-tests proxy ready (mode={self.mode})")

    # Script addons run before mitmproxy's own addons (map_remote, modify_headers, ...) in every
    # hook, so this sees the request exactly as the connector sent it.
    async def request(self, flow: http.HTTPFlow) -> None:
        self._as_sent[flow.id] = flow.request.copy()
        await self.faults.request(flow)  # a fault comes first: it answers in place of recording and API
        if self.recording is None or flow.response is not None or flow.error is not None:
            return
        response = self.recording.take(flow.request)
        if response is not None:
            flow.response = response
            flow.metadata[META_REPLAY] = "hit"
            return
        near = flow.metadata[META_NEAR_MISS] = self.recording.near_miss(flow.request)
        if self.mode != "replay":
            flow.metadata[META_REPLAY] = "miss"
            return
        body = (
            f"live-tests replay: no recorded response for {flow.request.method} {flow.request.pretty_url}"
            f" in {os.path.basename(self.recording.path)}{f'; {near}' if near else ''}\n"
        )
        flow.response = http.Response.make(
            ctx.options.live_tests_unmatched_status,
            body.encode(),
            {"Content-Type": "text/plain; charset=utf-8", "X-Live-Tests-Replay": "unmatched"},
        )
        flow.metadata[META_REPLAY] = "unmatched"

    def server_connect(self, data: ServerConnectionHookData) -> None:
        if self.mode == "replay":
            data.server.error = "live-tests replay mode is offline: upstream connections are refused"
            address = f"{data.server.address[0]}:{data.server.address[1]}" if data.server.address else "?"
            logger.warning(f"live-tests replay: refused an upstream connection to {address}")
            self._write_line(
                {"method": "CONNECT", "url": f"tcp://{address}", "host": address, "error": data.server.error}
            )

    def response(self, flow: http.HTTPFlow) -> None:
        self.faults.response(flow)
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def tls_failed_client(self, data: TlsData) -> None:
        # No flow exists when the connector rejects our certificate: list it anyway, it is the
        # usual reason a connector "cannot reach" its API behind the proxy.
        sni = data.context.client.sni or "?"
        self._write_line(
            {
                "method": "CONNECT",
                "url": f"https://{sni}/",
                "host": sni,
                "error": f"TLS handshake with the connector failed ({data.conn.error}): does it trust our CA?",
            }
        )

    def _record(self, flow: http.HTTPFlow) -> None:
        if flow.id in self._written:
            return
        self._written.add(flow.id)
        as_sent = self._as_sent.pop(flow.id, None)
        record = flow
        if as_sent is not None and as_sent.get_state() != flow.request.get_state():
            # Keep the live flow untouched; the recording gets the request as the connector sent it.
            record = flow.copy()
            record.request = as_sent
            record.metadata[META_SENT_URL] = flow.request.pretty_url
        if self._writer is not None and self._mitm is not None:
            self._writer.add(record)
            self._mitm.flush()
        request, response = record.request, record.response
        split = urllib.parse.urlsplit(request.pretty_url)
        end = (response.timestamp_end if response else None) or (flow.error.timestamp if flow.error else None)
        replay = record.metadata.get(META_REPLAY)
        error = flow.error.msg if flow.error else None
        if replay == "unmatched":
            near = record.metadata.get(META_NEAR_MISS)
            error = f"unmatched: no recorded response for this request (replay){f'; {near}' if near else ''}"
        self._write_line(
            {
                "method": request.method,
                "url": request.pretty_url,
                "host": request.pretty_host,
                "path": split.path,
                "query": split.query,
                "status": response.status_code if response else None,
                "request_size": len(request.raw_content or b""),
                "response_size": len(response.raw_content or b"") if response else None,
                "duration_ms": round((end - request.timestamp_start) * 1000, 3) if end else None,
                "cache_hit": replay == "hit",
                "error": error,
                # timezone.utc: the proxy image may run Python 3.10, which has no datetime.UTC.
                "started_at": datetime.fromtimestamp(request.timestamp_start, timezone.utc).isoformat(),  # noqa: UP017
                "sent_url": record.metadata.get(META_SENT_URL),
                "replay": replay,
                "near_miss": record.metadata.get(META_NEAR_MISS),
                "fault": fault_of(record),
            }
        )

    def _write_line(self, line: dict[str, Any]) -> None:
        if self._flows is None:
            return
        line.setdefault("cache_hit", False)
        self._flows.write(json.dumps(line).encode() + b"\n")
        self._flows.flush()

    def done(self) -> None:
        for f in (self._mitm, self._flows):
            if f is not None:
                f.close()
        if self.recording is not None:
            self.recording.close()
        if self._dump_dir is not None:
            write_har(self._dump_dir / MITM_FILE, self._dump_dir / HAR_FILE)
            logger.warning("live-tests proxy: dumps written")


def write_har(mitm_path: Path, har_path: Path) -> int:
    """Convert a .mitm dump to HAR 1.2, one flow at a time. Returns the number of entries."""
    exporter = SaveHar()
    servers_seen: set[connection.Server] = set()
    tmp = har_path.with_suffix(".har.tmp")
    count = 0
    with open(mitm_path, "rb") as src, open(tmp, "w", encoding="utf-8") as out:
        creator = {"name": "mitmproxy (live-tests)", "version": version.VERSION, "comment": ""}
        out.write('{"log": {"version": "1.2", "creator": ' + json.dumps(creator) + ', "pages": [], "entries": [')
        for f in io.FlowReader(src).stream():
            if not isinstance(f, http.HTTPFlow):
                continue
            entry = exporter.flow_entry(f, servers_seen)
            _complete_har_entry(entry, f)
            out.write(("\n" if count == 0 else ",\n") + json.dumps(entry))
            count += 1
        out.write("\n]}}\n")
    os.replace(tmp, har_path)
    return count


def _complete_har_entry(entry: dict[str, Any], f: http.HTTPFlow) -> None:
    """Fill what HAR 1.2 requires and mitmproxy leaves out for failed flows; add our annotations."""
    response = entry["response"]
    content = response.setdefault("content", {})
    content.setdefault("size", 0)
    content.setdefault("mimeType", "")
    response.setdefault("httpVersion", "")
    for name in ("send", "wait", "receive"):
        entry["timings"][name] = max(0.0, entry["timings"].get(name) or 0.0)
    entry["_liveTests"] = {
        "cacheHit": f.metadata.get(META_REPLAY) == "hit",
        "replay": f.metadata.get(META_REPLAY),
        "sentUrl": f.metadata.get(META_SENT_URL),
        "error": f.error.msg if f.error else None,
        "fault": fault_of(f),
    }


addons = [LiveTestsAddon()]
