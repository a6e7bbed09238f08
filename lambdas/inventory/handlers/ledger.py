"""SQS FIFO consumer of the inventory events queue -> the ledger.

FIFO partial failures: once a record fails, the later records *of the same message group* are not
processed and are reported as failures too (they must not overtake it); other groups carry on.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts.events import LedgerEvent
from inventory import ledger as service
from inventory.repository import Ledger
from plumbing.aws import env
from plumbing.batch import LedgerRecord, process_batch
from plumbing.idempotency import CONSUMER_IDEMPOTENCY_SECONDS, idempotency_store

logger = Logger()
tracer = Tracer()
metrics = Metrics()

processor = SqsFifoPartialProcessor(model=LedgerRecord, skip_group_on_error=True)
ledger = Ledger(env("ORDERS_TABLE"))
# `event_id` is order + step (+ sku): a step retried after SQS's 5-minute deduplication window sends a
# second message with a new sequence number, and this key still records it once.
idempotency = IdempotencyConfig(event_key_jmespath="event_id", expires_after_seconds=CONSUMER_IDEMPOTENCY_SECONDS)


@idempotent_function(data_keyword_argument="event", config=idempotency, persistence_store=idempotency_store())
def record_once(event: LedgerEvent, sequence: str) -> dict[str, str]:
    return service.record(event, sequence, ledger)


@tracer.capture_method
def record_handler(record: LedgerRecord) -> dict[str, str]:
    event = record.body
    if event.correlation_id:
        logger.set_correlation_id(event.correlation_id)
    logger.append_keys(order_id=event.order_id, event_type=event.event_type, message_group=event.message_group)
    if not record.attributes.SequenceNumber:
        raise ValueError(f"message {record.messageId} has no SequenceNumber: not from a FIFO queue")
    result = record_once(event=event, sequence=record.attributes.SequenceNumber)
    logger.info("ledger event recorded", extra=result)
    return result


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    return process_batch(event, context, processor, record_handler, metrics)
