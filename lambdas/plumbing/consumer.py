"""The wiring every SQS consumer shares, written once: Powertools Logger, Tracer and Metrics, a batch
processor that answers with the failed records only, and (optionally) idempotency.

A consumer module keeps what is its own - the record model, the idempotency key, its repository, what
it does with one record - and gets its `lambda_handler` from here:

    consumer = SqsConsumer(OrderEventRecord, idempotency_key="[order_id, event_type]")

    @consumer.once
    def apply_once(event: OrderEvent) -> dict[str, str]: ...

    def record_handler(record: OrderEventRecord) -> dict[str, str]: ...

    lambda_handler = consumer.handler(record_handler)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.batch import (
    BasePartialBatchProcessor,
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from plumbing.batch import process_batch
from plumbing.idempotency import CONSUMER_IDEMPOTENCY_SECONDS, idempotency_store

Result = TypeVar("Result")
LambdaHandler = Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]


class SqsConsumer:
    """One SQS-triggered function. `fifo`: once a record fails, the later records of its message group are
    reported failed too (they must not overtake it); other groups carry on. `idempotency_key`: the
    JMESPath over the event that `once` records it by (None: the consumer is idempotent by itself)."""

    def __init__(
        self, record_model: type[SqsRecordModel], *, idempotency_key: str | None = None, fifo: bool = False
    ) -> None:
        self.logger = Logger()
        self.tracer = Tracer()
        self.metrics = Metrics()
        self.processor: BasePartialBatchProcessor = (
            SqsFifoPartialProcessor(model=record_model, skip_group_on_error=True)
            if fifo
            else BatchProcessor(event_type=EventType.SQS, model=record_model, raise_on_entire_batch_failure=False)
        )
        self.idempotency = (
            IdempotencyConfig(event_key_jmespath=idempotency_key, expires_after_seconds=CONSUMER_IDEMPOTENCY_SECONDS)
            if idempotency_key
            else None
        )

    def once(self, function: Callable[..., Result]) -> Callable[..., Result]:
        """`function(event=...)` applied once per idempotency key: a redelivered event gets the stored result."""
        assert self.idempotency is not None, "once() needs an idempotency_key"
        decorate = idempotent_function(
            data_keyword_argument="event", config=self.idempotency, persistence_store=idempotency_store()
        )
        wrapped: Callable[..., Result] = decorate(function)
        return wrapped

    def follow(self, order_id: str, event_type: str | None = None, correlation_id: str | None = None) -> None:
        """Log this record's lines with its order, event type and correlation id (the publisher's request)."""
        if correlation_id:
            self.logger.set_correlation_id(correlation_id)
        self.logger.append_keys(order_id=order_id, **({"event_type": event_type} if event_type else {}))

    def handler(self, record_handler: Callable[[Any], Any]) -> LambdaHandler:
        """The Lambda entry point: each record through `record_handler` (traced), partial batch response."""
        traced = self.tracer.capture_method(record_handler)

        @self.logger.inject_lambda_context(clear_state=True)
        @self.tracer.capture_lambda_handler
        @self.metrics.log_metrics
        def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
            if self.idempotency is not None:
                self.idempotency.register_lambda_context(context)
            return process_batch(event, context, self.processor, traced, self.metrics)

        return lambda_handler
