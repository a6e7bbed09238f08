"""Notification: what the customer is told about an order event (recorded as `sk=NOTIFICATION`)."""

from __future__ import annotations

from contracts.events import ORDER_CANCELLED, ORDER_PLACED, ORDER_SHIPPED, OrderEvent
from notification.repository import Notifications

TEMPLATES = {
    ORDER_PLACED: "We received your order {order_id} ({total} {currency}).",
    ORDER_SHIPPED: "Your order {order_id} is on its way.",
    ORDER_CANCELLED: "Your order {order_id} was cancelled.",
}


def message_for(event: OrderEvent) -> str | None:
    template = TEMPLATES.get(event.event_type)
    return template.format(order_id=event.order_id, total=event.total, currency=event.currency) if template else None


def notify(event: OrderEvent, notifications: Notifications) -> dict[str, str]:
    """Record the customer message for the event. Appends: the caller makes it run once per event."""
    text = message_for(event)
    if text is None:
        return {"order_id": event.order_id, "outcome": "ignored"}
    notifications.append(event.order_id, event.customer_id, event.event_type, text)
    return {"order_id": event.order_id, "outcome": "notified"}
