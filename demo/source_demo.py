"""source-demo: a small Airbyte source connector, stdlib only, used to demo and test live-tests.

    python -m live_tests.demo.source_demo spec
    python -m live_tests.demo.source_demo check --config config.json
    python -m live_tests.demo.source_demo discover --config config.json
    python -m live_tests.demo.source_demo read --config config.json --catalog catalog.json [--state state.json]

The version (1.0.0 or 2.0.0) comes from the DEMO_VERSION environment variable (baked into the
images). The two versions differ in the known ways listed in demo/README.md; everything else,
records included, is identical for the same config.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import time
import traceback
import urllib.parse
from collections.abc import Iterator
from typing import Any, TextIO

from live_tests.demo import shop_data
from live_tests.demo.connection import (
    CURSOR_FIELDS,
    ConfigError,
    DemoConfig,
    catalog,
    connection_specification,
    parse_config,
    parse_state,
)
from live_tests.demo.shop_api import ApiError, ShopApi
from live_tests.demo.shop_data import Row, parse_timestamp
from live_tests.demo.versions import BEHAVIOURS, DEFAULT_VERSION, VERSION_ENV, VersionBehaviour

# Two lines that are not Airbyte messages, printed when `print_garbage` is true.
GARBAGE_LINES = (
    "demo source: this line is not JSON",
    '{"type": "RECORD", "record": {"stream": "customers", "data": ',
)


class DemoCrash(RuntimeError):
    """Raised on purpose by the `crash_after_records` knob."""


class Output:
    """Writes Airbyte messages, one JSON object per line, to stdout."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def emit(self, message: dict[str, Any]) -> None:
        self._stream.write(json.dumps(message, separators=(",", ":")) + "\n")

    def raw(self, line: str) -> None:
        self._stream.write(line + "\n")

    def flush(self) -> None:
        self._stream.flush()

    def log(self, level: str, message: str) -> None:
        self.emit({"type": "LOG", "log": {"level": level, "message": message}})

    def record(self, stream: str, data: Row) -> None:
        self.emit({"type": "RECORD", "record": {"stream": stream, "data": data, "emitted_at": _now_ms()}})

    def stream_status(self, stream: str, status: str) -> None:
        self.emit(
            {
                "type": "TRACE",
                "trace": {
                    "type": "STREAM_STATUS",
                    "emitted_at": _now_ms(),
                    "stream_status": {"stream_descriptor": {"name": stream}, "status": status},
                },
            }
        )

    def error(self, message: str, internal: str, failure_type: str, stack_trace: str | None = None) -> None:
        error: dict[str, Any] = {"message": message, "internal_message": internal, "failure_type": failure_type}
        if stack_trace:
            error["stack_trace"] = stack_trace
        self.emit({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": _now_ms(), "error": error}})

    def state(self, stream: str, stream_state: dict[str, Any]) -> None:
        self.emit(
            {
                "type": "STATE",
                "state": {
                    "type": "STREAM",
                    "stream": {"stream_descriptor": {"name": stream}, "stream_state": stream_state},
                },
            }
        )


def _now_ms() -> int:
    return int(time.time() * 1000)


def _open_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc}") from None


def _api(config: DemoConfig, behaviour: VersionBehaviour, per_page: int) -> ShopApi:
    assert config.api_url is not None
    return ShopApi(config.api_url, per_page, f"source-demo/{behaviour.version}", config.api_key)


def run_check(config: DemoConfig, behaviour: VersionBehaviour, out: Output) -> None:
    out.log("INFO", f"Checking the demo source {behaviour.version} config")
    if config.api_url:
        try:
            _api(config, behaviour, 1).get("/customers", {"page": 1, "per_page": 1})
        except ApiError as exc:
            out.emit({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "FAILED", "message": str(exc)}})
            return
    out.emit({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}})


class _Reader:
    """One `read`: emits the selected streams in catalog order, with states and statuses."""

    def __init__(self, config: DemoConfig, behaviour: VersionBehaviour, out: Output) -> None:
        self.config = config
        self.behaviour = behaviour
        self.out = out
        self.total_records = 0
        self.hang_pending = config.hang_seconds > 0
        self.delay_per_record_s = config.delay_per_record_s(behaviour.version)
        self.api = _api(config, behaviour, config.page_size or behaviour.default_page_size) if config.api_url else None

    def source_rows(self, stream: str) -> Iterator[Row]:
        if self.api:
            return self.api.rows(stream)
        return shop_data.STREAMS[stream](self.config.params)

    def emit_record(self, stream: str, row: Row) -> None:
        limit = self.config.crash_after_records
        if limit is not None and self.total_records >= limit:
            raise DemoCrash(f"demo crash after {limit} records (crash_after_records)")
        self.out.record(stream, row)
        self.total_records += 1
        if self.delay_per_record_s:
            self.out.flush()  # a slow source streams each record as it gets it: the first is not held back
            time.sleep(self.delay_per_record_s)
        if self.total_records == 1:
            if self.config.print_garbage:
                self.out.raw(GARBAGE_LINES[1])
            self.hang()

    def hang(self) -> None:
        if self.hang_pending:
            self.hang_pending = False
            self.out.flush()
            time.sleep(self.config.hang_seconds)

    def read_stream(self, stream: str, sync_mode: str, stream_state: dict[str, Any] | None) -> int:
        cursor_field = CURSOR_FIELDS.get(stream) if sync_mode == "incremental" else None
        saved = (stream_state or {}).get(cursor_field) if cursor_field else None
        # Both versions' cursor formats parse to the same instant, so either state resumes.
        since = parse_timestamp(saved) if saved else None
        high_water = since
        emitted = 0
        for source_row in self.source_rows(stream):
            row = self.behaviour.transform(stream, source_row)
            if row is None:
                continue
            if cursor_field:
                cursor = parse_timestamp(row[cursor_field])
                if since is not None and cursor <= since:
                    continue
                high_water = cursor if high_water is None or cursor > high_water else high_water
            if emitted == 0:
                self.out.stream_status(stream, "RUNNING")
            self.emit_record(stream, row)
            emitted += 1
        if stream == "events" and self.config.huge_record_mb > 0:
            self.emit_record(stream, self.huge_event())
            emitted += 1
        if cursor_field and high_water is not None:
            self.out.state(stream, {cursor_field: self.behaviour.format_cursor(stream, high_water)})
        return emitted

    def huge_event(self) -> Row:
        size = int(self.config.huge_record_mb * 1024 * 1024)
        return {"event_type": "huge", "customer_id": 0, "ts": self.config.params.start_date, "payload": "x" * size}

    def echo_secret(self, secret: str) -> None:
        """The `echo_secret` knob: the key in every shape a careless connector prints it (hostile tests)."""
        nested = json.dumps({"request": json.dumps({"api_key": secret})})  # JSON in a JSON string
        stream = f"echo-{secret}"
        self.out.log("INFO", f"using key {secret}; request {nested}")
        encoded = {"base64": base64.b64encode(secret.encode()).decode(), "url": urllib.parse.quote(secret, safe="")}
        self.out.record(stream, {"id": 1, "nested": nested, **encoded, "url": encoded["url"].lower()})
        self.out.state(stream, {"cursor": nested})
        trace = f"Traceback (most recent call last):\n  request={nested}\nAuthError: key {secret!r} rejected"
        self.out.error(f"key {secret} rejected, retried", nested, "transient_error", trace)
        print(f"demo source: key {secret} in {nested}", file=sys.stderr)

    def run(self, configured_catalog: Any, states: dict[str, dict[str, Any]]) -> None:
        mode = f"HTTP mode ({self.config.api_url})" if self.api else "local mode"
        self.out.log("INFO", f"Starting read with the demo source {self.behaviour.version} in {mode}")
        if self.config.echo_secret and self.config.api_key:
            self.echo_secret(self.config.api_key)
        if self.api and self.behaviour.fetches_shop_metadata:
            shop = self.api.get("/shop")
            self.out.log("INFO", f"Shop: {shop.get('name')} ({shop.get('currency')})")
        for configured in configured_catalog.get("streams", []):
            stream = configured["stream"]["name"]
            if stream not in shop_data.STREAMS:
                self.out.log("WARN", f"Stream {stream!r} is not offered by the demo source; skipped")
                continue
            self.out.stream_status(stream, "STARTED")
            try:
                emitted = self.read_stream(stream, configured.get("sync_mode", "full_refresh"), states.get(stream))
            except BaseException:
                self.out.stream_status(stream, "INCOMPLETE")
                raise
            self.out.stream_status(stream, "COMPLETE")
            self.out.log("INFO", f"Read {emitted} records from the {stream} stream")
        self.hang()


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="source-demo", description="Demo Airbyte source connector")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("spec")
    for name in ("check", "discover"):
        commands.add_parser(name).add_argument("--config", required=True)
    read = commands.add_parser("read")
    read.add_argument("--config", required=True)
    read.add_argument("--catalog", required=True)
    read.add_argument("--state")
    return parser.parse_args(argv)


def run(argv: list[str], out: Output) -> int:
    args = _parse_args(argv)
    version = os.environ.get(VERSION_ENV, DEFAULT_VERSION)
    behaviour = BEHAVIOURS.get(version)
    if behaviour is None:
        print(f"{VERSION_ENV}={version!r} is not a demo version; use one of {sorted(BEHAVIOURS)}", file=sys.stderr)
        return 2
    if args.command == "spec":
        spec = {
            "documentationUrl": "https://example.com/docs/source-demo",
            "connectionSpecification": connection_specification(behaviour),
        }
        out.emit({"type": "SPEC", "spec": spec})
        return 0
    try:
        config = parse_config(_open_json(args.config, "config"), behaviour)
    except ConfigError as exc:
        if args.command == "check":
            status = {"status": "FAILED", "message": f"Invalid config: {exc}"}
            out.emit({"type": "CONNECTION_STATUS", "connectionStatus": status})
            return 0
        out.error(f"Invalid config: {exc}", str(exc), "config_error")
        print(f"Invalid config: {exc}", file=sys.stderr)
        return 1
    if config.print_garbage:
        out.raw(GARBAGE_LINES[0])
    if args.command == "check":
        run_check(config, behaviour, out)
        return 0
    if args.command == "discover":
        out.emit({"type": "CATALOG", "catalog": catalog(behaviour)})
        return 0
    try:
        configured_catalog = _open_json(args.catalog, "catalog")
        states = parse_state(_open_json(args.state, "state")) if args.state else {}
    except ConfigError as exc:
        out.error(str(exc), str(exc), "config_error")
        print(exc, file=sys.stderr)
        return 1
    try:
        _Reader(config, behaviour, out).run(configured_catalog, states)
    except ApiError as exc:
        out.error(f"The shop API failed: {exc}", str(exc), "system_error", traceback.format_exc())
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:
        # Like the Airbyte CDK: an ERROR trace on stdout, then the traceback on stderr.
        out.error(f"Sync failed: {exc}", repr(exc), "system_error", traceback.format_exc())
        out.flush()
        raise
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # As PID 1 in a container SIGTERM is ignored unless handled.
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    out = Output(sys.stdout)
    try:
        code = run(sys.argv[1:], out)
    finally:
        out.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
