"""Per-day counters of every event type (`ANALYTICS#<yyyy-mm-dd>` / `<event_type>`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from contracts.tables import ANALYTICS_PREFIX
from plumbing import aws


class DailyCounters:
    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    @staticmethod
    def key(day: str, event_type: str) -> dict[str, str]:
        return {"pk": f"{ANALYTICS_PREFIX}{day}", "sk": event_type}

    def count(self, day: str, event_type: str, amount: Decimal | None) -> None:
        """ADD is atomic but not idempotent: callers must make sure an event is counted once."""
        update = "ADD event_count :one"
        values: dict[str, Any] = {":one": 1}
        if amount is not None:
            update += ", amount :amount"
            values[":amount"] = amount
        self.table.update_item(Key=self.key(day, event_type), UpdateExpression=update, ExpressionAttributeValues=values)

    def read(self, day: str, event_type: str) -> dict[str, Any]:
        item: dict[str, Any] = self.table.get_item(Key=self.key(day, event_type), ConsistentRead=True).get("Item") or {}
        return item
