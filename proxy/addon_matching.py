"""How a request is matched against a recording, and how it differs from the closest recorded one.

Standard library and mitmproxy only: copied into the proxy container next to the addon.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Hashable
from dataclasses import dataclass

from mitmproxy import http


def match_key(
    request: http.Request, ignore_params: frozenset[str] = frozenset(), ignore_content: bool = False
) -> Hashable:
    """What two requests must share to be the same request, insensitive to query parameter order."""
    query = urllib.parse.parse_qsl(urllib.parse.urlsplit(request.pretty_url).query, keep_blank_values=True)
    params = tuple(sorted((k, v) for k, v in query if k not in ignore_params))
    body = b"" if ignore_content else hashlib.sha256(request.raw_content or b"").digest()
    return (
        request.method.upper(),
        request.scheme,
        request.pretty_host.lower(),
        request.port,
        request.path.split("?")[0],
        params,
        body,
    )


@dataclass(frozen=True)
class RequestParts:
    """What a request is matched on, taken apart to say how two requests differ."""

    method: str
    url: str
    host: str
    path: str
    params: tuple[tuple[str, str], ...]
    body: bytes

    @classmethod
    def of(cls, request: http.Request, ignore_params: frozenset[str], ignore_content: bool) -> RequestParts:
        split = urllib.parse.urlsplit(request.pretty_url)
        query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        return cls(
            request.method.upper(),
            request.pretty_url,
            f"{request.scheme}://{request.pretty_host.lower()}:{request.port}",
            split.path,
            tuple(sorted((k, v) for k, v in query if k not in ignore_params)),
            b"" if ignore_content else (request.raw_content or b""),
        )

    def differences(self, recorded: RequestParts) -> list[str]:
        diffs = []
        if self.method != recorded.method:
            diffs.append(f"method {self.method}, recorded {recorded.method}")
        if self.host != recorded.host:
            diffs.append(f"host {self.host}, recorded {recorded.host}")
        if self.path != recorded.path:
            diffs.append(f"path {self.path}, recorded {recorded.path}")
        sent, seen = _multi(self.params), _multi(recorded.params)
        for name in sorted(set(sent) | set(seen)):
            if name not in seen:
                diffs.append(f"query parameter {name}={','.join(sent[name])} not recorded")
            elif name not in sent:
                diffs.append(f"query parameter {name} missing (recorded {name}={','.join(seen[name])})")
            elif sent[name] != seen[name]:
                diffs.append(f"query parameter {name}: {','.join(sent[name])}, recorded {','.join(seen[name])}")
        if self.body != recorded.body:
            diffs.append(f"body ({len(self.body)} bytes, recorded {len(recorded.body)} bytes)")
        return diffs

    def distance(self, recorded: RequestParts) -> int:
        """Method and host weigh most, then path, body and each differing parameter; ties: first recorded."""
        weights = {"method": 100, "host": 100, "path": 50, "body": 2}
        return sum(weights.get(d.split(" ", 1)[0], 1) for d in self.differences(recorded))


def _multi(params: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, value in params:
        values.setdefault(key, []).append(value)
    return values
