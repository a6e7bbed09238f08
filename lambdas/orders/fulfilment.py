"""Fulfilment: records placed orders (status RECEIVED) and applies cancellations to the record."""

from __future__ import annotations

from contracts.errors import InvalidStatusTransition
from contracts.events import ORDER_CANCELLED, ORDER_PLACED, OrderEvent
from contracts.orders import Order, OrderStatus, order_fields
from orders.repository import CUSTOMER_CANCELLED, OrderRecords
from plumbing.orders_table import utc_now


def order_of(event: OrderEvent) -> Order:
    """The order record an OrderPlaced event describes."""
    return Order(
        **order_fields(event),
        updated_at=utc_now(),
        correlation_id=event.correlation_id,
    )


def apply(event: OrderEvent, orders: OrderRecords) -> dict[str, str]:
    """Apply one order event to the order record; safe to call twice for the same event."""
    if event.event_type == ORDER_PLACED:
        created = orders.create(order_of(event))
        return {"order_id": event.order_id, "outcome": "recorded" if created else "already recorded"}
    if event.event_type == ORDER_CANCELLED:
        # OrderNotFound propagates: the OrderPlaced may still be in flight, so the message is retried.
        try:
            changed = orders.set_status(event.order_id, OrderStatus.CANCELLED, reason=CUSTOMER_CANCELLED)
        except InvalidStatusTransition as error:
            # A completed order cannot be cancelled any more; retrying would not change that.
            return {"order_id": event.order_id, "outcome": f"not applicable: {error}"}
        return {"order_id": event.order_id, "outcome": "cancelled" if changed else "already cancelled"}
    return {"order_id": event.order_id, "outcome": "ignored"}
