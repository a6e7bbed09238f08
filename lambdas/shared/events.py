"""Publishing: order events to SNS (with the message attributes every filter policy matches), the
cancel-window message to the delay queue, and ordered ledger events to the inventory FIFO queue."""

from __future__ import annotations

import json

from shared import aws
from shared.models import LedgerEvent, OrderEvent


def publish_order_event(topic_arn: str, event: OrderEvent) -> str:
    """Publish one order event; subscribers filter on `event_type` (and may on `channel`), and every
    consumer logs `correlation_id`, so one request can be followed across services."""
    response = aws.client("sns").publish(
        TopicArn=topic_arn,
        Message=event.model_dump_json(),
        MessageAttributes={
            "event_type": {"DataType": "String", "StringValue": event.event_type},
            "channel": {"DataType": "String", "StringValue": event.channel},
            "correlation_id": {"DataType": "String", "StringValue": event.correlation_id},
        },
    )
    return response["MessageId"]


def start_cancel_window(queue_url: str, order_id: str) -> None:
    """The delay queue hands the order id to the finaliser once the cancel grace period is over."""
    aws.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps({"order_id": order_id}))


def send_ledger_event(queue_url: str, event: LedgerEvent) -> None:
    """FIFO: events of one SKU (or one order's payments) are consumed in order; the deduplication id
    is derived from order + step, so a retried step within SQS's 5-minute window is sent once."""
    aws.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=event.model_dump_json(exclude_none=True),
        MessageGroupId=event.message_group,
        MessageDeduplicationId=event.event_id,
    )
