"""Publishing: order events to SNS with the contract's message attributes (every filter policy matches
on them), and ordered ledger events to the inventory FIFO queue. A producer publishes one event and
nothing else: whoever needs to react (the fan-out queues, the cancel window) subscribes."""

from __future__ import annotations

from contracts.events import LedgerEvent, OrderEvent
from plumbing import aws


def publish_order_event(topic_arn: str, event: OrderEvent) -> str:
    """Publish one order event; subscribers filter on `event_type`, and every consumer logs
    `correlation_id`, so one request can be followed across services."""
    response = aws.client("sns").publish(
        TopicArn=topic_arn, Message=event.model_dump_json(), MessageAttributes=event.message_attributes()
    )
    message_id: str = response["MessageId"]
    return message_id


def send_ledger_event(queue_url: str, event: LedgerEvent) -> None:
    """FIFO: events of one SKU (or one order's payments) are consumed in order; the deduplication id
    is derived from order + step, so a retried step within SQS's 5-minute window is sent once."""
    aws.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=event.model_dump_json(exclude_none=True),
        MessageGroupId=event.message_group,
        MessageDeduplicationId=event.event_id,
    )
