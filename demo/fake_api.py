"""A fake demo-shop API over plain HTTP (stdlib only), serving the demo connector's data set.

    python -m live_tests.demo.fake_api --port 8080 [--host 0.0.0.0] [--count 30] [--seed 42]

Routes (JSON):
    GET  /v1/shop                                  shop metadata
    GET  /v1/{customers,orders,events}?page=N&per_page=M
         -> {"data": [...], "page": N, "per_page": M, "total": T, "next_page": N+1 or null}
    GET  /__requests    the requests served so far, oldest first: [{"method", "path", "host", "user_agent"}]
    POST /__reset       forget the served requests
    GET  /__health      {"status": "ok"}
The `/__*` control routes are not recorded. Every recorded request is also printed to stdout as
`METHOD PATH` (path with its query string). Prints `fake-api listening on http://HOST:PORT` once ready.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from live_tests.demo import shop_data
from live_tests.demo.shop_data import Row, ShopParams

API_PREFIX = "/v1"
MAX_PER_PAGE = 1000
DEFAULT_PER_PAGE = 20


class ShopServer(ThreadingHTTPServer):
    """Holds the data set (built once) and the log of requests served."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], params: ShopParams) -> None:
        super().__init__(address, _Handler)
        self.params = params
        self.tables: dict[str, list[Row]] = {name: list(rows(params)) for name, rows in shop_data.STREAMS.items()}
        self.requests_served: list[dict[str, str]] = []
        self.lock = threading.Lock()

    def record(self, entry: dict[str, str]) -> None:
        with self.lock:
            self.requests_served.append(entry)
        print(f"{entry['method']} {entry['path']}", flush=True)


class _Handler(BaseHTTPRequestHandler):
    server: ShopServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are logged once, by ShopServer.record."""

    def _entry(self, method: str) -> dict[str, str]:
        # A proxy may send the absolute form (GET http://host/v1/...): record the origin form.
        url = urllib.parse.urlsplit(self.path)
        return {
            "method": method,
            "path": url.path + (f"?{url.query}" if url.query else ""),
            "host": self.headers.get("Host", ""),
            "user_agent": self.headers.get("User-Agent", ""),
        }

    def _send(self, status: int, body: Any) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/__requests":
            with self.server.lock:
                self._send(200, list(self.server.requests_served))
            return
        if url.path == "/__health":
            self._send(200, {"status": "ok"})
            return
        self.server.record(self._entry("GET"))
        resource = url.path.removeprefix(API_PREFIX).strip("/") if url.path.startswith(API_PREFIX + "/") else None
        if resource == "shop":
            self._send(200, shop_data.shop_metadata(self.server.params))
        elif resource in self.server.tables:
            self._send_page(self.server.tables[resource], urllib.parse.parse_qs(url.query))
        else:
            self._send(404, {"error": f"no route for GET {url.path}"})

    def _send_page(self, table: list[Row], query: dict[str, list[str]]) -> None:
        try:
            page = int(query.get("page", ["1"])[0])
            per_page = int(query.get("per_page", [str(DEFAULT_PER_PAGE)])[0])
        except ValueError:
            self._send(400, {"error": "page and per_page must be integers"})
            return
        if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
            self._send(400, {"error": f"page must be >= 1 and per_page in 1..{MAX_PER_PAGE}"})
            return
        start = (page - 1) * per_page
        more = start + per_page < len(table)
        self._send(
            200,
            {
                "data": table[start : start + per_page],
                "page": page,
                "per_page": per_page,
                "total": len(table),
                "next_page": page + 1 if more else None,
            },
        )

    def do_POST(self) -> None:
        # Drain any body so the keep-alive connection stays in sync.
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urllib.parse.urlsplit(self.path).path == "/__reset":
            with self.server.lock:
                self.server.requests_served.clear()
            self._send(200, {"reset": True})
            return
        self.server.record(self._entry("POST"))
        self._send(405, {"error": "the shop API is read-only"})


def make_server(host: str, port: int, params: ShopParams) -> ShopServer:
    """Bind (port 0 picks a free port: read it from `server.server_address`)."""
    return ShopServer((host, port), params)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fake-api", description="Fake demo-shop API")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--count", type=int, default=shop_data.DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=shop_data.DEFAULT_SEED)
    parser.add_argument("--start-date", default=shop_data.DEFAULT_START_DATE)
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, ShopParams(args.count, args.seed, args.start_date))
    host, port = server.server_address[:2]
    # As PID 1 in a container SIGTERM is ignored unless handled: make `docker stop` quick.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    print(f"fake-api listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
