"""HTTP fault scenarios (`--http-fault NAME`): what the proxy does wrong on purpose, checked on the host.

A scenario applies to every execution alike and is deterministic by request order: the proxy
numbers the requests of its execution 1, 2, 3, ... and a scenario with `every=N` hits requests N,
2N, 3N, ... (without `every`, every request). The addon (inside the proxy container) gets the
parsed scenarios as JSON (`live_tests_faults`) and applies them; see addon.FaultInjector.

| scenario | what the connector sees |
| --- | --- |
| `latency=MS` | each request is held MS milliseconds before it goes on |
| `status=429[:retry-after=S][:every=N]` | a 429 answer (with `Retry-After: S`), the API is not asked |
| `status=500\\|503[:every=N]` | a 500 or 503 answer, the API is not asked |
| `reset[:every=N]` | the connection is closed without an answer |
| `truncate[:every=N]` | the API's answer, its body cut in half mid-transfer (Content-Length promises more) |
| `invalid-json[:every=N]` | a 200 answer whose body is not JSON |
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from live_tests.models import InputError

USAGE = (
    "expected latency=MS, status=429[:retry-after=S][:every=N], status=500|503[:every=N], reset[:every=N],"
    " truncate[:every=N] or invalid-json[:every=N]"
)
_STATUSES = (429, 500, 503)
_PLAIN_KINDS = ("reset", "truncate", "invalid-json")


@dataclass(frozen=True)
class HttpFault:
    """One parsed scenario; `text` is what the user wrote, for reports."""

    text: str
    kind: str  # latency | status | reset | truncate | invalid-json
    every: int = 1
    latency_ms: int = 0
    status: int | None = None
    retry_after_s: int | None = None


def parse_http_fault(text: str) -> HttpFault:
    """One `--http-fault` value; InputError (one line, with the usage) when it is not a scenario."""
    head, *modifiers = text.strip().split(":")
    name, _, value = head.partition("=")
    fields: dict[str, int] = {}
    try:
        for modifier in modifiers:
            key, sep, number = modifier.partition("=")
            if not sep or key not in ("every", "retry-after") or key in fields:
                raise ValueError(modifier)
            fields[key] = int(number)
        if name == "latency" and not modifiers:
            fault = HttpFault(text, "latency", latency_ms=int(value))
        elif name == "status" and int(value) in _STATUSES and ("retry-after" not in fields or value == "429"):
            fault = HttpFault(text, "status", status=int(value), retry_after_s=fields.get("retry-after"))
        elif name in _PLAIN_KINDS and not value and "retry-after" not in fields:
            fault = HttpFault(text, name)
        else:
            raise ValueError(text)
    except ValueError:
        raise InputError(f"--http-fault {text!r}: {USAGE}") from None
    every = fields.get("every", 1)
    if every < 1 or fault.latency_ms < 0 or (fault.retry_after_s or 0) < 0:
        raise InputError(f"--http-fault {text!r}: numbers must be >= 0 (every >= 1)")
    return HttpFault(**{**asdict(fault), "every": every})


def parse_http_faults(values: Iterable[str]) -> tuple[HttpFault, ...]:
    return tuple(parse_http_fault(value) for value in values)


def faults_option(faults: Iterable[HttpFault]) -> str:
    """The addon's `live_tests_faults` value: the scenarios as a JSON list."""
    return json.dumps([asdict(fault) for fault in faults], separators=(",", ":"))
