"""The demo connector's HTTP client for the shop API (stdlib urllib).

Proxies come from HTTP_PROXY/HTTPS_PROXY/NO_PROXY (urllib's ProxyHandler reads them); TLS is
verified against the system CAs plus the bundle in SSL_CERT_FILE or REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from live_tests.demo.shop_data import Row

HTTP_TIMEOUT_S = 30.0
HTTP_ATTEMPTS = 3


class ApiError(Exception):
    """The shop API could not be reached or answered with an error."""


def tls_context() -> ssl.SSLContext:
    """System CAs, plus the bundle named by REQUESTS_CA_BUNDLE or SSL_CERT_FILE (a proxy's CA)."""
    context = ssl.create_default_context()
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        cafile = os.environ.get(variable)
        if cafile:
            context.load_verify_locations(cafile=cafile)
    return context


class ShopApi:
    """Reads the shop API page by page; proxies come from HTTP(S)_PROXY/NO_PROXY."""

    def __init__(self, base_url: str, per_page: int, user_agent: str, api_key: str | None) -> None:
        self.base_url = base_url
        self.per_page = per_page
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler(), urllib.request.HTTPSHandler(context=tls_context())
        )

    def get(self, path: str, query: dict[str, int] | None = None) -> Any:
        url = f"{self.base_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, headers=self._headers)
        for attempt in range(1, HTTP_ATTEMPTS + 1):
            try:
                with self._opener.open(request, timeout=HTTP_TIMEOUT_S) as response:
                    return json.load(response)
            except urllib.error.HTTPError as exc:
                body = exc.read()[:200].decode("utf-8", "replace")
                # Server-side trouble may pass; anything else will not.
                if (exc.code == 429 or exc.code >= 500) and attempt < HTTP_ATTEMPTS:
                    time.sleep(0.5 * attempt)
                    continue
                raise ApiError(f"GET {url} returned HTTP {exc.code}: {body}") from exc
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise ApiError(f"GET {url} failed: {reason}") from exc
        raise AssertionError("unreachable")

    def rows(self, resource: str) -> Iterator[Row]:
        page: int | None = 1
        while page:
            body = self.get(f"/{resource}", {"page": page, "per_page": self.per_page})
            yield from body["data"]
            page = body.get("next_page")
