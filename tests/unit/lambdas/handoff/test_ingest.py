"""handoff.handlers.ingest: list incoming/, ingest each JSON object into DynamoDB, delete it; leave bad ones."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from handoff.service import MAX_OBJECT_BYTES

REPORT = [
    {"store": "berlin-1", "day": "2025-01-01", "revenue": 1234.56, "orders": 17},
    {"store": "paris-2", "day": "2025-01-01", "revenue": 99.5, "orders": 3},
]


@pytest.fixture
def ingest(load_handler):
    return load_handler("handoff.handlers.ingest")


def put(aws, key: str, body) -> None:
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=body if isinstance(body, (str, bytes)) else json.dumps(body))


def keys(aws) -> list[str]:
    return sorted(o["Key"] for o in aws.s3.list_objects_v2(Bucket=aws.bucket).get("Contents", []))


def ingested(aws, key: str) -> dict | None:
    return aws.table("orders").get_item(Key={"pk": f"HANDOFF#{key}", "sk": "INGESTED"}).get("Item")


def ingested_marker(aws, key: str) -> dict:
    """The marker of an object that must have been ingested."""
    item = ingested(aws, key)
    assert item is not None, f"{key} was not ingested"
    return item


def test_ingests_valid_objects_deletes_them_and_leaves_bad_ones(aws, ingest, lambda_context, capsys, log_records):
    put(aws, "incoming/sales-1.json", REPORT)
    put(aws, "incoming/sales-2.json", REPORT[:1])
    put(aws, "incoming/broken.json", "{not json")
    put(aws, "incoming/not-a-list.json", {"store": "x"})
    put(aws, "incoming/not-objects.json", [1, 2])
    put(aws, "outgoing/other.json", REPORT)  # outside the hand-off prefix: never touched

    report = ingest.lambda_handler({"id": "schedule-event-1"}, lambda_context)

    assert report == {"listed": 5, "ingested": 2, "already_ingested": 0, "rejected": 3, "deferred": 0}
    assert keys(aws) == [
        "incoming/broken.json",
        "incoming/not-a-list.json",
        "incoming/not-objects.json",
        "outgoing/other.json",
    ]
    item = ingested_marker(aws, "incoming/sales-1.json")
    assert item["record_count"] == 2 and item["records"][0]["revenue"] == Decimal("1234.56")
    assert ingested(aws, "incoming/broken.json") is None
    assert '"HandoffObjectsRejected":[3.0]' in capsys.readouterr().out
    left = {line["key"]: line["reason"] for line in log_records() if line["message"] == "hand-off object left in place"}
    assert left.keys() == {"incoming/broken.json", "incoming/not-a-list.json", "incoming/not-objects.json"}
    assert left["incoming/not-objects.json"].startswith("records.0:")


def test_a_second_run_ingests_nothing_new(aws, ingest, lambda_context):
    put(aws, "incoming/sales-1.json", REPORT)
    put(aws, "incoming/broken.json", "{not json")
    ingest.lambda_handler({"id": "1"}, lambda_context)

    report = ingest.lambda_handler({"id": "2"}, lambda_context)

    assert report["ingested"] == 0 and report["rejected"] == 1  # the bad object waits for its lifecycle expiry


def test_object_ingested_before_but_not_deleted_is_deleted_without_rewriting(aws, ingest, lambda_context):
    put(aws, "incoming/sales-1.json", REPORT)
    ingest.lambda_handler({"id": "1"}, lambda_context)
    first = ingested_marker(aws, "incoming/sales-1.json")
    put(aws, "incoming/sales-1.json", REPORT)  # as if the delete had failed

    report = ingest.lambda_handler({"id": "2"}, lambda_context)

    assert report["already_ingested"] == 1 and keys(aws) == []
    assert ingested_marker(aws, "incoming/sales-1.json")["ingested_at"] == first["ingested_at"]


def test_oversized_object_is_left_alone(aws, ingest, lambda_context):
    put(aws, "incoming/huge.json", json.dumps([{"blob": "x" * 1000}] * (MAX_OBJECT_BYTES // 1000 + 1)))

    report = ingest.lambda_handler({"id": "1"}, lambda_context)

    assert report["rejected"] == 1 and keys(aws) == ["incoming/huge.json"]


def test_stops_starting_objects_when_the_invocation_is_about_to_time_out(aws, ingest, lambda_context):
    put(aws, "incoming/sales-1.json", REPORT)
    lambda_context.remaining_ms = 1_000

    report = ingest.lambda_handler({"id": "1"}, lambda_context)

    assert report["deferred"] == 1 and report["ingested"] == 0 and keys(aws) == ["incoming/sales-1.json"]
