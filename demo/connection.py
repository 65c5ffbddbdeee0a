"""The demo connector's spec, config validation, catalog and input-state parsing."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from live_tests.demo import shop_data
from live_tests.demo.shop_data import ShopParams, parse_timestamp
from live_tests.demo.versions import VersionBehaviour

# Incremental streams and their cursor field; `orders` is full refresh only.
CURSOR_FIELDS = {"customers": "updated_at", "events": "ts"}


class ConfigError(Exception):
    """The config is invalid; the message says which field and why."""


@dataclass(frozen=True)
class Slowdown:
    """The `slowdown` knob: the version it slows (one --config-path serves both) and by how much."""

    version: str
    ms_per_record: float


@dataclass(frozen=True)
class DemoConfig:
    params: ShopParams
    api_url: str | None = None
    api_key: str | None = None
    page_size: int | None = None
    crash_after_records: int | None = None
    hang_seconds: float = 0.0
    print_garbage: bool = False
    huge_record_mb: float = 0.0
    echo_secret: bool = False
    slowdown: Slowdown | None = None

    def delay_per_record_s(self, version: str) -> float:
        """Seconds this version sleeps after each record (0 unless `slowdown` names it)."""
        slowdown = self.slowdown
        return slowdown.ms_per_record / 1000 if slowdown is not None and slowdown.version == version else 0.0


def connection_specification(behaviour: VersionBehaviour) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "count": {
            "type": "integer",
            "title": "Count",
            "description": "Number of customers, orders and events to generate (orders have 1 to 3 lines).",
            "minimum": 0,
            "default": shop_data.DEFAULT_COUNT,
            "order": 0,
        },
        "seed": {
            "type": "integer",
            "title": "Seed",
            "description": "Random seed: the same seed always gives the same records.",
            "default": shop_data.DEFAULT_SEED,
            "order": 1,
        },
        "start_date": {
            "type": "string",
            "title": "Start date",
            "description": behaviour.start_date_description,
            "format": "date-time",
            "default": shop_data.DEFAULT_START_DATE,
            "order": 2,
        },
        "api_url": {
            "type": "string",
            "title": "API URL",
            "description": "Base URL of the shop API, e.g. https://api.demo-shop.example/v1. "
            "When set, records are fetched over HTTP instead of being generated locally.",
            "examples": ["https://api.demo-shop.example/v1"],
            "order": 3,
        },
        "api_key": {
            "type": "string",
            "title": "API key",
            "description": "Sent as a bearer token to the shop API.",
            "airbyte_secret": True,
            "order": 4,
        },
        "crash_after_records": {
            "type": "integer",
            "title": "Crash after records (testing)",
            "description": "Exit with code 1 and a traceback after emitting this many records.",
            "minimum": 0,
        },
        "hang_seconds": {
            "type": "number",
            "title": "Hang seconds (testing)",
            "description": "Sleep this long after emitting the first record.",
            "minimum": 0,
        },
        "print_garbage": {
            "type": "boolean",
            "title": "Print garbage (testing)",
            "description": "Print lines that are not Airbyte messages to stdout.",
        },
        "huge_record_mb": {
            "type": "number",
            "title": "Huge record MiB (testing)",
            "description": "Emit one extra `events` record whose `payload` is this many MiB long.",
            "minimum": 0,
        },
        "echo_secret": {
            "type": "boolean",
            "title": "Echo secret (testing)",
            "description": "Print `api_key` as a careless connector would: in a stream name, records, a state,"
            " an error trace and stderr; JSON inside JSON, base64, lowercase %xx.",
        },
        "slowdown": {
            "type": "object",
            "title": "Slowdown (testing)",
            "description": "Sleep `ms_per_record` milliseconds after each record, in the version named by `version`"
            " only (the other ignores it).",
            "properties": {"version": {"type": "string"}, "ms_per_record": {"type": "number", "minimum": 0}},
            "required": ["version", "ms_per_record"],
        },
    }
    if behaviour.page_size_in_spec:
        properties["page_size"] = {
            "type": "integer",
            "title": "Page size",
            "description": "Records requested per API page in HTTP mode.",
            "minimum": 1,
            "maximum": 1000,
            "default": behaviour.default_page_size,
            "order": 5,
        }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Demo Source Spec",
        "type": "object",
        "required": [],
        "additionalProperties": True,
        "properties": properties,
    }


def _integer(raw: dict[str, Any], key: str, default: int | None, minimum: int | None) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"'{key}' must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"'{key}' must be an integer >= {minimum}, got {value}")
    return value


def _number(raw: dict[str, Any], key: str) -> float:
    value = raw.get(key, 0)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"'{key}' must be a number >= 0, got {value!r}")
    return float(value)


def _slowdown(raw: dict[str, Any]) -> Slowdown | None:
    value = raw.get("slowdown")
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("version"), str):
        raise ConfigError(f'\'slowdown\' must be {{"version": "2.0.0", "ms_per_record": 20}}, got {value!r}')
    return Slowdown(value["version"], _number(value, "ms_per_record"))


def parse_config(raw: Any, behaviour: VersionBehaviour) -> DemoConfig:
    if not isinstance(raw, dict):
        raise ConfigError("the config must be a JSON object")
    count = _integer(raw, "count", shop_data.DEFAULT_COUNT, 0)
    seed = _integer(raw, "seed", shop_data.DEFAULT_SEED, None)
    start_date = raw.get("start_date", shop_data.DEFAULT_START_DATE)
    try:
        parse_timestamp(start_date)
    except (TypeError, ValueError, AttributeError):
        raise ConfigError(f"'start_date' must be an ISO 8601 date-time, got {start_date!r}") from None
    api_url = raw.get("api_url")
    if api_url is not None and (
        not isinstance(api_url, str) or urllib.parse.urlsplit(api_url).scheme not in ("http", "https")
    ):
        raise ConfigError(f"'api_url' must be an http(s) URL, got {api_url!r}")
    api_key = raw.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigError("'api_key' must be a string")
    print_garbage = raw.get("print_garbage", False)
    if not isinstance(print_garbage, bool):
        raise ConfigError(f"'print_garbage' must be true or false, got {print_garbage!r}")
    echo_secret = raw.get("echo_secret", False)
    if not isinstance(echo_secret, bool):
        raise ConfigError(f"'echo_secret' must be true or false, got {echo_secret!r}")
    page_size = None
    if behaviour.page_size_in_spec:
        page_size = _integer(raw, "page_size", behaviour.default_page_size, 1)
        if page_size is not None and page_size > 1000:
            raise ConfigError(f"'page_size' must be <= 1000, got {page_size}")
    assert count is not None and seed is not None
    return DemoConfig(
        params=ShopParams(count=count, seed=seed, start_date=start_date),
        api_url=api_url.rstrip("/") if api_url else None,
        api_key=api_key,
        page_size=page_size,
        crash_after_records=_integer(raw, "crash_after_records", None, 0),
        hang_seconds=_number(raw, "hang_seconds"),
        print_garbage=print_garbage,
        huge_record_mb=_number(raw, "huge_record_mb"),
        echo_secret=echo_secret,
        slowdown=_slowdown(raw),
    )


def _timestamp_schema() -> dict[str, Any]:
    return {"type": "string", "format": "date-time"}


def catalog(behaviour: VersionBehaviour) -> dict[str, Any]:
    draft = "http://json-schema.org/draft-07/schema#"
    orders_properties: dict[str, Any] = {
        "order_id": {"type": "integer"},
        "line": {"type": "integer"},
        "customer_id": {"type": "integer"},
        "product": {"type": "string"},
        "quantity": {"type": "integer"},
        "unit_price": {"type": "number"},
        "ordered_at": _timestamp_schema(),
    }
    if behaviour.orders_currency_in_schema:
        orders_properties["currency"] = {"type": ["null", "string"]}
    streams = [
        {
            "name": "customers",
            "json_schema": {
                "$schema": draft,
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "string"},
                    "email": {"type": ["null", "string"] if behaviour.email_nullable else "string"},
                    "country": {"type": "string"},
                    "created_at": _timestamp_schema(),
                    "updated_at": _timestamp_schema(),
                },
            },
            "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": True,
            "default_cursor_field": ["updated_at"],
            "source_defined_primary_key": [["id"]],
            "is_resumable": True,
        },
        {
            "name": "orders",
            "json_schema": {"$schema": draft, "type": "object", "properties": orders_properties},
            "supported_sync_modes": ["full_refresh"],
            "source_defined_primary_key": [["order_id"], ["line"]],
            "is_resumable": False,
        },
        {
            "name": "events",
            "json_schema": {
                "$schema": draft,
                "type": "object",
                "properties": {
                    "event_type": {"type": "string"},
                    "customer_id": {"type": "integer"},
                    "ts": _timestamp_schema(),
                    "payload": {"type": "string"},
                },
            },
            "supported_sync_modes": ["full_refresh", "incremental"],
            "source_defined_cursor": True,
            "default_cursor_field": ["ts"],
            "is_resumable": True,
        },
    ]
    return {"streams": streams}


def parse_state(raw: Any) -> dict[str, dict[str, Any]]:
    """Input state -> {stream name: stream_state}. Accepts per-stream STATE messages (a list of
    `{"type": "STREAM", "stream": ...}` or of whole `{"type": "STATE", "state": ...}` messages)
    and the legacy `{stream: state}` object."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {name: value for name, value in raw.items() if isinstance(value, dict)}
    if not isinstance(raw, list):
        raise ConfigError("the state must be a JSON list of per-stream states")
    states: dict[str, dict[str, Any]] = {}
    for item in raw:
        message = item.get("state", item) if isinstance(item, dict) else None
        stream = message.get("stream") if isinstance(message, dict) else None
        if not isinstance(stream, dict) or "stream_descriptor" not in stream:
            raise ConfigError(f"unsupported state entry {json.dumps(item)[:120]}: expected a STREAM state")
        states[stream["stream_descriptor"]["name"]] = stream.get("stream_state") or {}
    return states
