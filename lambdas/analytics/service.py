"""Analytics: per-day counters of every event type (`pk=ANALYTICS#<yyyy-mm-dd>, sk=<event_type>`)."""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Json

from analytics.repository import DailyCounters
from contracts.events import EventType
from contracts.types import Money, OrderId


class CountedEvent(BaseModel):
    """What analytics needs of an event: it counts every type, including ones it cannot fully parse."""

    model_config = ConfigDict(extra="ignore")

    event_type: EventType
    order_id: OrderId
    total: Money | None = None
    correlation_id: str | None = None


class CountedEventRecord(SqsRecordModel):
    body: Json[CountedEvent]


def day_of(sent: datetime) -> str:
    """The UTC day the event was published (SQS SentTimestamp), not the day it was processed: a
    backlog drained after midnight is still counted on the day it happened."""
    return sent.astimezone(UTC).strftime("%Y-%m-%d")


def count(event: CountedEvent, day: str, counters: DailyCounters) -> dict[str, str]:
    """Add the event to its day's counter. ADD is not idempotent: the caller runs this once per event."""
    counters.count(day, event.event_type, event.total)
    return {"order_id": event.order_id, "day": day, "outcome": "counted"}
