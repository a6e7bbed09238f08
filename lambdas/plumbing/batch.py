"""Batch reporting shared by the SQS consumers (kept apart from plumbing.http so that the API handlers
do not import the batch utilities at cold start), and the record models of the queues they consume."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BasePartialBatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from contracts.events import LedgerEvent, OrderEvent
from plumbing import aws


class OrderEventRecord(SqsRecordModel):
    """An SQS record of a queue subscribed to the order-events topic: SNS raw delivery puts the event
    JSON itself in the body."""

    body: Json[OrderEvent]


class LedgerRecord(SqsRecordModel):
    """An SQS record of the inventory FIFO queue."""

    body: Json[LedgerEvent]


def process_batch(
    event: dict[str, Any],
    context: LambdaContext,
    processor: BasePartialBatchProcessor,
    record_handler: Callable[[Any], Any],
    metrics: Metrics,
) -> PartialItemFailureResponse:
    """Process an SQS batch record by record and answer with the failed ones only (partial batch
    response): the poison record goes back to the queue, then to its DLQ, the rest is deleted.
    Emits OrdersProcessed / ProcessingFailed (dimension `service` = the consumer)."""
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    metrics.add_metric(name="OrdersProcessed", unit=MetricUnit.Count, value=len(processor.success_messages))
    metrics.add_metric(name="ProcessingFailed", unit=MetricUnit.Count, value=len(processor.fail_messages))
    return response


def retry_later(record: SqsRecordModel, queue_url: str, *, first_seconds: int, most_seconds: int) -> int:
    """Make a record that is about to be reported failed visible again sooner than the queue's
    visibility timeout, with exponential backoff over its receives (`first_seconds`, doubling, at most
    `most_seconds`): for a failure that passes once a dependency has caught up. Its receive count still
    grows, so a record that never passes still reaches the DLQ. Returns the delay it chose."""
    receives = int(record.attributes.ApproximateReceiveCount or 1)
    delay = min(first_seconds * 2 ** (receives - 1), most_seconds)
    aws.client("sqs").change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=record.receiptHandle, VisibilityTimeout=delay
    )
    return delay
