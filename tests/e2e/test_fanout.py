"""Choreography through SNS -> filtered SQS -> Lambda consumers (docs/design.md flow 3)."""

from __future__ import annotations

import json
import uuid

import pytest

from localcloud.storefront import wait_for
from tests.e2e.harness import FANOUT, Harness

pytestmark = pytest.mark.e2e

ITEMS = [{"sku": "SKU-FANOUT", "quantity": 2, "unit_price": 12.5}]


def test_order_placed_reaches_all_three_consumers_and_inventory_adjusted_only_analytics(store: Harness):
    placed_before = int(store.analytics("OrderPlaced").get("event_count", 0))
    adjusted_before = int(store.analytics("InventoryAdjusted").get("event_count", 0))
    dead_before = [store.depth(store.dlq_url(c)) for c in FANOUT]
    with store.consumers_offline(*FANOUT):
        status, body = store.place_order(ITEMS)
        assert status == 202, body
        order_id = body["order_id"]
        # An inventory producer's event, published on the same topic with the attributes filters match.
        adjusted_id = f"adjust-{uuid.uuid4()}"
        store.sns.publish(
            TopicArn=store.topic_arn(),
            Message=json.dumps({"event_type": "InventoryAdjusted", "order_id": adjusted_id}),
            MessageAttributes={
                "event_type": {"DataType": "String", "StringValue": "InventoryAdjusted"},
                "channel": {"DataType": "String", "StringValue": "api"},
                "correlation_id": {"DataType": "String", "StringValue": adjusted_id},
            },
        )
        depths = wait_for(
            lambda: (d := {c: store.depth(store.queue_url(c)) for c in FANOUT})["analytics"] == 2 and d,
            20,
            "both events in the analytics queue",
        )
        assert depths == {"fulfilment": 1, "notification": 1, "analytics": 2}

    records = wait_for(
        lambda: (r := store.order_items(order_id)).keys() >= {"META", "NOTIFICATION"} and r,
        60,
        "the order record and its notification",
    )
    assert records["META"]["status"] in ("RECEIVED", "CONFIRMED")
    wait_for(
        lambda: int(store.analytics("InventoryAdjusted").get("event_count", 0)) == adjusted_before + 1,
        60,
        "the InventoryAdjusted counter",
    )
    assert int(store.analytics("OrderPlaced").get("event_count", 0)) == placed_before + 1
    # Only analytics admits InventoryAdjusted: nothing was recorded for it by the other two.
    assert store.order_items(adjusted_id) == {}
    store.wait_until_drained()
    assert [store.depth(store.dlq_url(c)) for c in FANOUT] == dead_before  # nothing failed


def test_one_consumer_failing_does_not_stop_the_others(store: Harness):
    """The notification consumer breaks (its table is gone): fulfilment and analytics process their
    copies of the same event anyway; the notification copy waits in its own queue, and once the
    consumer is repaired it is processed, before maxReceiveCount sends it to the DLQ."""
    queue, dlq = store.queue_url("notification"), store.dlq_url("notification")
    function = store.lambda_.get_event_source_mapping(UUID=store.esm_uuid("notification"))["FunctionArn"]
    variables = store.lambda_.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    visibility = store.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])
    placed_before = int(store.analytics("OrderPlaced").get("event_count", 0))
    dead_before = store.depth(dlq)
    # Redelivery after 10 s instead of the deployed 180 s (6x the consumer timeout), for this test only.
    store.sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "10"})
    store.lambda_.update_function_configuration(
        FunctionName=function, Environment={"Variables": {**variables, "ORDERS_TABLE": "lc-local-no-such-table"}}
    )
    try:
        status, body = store.place_order(ITEMS)
        assert status == 202, body
        order_id = body["order_id"]
        wait_for(
            lambda: (
                "META" in store.order_items(order_id)
                and int(store.analytics("OrderPlaced").get("event_count", 0)) == placed_before + 1
            ),
            30,
            "fulfilment and analytics to process the order",
        )
        attempted = wait_for(
            lambda: (
                int(
                    store.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"][
                        "ApproximateNumberOfMessagesNotVisible"
                    ]
                )
                == 1
            ),
            10,
            "the notification consumer to take it",
        )
        assert attempted
        assert "NOTIFICATION" not in store.order_items(order_id)  # it failed ...
        assert store.depth(queue) == 1  # ... and its copy waits in its own queue, not lost
    finally:
        store.lambda_.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    try:
        notified = wait_for(lambda: "NOTIFICATION" in store.order_items(order_id), 60, "the repaired consumer")
        assert notified
    finally:
        store.sqs.set_queue_attributes(QueueUrl=queue, Attributes=visibility["Attributes"])
    store.wait_until_drained()
    assert store.depth(dlq) == dead_before
