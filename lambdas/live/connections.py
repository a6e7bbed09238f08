"""The live-status connections table: who is listening for their orders' status, on which socket.

    customer_id (partition) / connection_id (sort), expires_at (TTL)

A connection is stored by `$connect` once the authorizer has verified the customer's ID token, and
removed by `$disconnect` or by the notifier when API Gateway says it is gone. The TTL outlives API
Gateway's own limit on a WebSocket connection (2 hours), so an item a lost `$disconnect` leaves behind
disappears on its own.
"""

from __future__ import annotations

import time
from typing import Any

from plumbing import aws

PARTITION_KEY = "customer_id"
SORT_KEY = "connection_id"
TTL_ATTRIBUTE = "expires_at"
CONNECTION_TTL_SECONDS = 3 * 3600


class Connections:
    def __init__(self, table_name: str) -> None:
        self._name = table_name

    @property
    def _table(self) -> Any:
        return aws.table(self._name)

    def add(self, customer_id: str, connection_id: str, *, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self._table.put_item(
            Item={
                PARTITION_KEY: customer_id,
                SORT_KEY: connection_id,
                "connected_at": int(now),
                TTL_ATTRIBUTE: int(now) + CONNECTION_TTL_SECONDS,
            }
        )

    def remove(self, customer_id: str, connection_id: str) -> None:
        self._table.delete_item(Key={PARTITION_KEY: customer_id, SORT_KEY: connection_id})

    def of(self, customer_id: str) -> list[str]:
        """The customer's open connections (a customer may have several tabs or devices)."""
        ids: list[str] = []
        query: dict[str, Any] = {
            "KeyConditionExpression": f"{PARTITION_KEY} = :c",
            "ExpressionAttributeValues": {":c": customer_id},
            "ProjectionExpression": SORT_KEY,
        }
        while True:
            page = self._table.query(**query)
            ids.extend(item[SORT_KEY] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return ids
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
