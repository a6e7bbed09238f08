"""What the backend tier accepts and announces: the contract's OrderRequest and OrderPlaced event
(contracts/), so the web channel and the API channel take exactly the same orders."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import ValidationError

from contracts.events import ORDER_PLACED, OrderEvent
from contracts.orders import Channel, Order, OrderRequest
from contracts.types import describe_validation_error


class InvalidOrder(ValueError):
    """The order request breaks a rule; the message says which, for the 400 body."""


def parse_order(raw: bytes | str) -> OrderRequest:
    """The validated order, or InvalidOrder with every problem in one message."""
    try:
        return OrderRequest.model_validate_json(raw)
    except ValidationError as error:
        raise InvalidOrder(describe_validation_error(error)) from None


def order_placed_event(order: OrderRequest, *, channel: Channel, correlation_id: str) -> OrderEvent:
    placed = Order(
        order_id=str(uuid.uuid4()),
        customer_id=order.customer_id,
        items=order.items,
        currency=order.currency,
        channel=channel,
        placed_at=datetime.now(UTC),
        correlation_id=correlation_id,
    )
    return OrderEvent.of(placed, ORDER_PLACED, correlation_id)
