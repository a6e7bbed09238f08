"""Ingested hand-off objects (`HANDOFF#<key>` / `INGESTED`): written once per object."""

from __future__ import annotations

from typing import Any

from contracts.tables import HANDOFF_PREFIX
from plumbing import aws
from plumbing.orders_table import iso, put_once, utc_now

INGESTED = "INGESTED"


class Handoffs:
    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    def record(self, key: str, etag: str, records: list[dict[str, Any]]) -> bool:
        """Record an ingested hand-off object once (False: ingested before, only its delete had failed)."""
        return put_once(
            self.table,
            {
                "pk": f"{HANDOFF_PREFIX}{key}",
                "sk": INGESTED,
                "etag": etag,
                "record_count": len(records),
                "records": records,
                "ingested_at": iso(utc_now()),
            },
        )

    def get(self, key: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.table.get_item(
            Key={"pk": f"{HANDOFF_PREFIX}{key}", "sk": INGESTED}, ConsistentRead=True
        ).get("Item")
        return item
