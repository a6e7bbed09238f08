"""Fulfilment: records placed orders (status RECEIVED) and applies cancellations to the record."""

from __future__ import annotations

from shared.domain import OrderStatus
from shared.errors import InvalidStatusTransition
from shared.models import Order, OrderEvent
from shared.repositories import OrdersRepository


def apply(event: OrderEvent, orders: OrdersRepository) -> dict[str, str]:
    """Apply one order event to the order record; safe to call twice for the same event."""
    if event.event_type == "OrderPlaced":
        created = orders.create(Order.from_event(event))
        return {"order_id": event.order_id, "outcome": "recorded" if created else "already recorded"}
    if event.event_type == "OrderCancelled":
        # OrderNotFound propagates: the OrderPlaced may still be in flight, so the message is retried.
        try:
            changed = orders.set_status(event.order_id, OrderStatus.CANCELLED, reason="CustomerCancelled")
        except InvalidStatusTransition as error:
            # A completed order cannot be cancelled any more; retrying would not change that.
            return {"order_id": event.order_id, "outcome": f"not applicable: {error}"}
        return {"order_id": event.order_id, "outcome": "cancelled" if changed else "already cancelled"}
    return {"order_id": event.order_id, "outcome": "ignored"}
