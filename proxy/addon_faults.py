"""The `--http-fault` scenarios, applied inside the proxy container (standard library and mitmproxy only).

Scenarios come parsed (live_tests.proxy.faults, on the host) as JSON in the `live_tests_faults`
option. Requests are numbered in the order the proxy receives them; a scenario with `every=N`
hits requests N, 2N, ... so two versions that make the same requests get the same faults.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from mitmproxy import http

META_FAULT = "live_tests.fault"  # the scenario text that hit the flow
_PENDING = "live_tests.fault_on_response"  # truncate | invalid-json, done once the API answered
NOT_JSON = b"<html><body>live-tests fault: this body is not JSON</body></html>\n"


@dataclass(frozen=True)
class Fault:
    text: str
    kind: str
    every: int = 1
    latency_ms: int = 0
    status: int | None = None
    retry_after_s: int | None = None

    def hits(self, number: int) -> bool:
        return number % self.every == 0


class FaultInjector:
    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self._requests = 0

    def configure(self, option: str) -> None:
        self.faults = [Fault(**fault) for fault in json.loads(option or "[]")]

    async def request(self, flow: http.HTTPFlow) -> None:
        """Before the recording or the API is asked: delay, answer with an error, or cut the connection."""
        if not self.faults:
            return
        self._requests += 1
        number = self._requests
        for fault in self.faults:
            if not fault.hits(number):
                continue
            if fault.kind == "latency":
                flow.metadata.setdefault(META_FAULT, fault.text)
                await asyncio.sleep(fault.latency_ms / 1000)
                continue
            _mark(flow, fault)
            if fault.kind == "status":
                headers = {"Content-Type": "application/json"}
                if fault.retry_after_s is not None:
                    headers["Retry-After"] = str(fault.retry_after_s)
                body = json.dumps({"error": f"live-tests fault {fault.text}"}).encode()
                flow.response = http.Response.make(fault.status or 500, body, headers)
                return
            if fault.kind == "reset":
                flow.kill()
                return
            flow.metadata[_PENDING] = fault.kind

    def response(self, flow: http.HTTPFlow) -> None:
        kind = flow.metadata.pop(_PENDING, None)
        response = flow.response
        if kind is None or response is None:
            return
        if kind == "invalid-json":
            response.headers.pop("content-encoding", None)
            response.content = NOT_JSON
            return
        # truncate: half the body, a Content-Length that promises all of it, and the connection
        # closed after it: the connector sees the transfer end early.
        body = response.raw_content or b""
        response.headers.pop("transfer-encoding", None)
        response.raw_content = body[: len(body) // 2]
        response.headers["content-length"] = str(len(body))
        response.headers["connection"] = "close"


def _mark(flow: http.HTTPFlow, fault: Fault) -> None:
    flow.metadata[META_FAULT] = fault.text


def fault_of(flow: Any) -> str | None:
    return flow.metadata.get(META_FAULT)


def is_injected(flow: Any) -> bool:
    """Whether the flow's response (or its absence) is a fault's, not the API's (latency only delays)."""
    fault = fault_of(flow)
    return fault is not None and not fault.startswith("latency")
