"""Scheduled (EventBridge, every minute): ingest the S3 hand-off objects under `incoming/`."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from handoff import service
from handoff.repository import Handoffs
from plumbing import aws

logger = Logger()
tracer = Tracer()
metrics = Metrics()

handoffs = Handoffs(aws.env("ORDERS_TABLE"))


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    report = service.ingest(aws.env("HANDOFF_BUCKET"), handoffs, aws.client("s3"), context.get_remaining_time_in_millis)
    for key, reason in report.rejections:
        # Left in place on purpose (the consumer may not write to the bucket); the lifecycle rule expires it.
        logger.warning("hand-off object left in place", extra={"key": key, "reason": reason})
    metrics.add_metric(name="HandoffObjectsIngested", unit=MetricUnit.Count, value=report.ingested)
    metrics.add_metric(name="HandoffObjectsRejected", unit=MetricUnit.Count, value=report.rejected)
    logger.info("hand-off run finished", extra=report.counts())
    return report.counts()
