"""Batch reporting shared by the SQS consumers (kept apart from shared.powertools so that the API
handlers do not import the batch utilities at cold start)."""

from __future__ import annotations

from typing import Any, Callable

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BasePartialBatchProcessor, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext


def process_batch(
    event: dict[str, Any],
    context: LambdaContext,
    processor: BasePartialBatchProcessor,
    record_handler: Callable[[Any], Any],
    metrics: Metrics,
) -> dict[str, Any]:
    """Process an SQS batch record by record and answer with the failed ones only (partial batch
    response): the poison record goes back to the queue, then to its DLQ, the rest is deleted.
    Emits OrdersProcessed / ProcessingFailed (dimension `service` = the consumer)."""
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    metrics.add_metric(name="OrdersProcessed", unit=MetricUnit.Count, value=len(processor.success_messages))
    metrics.add_metric(name="ProcessingFailed", unit=MetricUnit.Count, value=len(processor.fail_messages))
    return response
