"""mitmdump addon of live-tests: record every flow of each execution, and answer from a recording.

Runs inside the proxy container (`mitmdump -s addon.py`), so it imports only the standard library,
mitmproxy and its helpers copied next to it. One proxy serves every execution of a run: each
execution has a lane (addon_lanes) on a port of its own, with its own mode, recording, faults and
dumps, written into the lane's folder:

- `http_dump.mitm`: every flow, written as it completes (mitmproxy's FlowWriter; mitmweb reads it),
- `http_flows.jsonl`: one summary line per flow, also written as it completes,
- `http_dump.har`: HAR 1.2, made from `http_dump.mitm` when the lane closes (addon_har, streamed).

Recorded requests are the requests as the connector sent them: map_remote / modify_headers
rewrites are what went upstream (kept in the flow's metadata as `live_tests.sent_url`), but a
recording must match what the *next* connector sends, and reviewers want to see what was asked.

Lane modes:
- capture: everything goes upstream.
- cache: requests found in the lane's recording are answered from it (cache hits); the others go
  upstream (cache misses).
- replay: hermetic. Every request is answered from the recording; one without a recorded answer
  gets a `live_tests_unmatched_status` response whose body names it, and every upstream connection
  is refused (server_connect), whatever a flow or another addon asks.

Matching never alters the request: the key normalises (sorted query parameters, lower-case host)
on a copy of the request's parts only (addon_matching). A request not found gets its near miss (the
closest recorded request and what differed) in its flow line. Flows with streamed bodies are left
out of a recording (listed in `http_replay.json`), and so are answers made by a fault.

`--http-fault` scenarios (addon_faults) apply before the recording or the API, counted per lane.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.tls import TlsData

try:  # on the host (option checks); in the proxy container the helpers sit next to this file
    from live_tests.proxy.addon_faults import fault_of
    from live_tests.proxy.addon_har import META_SENT_URL, write_har
    from live_tests.proxy.addon_lanes import Lane, Lanes
    from live_tests.proxy.addon_recording import META_NEAR_MISS, META_REPLAY
except ImportError:
    from addon_faults import fault_of  # type: ignore[no-redef]
    from addon_har import META_SENT_URL, write_har  # type: ignore[no-redef]
    from addon_lanes import Lane, Lanes  # type: ignore[no-redef]
    from addon_recording import META_NEAR_MISS, META_REPLAY  # type: ignore[no-redef]

__all__ = ["LiveTestsAddon", "write_har"]

DEFAULT_UNMATCHED_STATUS = 599
_WRITTEN = "live_tests.written"

logger = logging.getLogger("live_tests")


class LiveTestsAddon:
    def __init__(self) -> None:
        self.lanes = Lanes()
        # The request as the connector sent it, by flow id, until the flow is written.
        self._as_sent: dict[str, http.Request] = {}

    def load(self, loader: Any) -> None:
        loader.add_option("live_tests_lanes_dir", str, "", "Folder of the lanes (one per execution; see addon_lanes).")
        loader.add_option(
            "live_tests_uncompressed",
            bool,
            True,
            "Ask upstreams for uncompressed bodies (a secret in a gzip or brotli body cannot be masked in the dumps);"
            " the recorded request keeps the connector's Accept-Encoding.",
        )
        loader.add_option(
            "live_tests_unmatched_status",
            int,
            DEFAULT_UNMATCHED_STATUS,
            "Status of the answer to an unrecorded request in replay mode.",
        )

    def configure(self, updated: set[str]) -> None:
        if "live_tests_lanes_dir" in updated and ctx.options.live_tests_lanes_dir:
            self.lanes.directory = Path(ctx.options.live_tests_lanes_dir)

    def running(self) -> None:
        self.lanes.start(frozenset(ctx.options.server_replay_ignore_params), ctx.options.server_replay_ignore_content)
        logger.warning("live-tests proxy ready")

    # Script addons run before mitmproxy's own addons (map_remote, modify_headers, ...) in every
    # hook, so this sees the request exactly as the connector sent it.
    async def request(self, flow: http.HTTPFlow) -> None:
        lane = self.lanes.of(flow.client_conn)
        if lane is None:  # a port no execution holds (any more): nothing to record it in
            flow.response = http.Response.make(502, b"live-tests: no execution is served on this port\n")
            return
        self._as_sent[flow.id] = flow.request.copy()
        if ctx.options.live_tests_uncompressed:
            flow.request.anticomp()
        await lane.faults.request(flow)  # a fault comes first: it answers in place of recording and API
        if lane.recording is None or flow.response is not None or flow.error is not None:
            return
        response = lane.recording.take(flow.request)
        if response is not None:
            flow.response = response
            flow.metadata[META_REPLAY] = "hit"
            return
        near = flow.metadata[META_NEAR_MISS] = lane.recording.near_miss(flow.request)
        if lane.mode != "replay":
            flow.metadata[META_REPLAY] = "miss"
            return
        body = (
            f"live-tests replay: no recorded response for {flow.request.method} {flow.request.pretty_url}"
            f" in {os.path.basename(lane.recording.path)}{f'; {near}' if near else ''}\n"
        )
        flow.response = http.Response.make(
            ctx.options.live_tests_unmatched_status,
            body.encode(),
            {"Content-Type": "text/plain; charset=utf-8", "X-Live-Tests-Replay": "unmatched"},
        )
        flow.metadata[META_REPLAY] = "unmatched"

    def server_connect(self, data: ServerConnectionHookData) -> None:
        lane = self.lanes.of(data.client)
        if lane is None:
            data.server.error = "live-tests: no execution is served on this port"
        elif lane.mode == "replay":
            data.server.error = "live-tests replay mode is offline: upstream connections are refused"
            address = f"{data.server.address[0]}:{data.server.address[1]}" if data.server.address else "?"
            logger.warning(f"live-tests {lane.name} replay: refused an upstream connection to {address}")
            lane.write_line(
                {"method": "CONNECT", "url": f"tcp://{address}", "host": address, "error": data.server.error}
            )

    def response(self, flow: http.HTTPFlow) -> None:
        lane = self.lanes.of(flow.client_conn)
        if lane is not None:
            lane.faults.response(flow)
            self._record(lane, flow)

    def error(self, flow: http.HTTPFlow) -> None:
        lane = self.lanes.of(flow.client_conn)
        if lane is not None:
            self._record(lane, flow)

    def tls_failed_client(self, data: TlsData) -> None:
        # No flow exists when the connector rejects our certificate: list it anyway, it is the
        # usual reason a connector "cannot reach" its API behind the proxy.
        lane = self.lanes.of(data.context.client)
        if lane is None:
            return
        sni = data.context.client.sni or "?"
        lane.write_line(
            {
                "method": "CONNECT",
                "url": f"https://{sni}/",
                "host": sni,
                "error": f"TLS handshake with the connector failed ({data.conn.error}): does it trust our CA?",
            }
        )

    def _record(self, lane: Lane, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(_WRITTEN):  # response and error hooks may both come for one flow
            return
        flow.metadata[_WRITTEN] = True
        as_sent = self._as_sent.pop(flow.id, None)
        record = flow
        if as_sent is not None and as_sent.get_state() != flow.request.get_state():
            # Keep the live flow untouched; the recording gets the request as the connector sent it.
            record = flow.copy()
            record.request = as_sent
            if as_sent.pretty_url != flow.request.pretty_url:
                record.metadata[META_SENT_URL] = flow.request.pretty_url
        lane.write_flow(record)
        request, response = record.request, record.response
        split = urllib.parse.urlsplit(request.pretty_url)
        end = (response.timestamp_end if response else None) or (flow.error.timestamp if flow.error else None)
        replay = record.metadata.get(META_REPLAY)
        error = flow.error.msg if flow.error else None
        if replay == "unmatched":
            near = record.metadata.get(META_NEAR_MISS)
            error = f"unmatched: no recorded response for this request (replay){f'; {near}' if near else ''}"
        lane.write_line(
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

    def done(self) -> None:
        self.lanes.close_all()


addons = [LiveTestsAddon()]
