"""The demo shop's deterministic data set, shared by the demo connector and the fake shop API.

Stdlib only: this module is copied into the demo images. The same (count, seed, start_date)
always gives the same rows, in any process (string seeds are hashed with SHA-512 by `random`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_COUNT = 30
DEFAULT_SEED = 42
DEFAULT_START_DATE = "2024-01-01T00:00:00Z"

_FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Linus")
_LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman")
_COUNTRIES = ("FR", "DE", "US", "GB", "JP", "BR")
_PRODUCTS = ("keyboard", "mouse", "monitor", "cable", "laptop stand", "webcam")
_EVENT_TYPES = ("page_view", "add_to_cart", "checkout")

Row = dict[str, Any]


@dataclass(frozen=True)
class ShopParams:
    """What decides the data set: number of customers/orders/events, RNG seed, first timestamp."""

    count: int = DEFAULT_COUNT
    seed: int = DEFAULT_SEED
    start_date: str = DEFAULT_START_DATE

    @property
    def start(self) -> datetime:
        return parse_timestamp(self.start_date)


def parse_timestamp(value: str) -> datetime:
    """ISO 8601 (with `Z` or an offset; naive means UTC) -> aware UTC datetime."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lines_in_order(order_id: int) -> int:
    """Order N has (N % 3) + 1 lines: fixed, so order 5 always has a line 2 to drop in v2."""
    return order_id % 3 + 1


def customers(params: ShopParams) -> Iterator[Row]:
    rng = random.Random(f"{params.seed}:customers")
    for customer_id in range(1, params.count + 1):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        yield {
            "id": customer_id,
            "name": f"{first} {last}",
            "email": f"{first}.{last}{customer_id}@example.com".lower(),
            "country": rng.choice(_COUNTRIES),
            "created_at": format_timestamp(params.start + timedelta(minutes=customer_id)),
            # One hour apart, increasing with id: the incremental cursor.
            "updated_at": format_timestamp(params.start + timedelta(hours=customer_id)),
        }


def order_lines(params: ShopParams) -> Iterator[Row]:
    rng = random.Random(f"{params.seed}:orders")
    for order_id in range(1, params.count + 1):
        customer_id = rng.randint(1, max(params.count, 1))
        ordered_at = format_timestamp(params.start + timedelta(hours=2 * order_id))
        for line in range(1, lines_in_order(order_id) + 1):
            yield {
                "order_id": order_id,
                "line": line,
                "customer_id": customer_id,
                "product": rng.choice(_PRODUCTS),
                "quantity": rng.randint(1, 5),
                "unit_price": round(rng.uniform(2, 200), 2),
                "ordered_at": ordered_at,
            }


def events(params: ShopParams) -> Iterator[Row]:
    rng = random.Random(f"{params.seed}:events")
    for n in range(1, params.count + 1):
        yield {
            "event_type": rng.choice(_EVENT_TYPES),
            "customer_id": rng.randint(1, max(params.count, 1)),
            # Thirty minutes apart: the incremental cursor of an append-only stream.
            "ts": format_timestamp(params.start + timedelta(minutes=30 * n)),
            "payload": f"session-{rng.randrange(16**8):08x}",
        }


STREAMS = {"customers": customers, "orders": order_lines, "events": events}


def shop_metadata(params: ShopParams) -> Row:
    return {"name": "Demo Shop", "currency": "USD", "timezone": "UTC", "customers": params.count}
