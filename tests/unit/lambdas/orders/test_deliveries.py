"""orders.handlers.deliveries: partner delivery updates (queued by API Gateway) -> DELIVERED, once."""

from __future__ import annotations

import json

import pytest

from contracts.deliveries import CARRIER_ATTRIBUTE, DELIVERY_UPDATED, EVENT_TYPE_ATTRIBUTE
from tests.unit.lambdas.helpers import existing_meta, store_order


def update(order_id: str = "order-1", tracking_id: str = "TRK-0001") -> dict:
    return {
        "order_id": order_id,
        "carrier": "parcel-co",
        "tracking_id": tracking_id,
        "status": "DELIVERED",
        "delivered_at": "2026-12-01T15:00:00Z",
    }


@pytest.fixture
def deliveries(aws, load_handler):
    aws.queues["deliveries"] = aws.sqs.create_queue(QueueName="deliveries")["QueueUrl"]
    return load_handler("orders.handlers.deliveries")


def queued(aws, *bodies: dict) -> dict:
    """The messages as API Gateway's mapping template sends them: the body as posted, plus attributes."""
    for body in bodies:
        aws.sqs.send_message(
            QueueUrl=aws.queues["deliveries"],
            MessageBody=json.dumps(body),
            MessageAttributes={
                EVENT_TYPE_ATTRIBUTE: {"DataType": "String", "StringValue": DELIVERY_UPDATED},
                CARRIER_ATTRIBUTE: {"DataType": "String", "StringValue": body.get("carrier", "")},
            },
        )
    return aws.sqs_event("deliveries")


def test_a_shipped_order_becomes_delivered(aws, deliveries, lambda_context):
    store_order(aws, "order-1", status="COMPLETED")

    assert deliveries.lambda_handler(queued(aws, update()), lambda_context) == {"batchItemFailures": []}
    assert existing_meta(aws, "order-1")["status"] == "DELIVERED"


def test_a_repeated_update_is_applied_once(aws, deliveries, lambda_context):
    store_order(aws, "order-1", status="COMPLETED")
    deliveries.lambda_handler(queued(aws, update()), lambda_context)
    first = existing_meta(aws, "order-1")

    # The carrier retries, and SQS delivers at least once: two more copies, in one batch.
    assert deliveries.lambda_handler(queued(aws, update(), update()), lambda_context) == {"batchItemFailures": []}
    assert existing_meta(aws, "order-1") == first  # same status, same updated_at


def test_an_order_not_shipped_or_unknown_fails_only_its_own_record(aws, deliveries, lambda_context):
    store_order(aws, "order-1", status="COMPLETED")
    store_order(aws, "order-2", status="CONFIRMED")
    event = queued(aws, update("order-2", "TRK-0002"), update("order-1"), update("order-9", "TRK-0009"))
    by_order = {json.loads(r["body"])["order_id"]: r["messageId"] for r in event["Records"]}

    failures = deliveries.lambda_handler(event, lambda_context)["batchItemFailures"]

    assert {f["itemIdentifier"] for f in failures} == {by_order["order-2"], by_order["order-9"]}
    assert existing_meta(aws, "order-1")["status"] == "DELIVERED"
    assert existing_meta(aws, "order-2")["status"] == "CONFIRMED"
