"""Partner delivery updates -> the order record: a shipped (COMPLETED) order becomes DELIVERED.

The update arrives through the delivery-updates queue, put there by API Gateway itself (contracts/
deliveries.py). Applying it is a conditional status change, so a repeated update changes nothing; the
consumer also records each (order, tracking id) once through Powertools idempotency.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import Json

from contracts.deliveries import DeliveryUpdate
from contracts.orders import OrderStatus
from orders.repository import OrderRecords


class DeliveryUpdateRecord(SqsRecordModel):
    """An SQS record of the delivery-updates queue: the body is the partner's request body as sent."""

    body: Json[DeliveryUpdate]


def apply(update: DeliveryUpdate, orders: OrderRecords) -> dict[str, str]:
    """Raises OrderNotFound or InvalidStatusTransition (an order not shipped, or cancelled): the message
    is retried and then kept in the queue's DLQ for someone to look at."""
    changed = orders.set_status(update.order_id, OrderStatus.DELIVERED)
    return {"order_id": update.order_id, "status": OrderStatus.DELIVERED.value, "changed": str(changed).lower()}
