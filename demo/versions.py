"""What differs between the demo connector's versions: one behaviour object per version.

The differences are the documented ones (demo/README.md); tests in this repo assert exactly them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from live_tests.demo.shop_data import Row, format_timestamp

VERSION_ENV = "DEMO_VERSION"
DEFAULT_VERSION = "1.0.0"


@dataclass(frozen=True)
class VersionBehaviour:
    """Everything that differs between the demo versions (see demo/README.md)."""

    version: str
    start_date_description: str
    # HTTP mode: records per page; 2.0.0 also lets the config choose it (`page_size`).
    default_page_size: int
    page_size_in_spec: bool
    # HTTP mode: 2.0.0 first fetches GET {api_url}/shop.
    fetches_shop_metadata: bool
    email_nullable: bool
    orders_currency_in_schema: bool
    # (customer id, new name function) and (order_id, line) that 2.0.0 changes and drops.
    renamed_customer: tuple[int, Callable[[str], str]] | None
    dropped_order_line: tuple[int, int] | None
    # strftime of the `customers` state cursor.
    customers_cursor_format: str

    def transform(self, stream: str, row: Row) -> Row | None:
        """The version's record-level changes; None drops the row."""
        if stream == "customers" and self.renamed_customer and row["id"] == self.renamed_customer[0]:
            return {**row, "name": self.renamed_customer[1](row["name"])}
        if stream == "orders" and self.dropped_order_line and (row["order_id"], row["line"]) == self.dropped_order_line:
            return None
        return row

    def format_cursor(self, stream: str, value: datetime) -> str:
        if stream == "customers":
            return value.strftime(self.customers_cursor_format)
        return format_timestamp(value)


BEHAVIOURS = {
    "1.0.0": VersionBehaviour(
        version="1.0.0",
        start_date_description="UTC date-time from which records are generated, e.g. 2024-01-01T00:00:00Z.",
        default_page_size=20,
        page_size_in_spec=False,
        fetches_shop_metadata=False,
        email_nullable=False,
        orders_currency_in_schema=False,
        renamed_customer=None,
        dropped_order_line=None,
        customers_cursor_format="%Y-%m-%dT%H:%M:%SZ",
    ),
    "2.0.0": VersionBehaviour(
        version="2.0.0",
        start_date_description="UTC date and time (ISO 8601) of the first generated record, e.g. 2024-01-01T00:00:00Z.",
        default_page_size=50,
        page_size_in_spec=True,
        fetches_shop_metadata=True,
        email_nullable=True,
        orders_currency_in_schema=True,
        renamed_customer=(7, str.upper),
        dropped_order_line=(5, 2),
        customers_cursor_format="%Y-%m-%dT%H:%M:%S+00:00",
    ),
}
