"""Order finaliser: once the cancel grace period is over, RECEIVED becomes CONFIRMED."""

from __future__ import annotations

from contracts.errors import InvalidStatusTransition, OrderNotFound
from contracts.orders import OrderStatus
from orders.repository import OrderRecords


def finalise(order_id: str, orders: OrderRecords) -> dict[str, str]:
    """Confirm the order unless it moved on (cancelled, or completed by a quick checkout).

    Idempotent by its conditional write (RECEIVED -> CONFIRMED only), so it needs no idempotency
    table. A missing record raises OrderNotFound: the fulfilment consumer has not recorded the order
    yet, and the message is retried until it has (or lands in the DLQ).
    """
    order = orders.get(order_id)
    if order is None:
        raise OrderNotFound(order_id)
    if order.status != OrderStatus.RECEIVED:
        return {"order_id": order_id, "outcome": f"left {order.status}"}
    try:
        orders.set_status(order_id, OrderStatus.CONFIRMED)
    except InvalidStatusTransition as raced:  # cancelled between the read and the write
        return {"order_id": order_id, "outcome": f"left {raced.current}"}
    return {"order_id": order_id, "outcome": "confirmed"}
