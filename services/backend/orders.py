"""What the backend tier accepts and announces: the contract's OrderRequest and OrderPlaced event
(contracts/), so the web channel and the API channel take exactly the same orders."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from contracts.events import ORDER_PLACED, OrderEvent
from contracts.orders import Channel, Order, OrderRequest
from contracts.types import describe_validation_error

# Namespace of the web channel's order ids derived from idempotency keys (the API channel has its own).
_ORDER_NAMESPACE = uuid.UUID("5f0c1d2e-8a47-4b6e-9c3d-2e7f1a9b4c68")


class InvalidOrder(ValueError):
    """The order request breaks a rule; the message says which, for the 400 body."""


def parse_order(raw: bytes | str) -> OrderRequest:
    """The validated order, or InvalidOrder with every problem in one message."""
    try:
        return OrderRequest.model_validate_json(raw)
    except ValidationError as error:
        raise InvalidOrder(describe_validation_error(error)) from None


def order_id_for(idempotency_key: str, body: Any) -> str:
    """The order id of a keyed request, derived from (key, body) as the API channel's
    (lambdas/orders/service.py): a repeat that does get to publish again publishes the *same* order,
    which every consumer applies once."""
    canonical = json.dumps([idempotency_key, body], sort_keys=True, separators=(",", ":"), default=str)
    return str(uuid.uuid5(_ORDER_NAMESPACE, canonical))


def order_placed_event(
    order: OrderRequest, *, channel: Channel, correlation_id: str, order_id: str | None = None
) -> OrderEvent:
    """The OrderPlaced event for `order`; a fresh order id unless `order_id` is given."""
    placed = Order(
        order_id=order_id or str(uuid.uuid4()),
        customer_id=order.customer_id,
        items=order.items,
        currency=order.currency,
        channel=channel,
        placed_at=datetime.now(UTC),
        correlation_id=correlation_id,
    )
    return OrderEvent.of(placed, ORDER_PLACED, correlation_id)
