"""Customer messages of an order (`ORDER#<id>` / `NOTIFICATION`), kept for audits, then expired (TTL)."""

from __future__ import annotations

from typing import Any

from contracts.tables import order_key
from plumbing import aws
from plumbing.orders_table import expiry, iso, utc_now

NOTIFICATION = "NOTIFICATION"


class Notifications:
    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    def append(self, order_id: str, customer_id: str, event_type: str, text: str) -> None:
        now = utc_now()
        self.table.update_item(
            Key=order_key(order_id, NOTIFICATION),
            UpdateExpression=(
                "SET customer_id = :customer, messages = list_append(if_not_exists(messages, :empty), :message), "
                "updated_at = :now, expires_at = :expires"
            ),
            ExpressionAttributeValues={
                ":customer": customer_id,
                ":empty": [],
                ":message": [{"event_type": event_type, "text": text, "sent_at": iso(now)}],
                ":now": iso(now),
                ":expires": expiry(now),
            },
        )

    def messages(self, order_id: str) -> list[dict[str, Any]]:
        item = self.table.get_item(Key=order_key(order_id, NOTIFICATION), ConsistentRead=True).get("Item") or {}
        messages: list[dict[str, Any]] = item.get("messages", [])
        return messages
