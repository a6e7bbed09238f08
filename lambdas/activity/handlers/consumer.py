"""SQS consumer of the activity queue: one synchronous Express execution per batch counts its events;
each record is then reported by its event's outcome (poison and uncounted records fail, the rest pass)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from activity import service
from activity.repository import CountingMachine
from activity.service import ActivityRecord
from plumbing.aws import env
from plumbing.batch import process_batch

logger = Logger()
tracer = Tracer()
metrics = Metrics()
# A record that is not an activity event fails to parse here and is reported failed: after 3 receives
# it is in the DLQ, and the rest of its batch is counted.
processor = BatchProcessor(event_type=EventType.SQS, model=ActivityRecord, raise_on_entire_batch_failure=False)
machine = CountingMachine(env("ACTIVITY_STATE_MACHINE_ARN"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    batch = service.read_batch(event.get("Records", []))
    outcomes: dict[str, str] = {}
    if batch.events:
        status, output = machine.count(service.machine_input(batch, datetime.now(UTC)))
        outcomes = service.outcomes_of(output)
        if status != "SUCCEEDED":
            logger.error("activity batch not counted", extra={"status": status, **output})
    counted = sum(1 for outcome in outcomes.values() if outcome == service.COUNTED)
    metrics.add_metric(name="ActivityCounted", unit=MetricUnit.Count, value=counted)
    logger.info(
        "activity batch",
        extra={"events": len(batch.events), "counted": counted, "poison": len(batch.poison)},
    )

    def record_handler(record: ActivityRecord) -> str:
        return service.settle(record.messageId, batch, outcomes)

    return process_batch(event, context, processor, record_handler, metrics)
