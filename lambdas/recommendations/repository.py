"""Records of SKUs "bought together" (`RECS#<sku>` / `ORDER#<order id>`): one item per SKU and order, written
once, so an event Lambda delivers twice (asynchronous invocations are at least once) counts once."""

from __future__ import annotations

from contracts.tables import ORDER_PREFIX, RECOMMENDATION_PREFIX
from plumbing import aws
from plumbing.orders_table import expiry, put_once, utc_now


class BoughtTogether:
    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    def record(self, order_id: str, sku: str, others: list[str]) -> bool:
        """False when this order was recorded for this SKU before (a redelivered event)."""
        item = {
            "pk": f"{RECOMMENDATION_PREFIX}{sku}",
            "sk": f"{ORDER_PREFIX}{order_id}",
            "with": others,
            "expires_at": expiry(utc_now()),
        }
        return put_once(self.table, item)

    def orders_with(self, sku: str) -> dict[str, list[str]]:
        """order id -> the other SKUs of that order, for every order recorded under `sku`."""
        response = self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": f"{RECOMMENDATION_PREFIX}{sku}"},
            ConsistentRead=True,
        )
        return {item["sk"].removeprefix(ORDER_PREFIX): list(item.get("with", [])) for item in response["Items"]}
