"""A recording the proxy answers from (cache and replay modes), indexed by match key.

Standard library and mitmproxy only: copied into the proxy container next to the addon.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterator
from typing import Any, BinaryIO

from mitmproxy import exceptions, http, io
from mitmproxy.io import compat, tnetstring

try:  # on the host (option checks); in the proxy container the helpers sit next to this file
    from live_tests.proxy.addon_faults import is_injected
    from live_tests.proxy.addon_matching import RequestParts, match_key
except ImportError:
    from addon_faults import is_injected  # type: ignore[no-redef]
    from addon_matching import RequestParts, match_key  # type: ignore[no-redef]

META_REPLAY = "live_tests.replay"  # "hit" | "miss" | "unmatched"; absent in capture mode
META_NEAR_MISS = "live_tests.near_miss"  # for a miss or unmatched: the closest recorded request


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
