"""SQS consumer of the fulfilment queue (OrderPlaced, OrderCancelled) -> the order record."""

from __future__ import annotations

from contracts.events import OrderEvent
from orders import fulfilment as service
from orders.repository import OrderRecords
from plumbing.aws import env
from plumbing.batch import OrderEventRecord
from plumbing.consumer import SqsConsumer

consumer = SqsConsumer(OrderEventRecord, idempotency_key="[order_id, event_type]")
orders = OrderRecords(env("ORDERS_TABLE"))


@consumer.once
def apply_once(event: OrderEvent) -> dict[str, str]:
    return service.apply(event, orders)


def record_handler(record: OrderEventRecord) -> dict[str, str]:
    event = record.body
    consumer.follow(event.order_id, event.event_type, event.correlation_id)
    result = apply_once(event=event)
    consumer.logger.info("event applied", extra=result)
    return result


lambda_handler = consumer.handler(record_handler)
