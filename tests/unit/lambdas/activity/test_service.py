"""activity.service: the pure part of the activity consumer - which records are poison, one entry per
event id, the counting machine's input, and how each record is settled from the machine's outcomes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activity import service
from activity.service import COUNTED, DUPLICATE, FAILED, NotCounted
from contracts.activity import ActivityEvent, normalise_query
from contracts.tables import activity_counter_key, activity_marker_key

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def event(kind: str = "ProductViewed", event_id: str | None = None, **fields) -> dict:
    body = {"event_id": event_id or str(uuid.uuid4()), "kind": kind, "occurred_at": NOW.isoformat(), **fields}
    if kind != "SearchPerformed":
        body.setdefault("sku", "SKU-TEA-001")
    else:
        body.setdefault("query", "green tea")
    return body


def record(body: dict | str, message_id: str | None = None) -> dict:
    """An SQS record of Lambda's event, as the activity queue delivers it."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764590400000",
            "SenderId": "sender",
            "ApproximateFirstReceiveTimestamp": "1764590400000",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:activity",
        "awsRegion": "us-east-1",
    }


def test_poison_records_are_set_apart_and_the_rest_is_read():
    good = [record(event()), record(event("SearchPerformed")), record(event("CartItemAdded"))]
    poison = [
        record("not json", "bad-json"),
        record({"event_id": "12345678-x", "kind": "ProductViewed", "occurred_at": NOW.isoformat()}, "no-sku"),
        record(event("Purchased"), "unknown-kind"),
        record(event(query=None, kind="SearchPerformed") | {"query": "UPPER case!"}, "bad-query"),
    ]
    batch = service.read_batch(poison[:2] + good + poison[2:])
    assert batch.poison == ["bad-json", "no-sku", "unknown-kind", "bad-query"]
    assert [e.kind for e in batch.events] == ["ProductViewed", "SearchPerformed", "CartItemAdded"]
    assert set(batch.event_of_message) == {r["messageId"] for r in good}


def test_an_event_delivered_twice_in_one_batch_is_one_event_of_two_messages():
    repeated = event(event_id="0f0f0f0f-aaaa")
    batch = service.read_batch([record(repeated, "m1"), record(event(), "m2"), record(repeated, "m3")])
    assert [e.event_id for e in batch.events].count("0f0f0f0f-aaaa") == 1
    assert batch.event_of_message["m1"] == batch.event_of_message["m3"] == "0f0f0f0f-aaaa"
    outcomes = {"0f0f0f0f-aaaa": COUNTED, batch.event_of_message["m2"]: COUNTED}
    assert service.settle("m1", batch, outcomes) == service.settle("m3", batch, outcomes) == COUNTED


def test_the_machine_input_names_the_counter_and_the_marker_of_each_event():
    view, search = event(sku="SKU-MUG-002"), event("SearchPerformed", query="cast iron")
    batch = service.read_batch([record(view), record(search)])
    entries = service.machine_input(batch, NOW)["events"]
    assert entries == [
        {
            "event_id": view["event_id"],
            "counter": activity_counter_key("PRODUCT#SKU-MUG-002", "ProductViewed"),
            "marker": activity_marker_key(view["event_id"]),
            "expires_at": str(int((NOW + timedelta(days=14)).timestamp())),
        },
        {
            "event_id": search["event_id"],
            "counter": activity_counter_key("SEARCH#cast iron", "SearchPerformed"),
            "marker": activity_marker_key(search["event_id"]),
            "expires_at": str(int((NOW + timedelta(days=14)).timestamp())),
        },
    ]
    assert entries[0]["counter"] == {"pk": "ACTIVITY#PRODUCT#SKU-MUG-002", "sk": "ProductViewed"}
    assert entries[0]["marker"] == {"pk": f"ACTIVITY#EVENT#{view['event_id']}", "sk": "COUNTED"}


KINDS = st.sampled_from(["ProductViewed", "CartItemAdded", "SearchPerformed"])
SKUS = st.sampled_from(["SKU-TEA-001", "SKU-MUG-002", "SKU-POT-003"])


@given(st.lists(st.tuples(st.integers(0, 20), KINDS, SKUS), max_size=30))
def test_the_tally_counts_each_event_id_once_per_subject_and_kind(draws):
    bodies = [event(kind, event_id=f"event-{n:04d}", sku=sku, query=sku.lower()) for n, kind, sku in draws]
    batch = service.read_batch([record(body) for body in bodies])
    tally = service.tally(batch.events)
    assert sum(tally.values()) == len({body["event_id"] for body in bodies})
    for (subject, kind), count in tally.items():
        firsts = {e.event_id: e for e in reversed(batch.events)}.values()
        assert count == sum(1 for e in firsts if (e.subject, e.kind) == (subject, kind))


def test_records_settle_by_their_events_outcome():
    a, b, c = event(), event(), event()
    batch = service.read_batch([record(a, "ma"), record(b, "mb"), record(c, "mc"), record("{}", "poison")])
    output = {
        "events": [{"event_id": a["event_id"], "outcome": COUNTED}, {"event_id": b["event_id"], "outcome": DUPLICATE}]
    }
    outcomes = service.outcomes_of(output)
    assert service.settle("ma", batch, outcomes) == COUNTED
    assert service.settle("mb", batch, outcomes) == DUPLICATE  # counted by an earlier delivery
    with pytest.raises(NotCounted):
        service.settle("mc", batch, outcomes | {c["event_id"]: FAILED})
    with pytest.raises(NotCounted):
        service.settle("mc", batch, outcomes)  # no outcome: the execution did not get to it
    with pytest.raises(NotCounted):
        service.settle("poison", batch, outcomes)


def test_a_failed_execution_has_no_outcomes_so_every_record_goes_back():
    assert service.outcomes_of({"error": "States.Timeout", "cause": "..."}) == {}
    assert service.outcomes_of(None) == {}


@pytest.mark.parametrize(
    ("text", "term"),
    [("Green  TEA", "green tea"), ("  cast-iron pot!! ", "cast-iron pot"), ("???", None), ("x" * 80, "x" * 64)],
)
def test_a_search_is_counted_under_its_normalised_term(text, term):
    assert normalise_query(text) == term
    if term is not None:
        searched = ActivityEvent(event_id="12345678", kind="SearchPerformed", query=term, occurred_at=NOW)
        assert searched.subject == f"SEARCH#{term}"
