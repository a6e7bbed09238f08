"""SQS consumer of the cancel-window delay queue -> confirms orders whose grace period is over.

The queue is subscribed to the order-events topic (OrderPlaced only) and delays every delivery by the
grace period, so the producer publishes one event and the window starts from it. The fulfilment
consumer records the order from the same event: when the finaliser is first, the message comes back
after a few seconds (not after the queue's visibility timeout) and is tried again."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts.errors import OrderNotFound
from orders import finaliser as service
from orders.repository import OrderRecords
from plumbing.aws import env
from plumbing.batch import OrderEventRecord, process_batch, retry_soon

# The fulfilment consumer records an order within seconds of its OrderPlaced; ask again after this long.
NOT_RECORDED_RETRY_SECONDS = 5

logger = Logger()
tracer = Tracer()
metrics = Metrics()

processor = BatchProcessor(event_type=EventType.SQS, model=OrderEventRecord, raise_on_entire_batch_failure=False)
orders = OrderRecords(env("ORDERS_TABLE"))


@tracer.capture_method
def record_handler(record: OrderEventRecord) -> dict[str, str]:
    logger.append_keys(order_id=record.body.order_id)
    try:
        result = service.finalise(record.body.order_id, orders)
    except OrderNotFound:
        retry_soon(record, env("CANCEL_WINDOW_QUEUE_URL"), NOT_RECORDED_RETRY_SECONDS)
        raise
    logger.info("cancel window closed", extra=result)
    return result


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_batch(event, context, processor, record_handler, metrics)
