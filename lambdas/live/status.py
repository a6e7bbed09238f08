"""Which changes of the orders table a customer hears about: the order record's status, nothing else.

A stream record of `ORDER#<id>` / `META` whose status differs from the old image (or that created the
record) is one status change, sent as `{"orderId", "status", "reason"?, "updatedAt"?}` (the reason of
a cancelled order; when the record took the status). Every other item of the table (notifications, payments, reservations...) and every other
attribute change is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from contracts.tables import META, ORDER_PREFIX, PARTITION_KEY, SORT_KEY


@dataclass(frozen=True)
class StatusChange:
    order_id: str
    customer_id: str
    status: str
    reason: str | None = None
    updated_at: str | None = None  # when the record took this status (ISO 8601, UTC)

    def message(self) -> bytes:
        body: dict[str, str] = {"orderId": self.order_id, "status": self.status}
        if self.reason:
            body["reason"] = self.reason
        if self.updated_at:
            body["updatedAt"] = self.updated_at
        return json.dumps(body).encode()


def _string(image: dict[str, Any], name: str) -> str | None:
    value = image.get(name)
    return value.get("S") if isinstance(value, dict) else None


def status_change(record: dict[str, Any]) -> StatusChange | None:
    """The status change a DynamoDB stream record (NEW_AND_OLD_IMAGES) carries, None if it carries none."""
    if record.get("eventName") not in {"INSERT", "MODIFY"}:
        return None
    stream = record.get("dynamodb", {})
    new, old = stream.get("NewImage") or {}, stream.get("OldImage") or {}
    pk, sk = _string(new, PARTITION_KEY) or "", _string(new, SORT_KEY)
    if not pk.startswith(ORDER_PREFIX) or sk != META:
        return None
    status, customer = _string(new, "status"), _string(new, "customer_id")
    if not status or not customer or status == _string(old, "status"):
        return None
    return StatusChange(
        order_id=_string(new, "order_id") or pk.removeprefix(ORDER_PREFIX),
        customer_id=customer,
        status=status,
        reason=_string(new, "cancel_reason"),
        updated_at=_string(new, "updated_at"),
    )
