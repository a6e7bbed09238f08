"""SQS consumer of the delivery-updates queue (fed by API Gateway, POST /partners/deliveries) -> DELIVERED."""

from __future__ import annotations

from contracts.deliveries import DELIVERY_UPDATED, DeliveryUpdate
from orders import deliveries as service
from orders.deliveries import DeliveryUpdateRecord
from orders.repository import OrderRecords
from plumbing.aws import env
from plumbing.consumer import SqsConsumer

consumer = SqsConsumer(DeliveryUpdateRecord, idempotency_key="[order_id, tracking_id]")
orders = OrderRecords(env("ORDERS_TABLE"))


@consumer.once
def apply_once(event: DeliveryUpdate) -> dict[str, str]:
    return service.apply(event, orders)


def record_handler(record: DeliveryUpdateRecord) -> dict[str, str]:
    update = record.body
    consumer.follow(update.order_id, DELIVERY_UPDATED)
    result = apply_once(event=update)
    consumer.logger.info("delivery update applied", extra=result)
    return result


lambda_handler = consumer.handler(record_handler)
