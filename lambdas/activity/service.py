"""What the activity consumer does with one SQS batch, as plain functions: read the records that are
activity events (the rest is poison), drop in-batch repeats of one event id, build the counting
machine's input, and settle each record from the machine's per-event outcomes.

The counting itself (one DynamoDB transaction per event: the counter's ADD and the event's marker,
conditional on the marker being absent) is the Express state machine's (stacks/workflow_stack.py), so
a redelivered event has one effect.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import Json, ValidationError

from contracts.activity import ActivityEvent
from contracts.tables import ACTIVITY_MARKER_DAYS, activity_counter_key, activity_marker_key

# Outcomes the machine reports per event (its Map's item results).
COUNTED, DUPLICATE, FAILED = "counted", "duplicate", "failed"
SETTLED = frozenset({COUNTED, DUPLICATE})


class ActivityRecord(SqsRecordModel):
    body: Json[ActivityEvent]


class NotCounted(Exception):
    """A record whose event the machine did not count (a failed transaction, or a failed execution): it
    goes back to the queue and is counted at its next delivery."""


@dataclass
class Batch:
    """The activity events of one SQS batch, each event id once, and which message carried which."""

    events: list[ActivityEvent] = field(default_factory=list)
    event_of_message: dict[str, str] = field(default_factory=dict)  # message id -> event id
    poison: list[str] = field(default_factory=list)  # message ids whose body is not an activity event


def read_batch(records: list[dict[str, Any]]) -> Batch:
    batch = Batch()
    seen: set[str] = set()
    for raw in records:
        try:
            record = ActivityRecord.model_validate(raw)
        except ValidationError:
            batch.poison.append(str(raw.get("messageId")))
            continue
        event = record.body
        batch.event_of_message[record.messageId] = event.event_id
        if event.event_id not in seen:
            seen.add(event.event_id)
            batch.events.append(event)
    return batch


def tally(events: list[ActivityEvent]) -> dict[tuple[str, str], int]:
    """Events per (subject, kind): what the batch adds to the counters when none was counted before."""
    return dict(Counter((event.subject, event.kind) for event in events))


def machine_input(batch: Batch, now: datetime) -> dict[str, Any]:
    """The counting machine's execution input: per event its id, the counter's key and the marker's key
    and expiry (DynamoDB TTL, epoch seconds as the string a number attribute takes)."""
    expires_at = str(int((now + timedelta(days=ACTIVITY_MARKER_DAYS)).timestamp()))
    return {
        "events": [
            {
                "event_id": event.event_id,
                "counter": activity_counter_key(event.subject, event.kind),
                "marker": activity_marker_key(event.event_id),
                "expires_at": expires_at,
            }
            for event in batch.events
        ]
    }


def outcomes_of(output: Any) -> dict[str, str]:
    """Event id -> outcome, from the machine's output (`{"events": [{"event_id", "outcome"}, ...]}`)."""
    if not isinstance(output, dict) or not isinstance(output.get("events"), list):
        return {}
    return {
        str(item["event_id"]): str(item.get("outcome", FAILED))
        for item in output["events"]
        if isinstance(item, dict) and "event_id" in item
    }


def settle(message_id: str, batch: Batch, outcomes: dict[str, str]) -> str:
    """The outcome of one record; raises NotCounted unless its event was counted (now or before)."""
    event_id = batch.event_of_message.get(message_id)
    outcome = outcomes.get(event_id, FAILED) if event_id is not None else FAILED
    if outcome not in SETTLED:
        raise NotCounted(f"event {event_id} of message {message_id}: {outcome}")
    return outcome
