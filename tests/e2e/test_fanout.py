"""Choreography through SNS -> filtered SQS -> Lambda consumers (docs/design.md flow 3)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.harness import FANOUT, Harness
from localcloud.storefront import wait_for

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
            20, "both events in the analytics queue",
        )
        assert depths == {"fulfilment": 1, "notification": 1, "analytics": 2}

    records = wait_for(
        lambda: (r := store.order_items(order_id)).keys() >= {"META", "NOTIFICATION"} and r, 60,
        "the order record and its notification",
    )
    assert records["META"]["status"] in ("RECEIVED", "CONFIRMED")
    wait_for(lambda: int(store.analytics("InventoryAdjusted").get("event_count", 0)) == adjusted_before + 1, 60,
             "the InventoryAdjusted counter")
    assert int(store.analytics("OrderPlaced").get("event_count", 0)) == placed_before + 1
    # Only analytics admits InventoryAdjusted: nothing was recorded for it by the other two.
    assert store.order_items(adjusted_id) == {}
    store.wait_until_drained()
    assert [store.depth(store.dlq_url(c)) for c in FANOUT] == dead_before  # nothing failed
