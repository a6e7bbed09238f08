"""SQS consumer of the cancel-window delay queue -> confirms orders whose grace period is over."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.typing import LambdaContext

from order_finaliser import service
from shared.aws import env
from shared.batch import process_batch
from shared.models import CancelWindowRecord
from shared.repositories import OrdersRepository

logger = Logger()
tracer = Tracer()
metrics = Metrics()

processor = BatchProcessor(event_type=EventType.SQS, model=CancelWindowRecord, raise_on_entire_batch_failure=False)
orders = OrdersRepository(env("ORDERS_TABLE"))


@tracer.capture_method
def record_handler(record: CancelWindowRecord) -> dict[str, str]:
    logger.append_keys(order_id=record.body.order_id)
    result = service.finalise(record.body.order_id, orders)
    logger.info("cancel window closed", extra=result)
    return result


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_batch(event, context, processor, record_handler, metrics)
