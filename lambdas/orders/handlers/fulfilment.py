"""SQS consumer of the fulfilment queue (OrderPlaced, OrderCancelled) -> the order record."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts.events import OrderEvent
from orders import fulfilment as service
from orders.repository import OrderRecords
from plumbing.aws import env
from plumbing.batch import OrderEventRecord, process_batch
from plumbing.idempotency import CONSUMER_IDEMPOTENCY_SECONDS, idempotency_store

logger = Logger()
tracer = Tracer()
metrics = Metrics()

processor = BatchProcessor(event_type=EventType.SQS, model=OrderEventRecord, raise_on_entire_batch_failure=False)
orders = OrderRecords(env("ORDERS_TABLE"))
idempotency = IdempotencyConfig(
    event_key_jmespath="[order_id, event_type]", expires_after_seconds=CONSUMER_IDEMPOTENCY_SECONDS
)


@idempotent_function(data_keyword_argument="event", config=idempotency, persistence_store=idempotency_store())
def apply_once(event: OrderEvent) -> dict[str, str]:
    return service.apply(event, orders)


@tracer.capture_method
def record_handler(record: OrderEventRecord) -> dict[str, str]:
    event = record.body
    logger.set_correlation_id(event.correlation_id)
    logger.append_keys(order_id=event.order_id, event_type=event.event_type)
    result = apply_once(event=event)
    logger.info("event applied", extra=result)
    return result


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    return process_batch(event, context, processor, record_handler, metrics)
