"""SQS consumer of the cancel-window delay queue -> confirms orders whose grace period is over.

The queue is subscribed to the order-events topic (OrderPlaced only) and delays every delivery by the
grace period, so the producer publishes one event and the window starts from it. The fulfilment
consumer records the order from the same event: when the finaliser is first, the message comes back
after a few seconds, then with backoff (not after the queue's 180 s visibility timeout each time), for
as many receives as the queue allows before its DLQ (the Messaging stack sets 8 for this queue)."""

from __future__ import annotations

from contracts.errors import OrderNotFound
from orders import finaliser as service
from orders.repository import OrderRecords
from plumbing.aws import env
from plumbing.batch import OrderEventRecord, retry_later
from plumbing.consumer import SqsConsumer

# The fulfilment consumer records an order within seconds of its OrderPlaced: ask again after 5 s, then
# 10, 20, ... at most 180 s (8 receives span about 8 minutes).
NOT_RECORDED_RETRY_SECONDS = 5
NOT_RECORDED_RETRY_MOST_SECONDS = 180

# Idempotent by itself: the status change is a conditional write (RECEIVED -> CONFIRMED only).
consumer = SqsConsumer(OrderEventRecord)
orders = OrderRecords(env("ORDERS_TABLE"))


def record_handler(record: OrderEventRecord) -> dict[str, str]:
    event = record.body
    consumer.follow(event.order_id, event.event_type, event.correlation_id)
    try:
        result = service.finalise(event.order_id, orders)
    except OrderNotFound:
        delay = retry_later(
            record,
            env("CANCEL_WINDOW_QUEUE_URL"),
            first_seconds=NOT_RECORDED_RETRY_SECONDS,
            most_seconds=NOT_RECORDED_RETRY_MOST_SECONDS,
        )
        consumer.logger.info("order not recorded yet; asking again later", extra={"retry_in_seconds": delay})
        raise
    consumer.logger.info("cancel window closed", extra=result)
    return result


lambda_handler = consumer.handler(record_handler)
