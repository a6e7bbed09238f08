"""SQS consumer of the notification queue (OrderPlaced, OrderShipped, OrderCancelled) -> customer messages."""

from __future__ import annotations

from contracts.events import OrderEvent
from notification import service
from notification.repository import Notifications
from plumbing.aws import env
from plumbing.batch import OrderEventRecord
from plumbing.consumer import SqsConsumer

consumer = SqsConsumer(OrderEventRecord, idempotency_key="[order_id, event_type]")
notifications = Notifications(env("ORDERS_TABLE"))


@consumer.once
def notify_once(event: OrderEvent) -> dict[str, str]:
    return service.notify(event, notifications)


def record_handler(record: OrderEventRecord) -> dict[str, str]:
    event = record.body
    consumer.follow(event.order_id, event.event_type, event.correlation_id)
    result = notify_once(event=event)
    consumer.logger.info("customer notified", extra=result)
    return result


lambda_handler = consumer.handler(record_handler)
