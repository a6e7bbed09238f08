"""SQS consumer of the analytics queue (every event type) -> per-day counters."""

from __future__ import annotations

from analytics import service
from analytics.repository import DailyCounters
from analytics.service import CountedEvent, CountedEventRecord
from plumbing.aws import env
from plumbing.consumer import SqsConsumer

consumer = SqsConsumer(CountedEventRecord, idempotency_key="[order_id, event_type]")
counters = DailyCounters(env("ORDERS_TABLE"))


@consumer.once
def count_once(event: CountedEvent, day: str) -> dict[str, str]:
    return service.count(event, day, counters)


def record_handler(record: CountedEventRecord) -> dict[str, str]:
    event = record.body
    consumer.follow(event.order_id, event.event_type, event.correlation_id)
    result = count_once(event=event, day=service.day_of(record.attributes.SentTimestamp))
    consumer.logger.info("event counted", extra=result)
    return result


lambda_handler = consumer.handler(record_handler)
