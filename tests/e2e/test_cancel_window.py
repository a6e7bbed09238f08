"""No dual write (docs/design.md): placing an order is one publish, and the cancel window starts from it.

The delay queue is a subscriber of the order-events topic (filter OrderPlaced); neither producer has a
way to send to it. Every order placed through either front door is CONFIRMED once the grace period is
over, and the queue's subscription is the only path by which the finaliser heard of it.
"""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from localcloud.identity import DEMO_USERS
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

ORDERS_PER_CHANNEL = 5
# Grace period (2 s locally) + the finaliser's 5 s retry while an order is not recorded yet, with room.
CONFIRMED_WITHIN_SECONDS = 90
ITEMS = [{"sku": "SKU-WINDOW", "quantity": 1, "unit_price": 4.2}]


def test_the_delay_queue_is_a_subscriber_and_no_producer_can_send_to_it(store: Harness):
    queue_arn = store.sqs.get_queue_attributes(
        QueueUrl=store.queue_url("order_finaliser"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    subscriptions = store.sns.list_subscriptions_by_topic(TopicArn=store.topic_arn())["Subscriptions"]
    (window,) = [s for s in subscriptions if s["Endpoint"] == queue_arn]
    attributes = store.sns.get_subscription_attributes(SubscriptionArn=window["SubscriptionArn"])["Attributes"]
    assert json.loads(attributes["FilterPolicy"]) == {"event_type": ["OrderPlaced"]}
    assert attributes["RawMessageDelivery"] == "true"
    # The producers know no queue: the orders API's environment and the backend's discovery parameters.
    environment = store.lambda_.get_function_configuration(
        FunctionName=store.deployed.physical_id("Api/OrdersApi/Function")
    )["Environment"]["Variables"]
    assert not [value for value in environment.values() if "sqs" in value.lower() or "/queue/" in value.lower()]
    # No discovery parameter names a queue of the order events (the web tier's activity queue and the
    # picture workers' queue are other flows' and may be discovered).
    discovery = store.settings.client("ssm").get_parameters_by_path(Path="/lc/local/discovery")["Parameters"]
    order_queues = [
        store.queue_url(name)
        for name in ("order_finaliser", "fulfilment", "notification", "analytics", "inventory_ledger")
    ]
    assert order_queues and all(order_queues)
    assert not [
        p["Name"]
        for p in discovery
        if any(url in p["Value"] or url.rsplit("/", 1)[-1] in p["Value"] for url in order_queues)
    ]


def test_every_order_placed_through_either_door_is_confirmed_after_the_grace_period(store: Harness):
    placed: list[str] = []
    for _ in range(ORDERS_PER_CHANNEL):
        status, body = store.place_order(ITEMS, customer_id="e2e-window")
        assert status == 202, body
        placed.append(body["order_id"])
    browser = store.browser()
    assert browser.post("/login", {"username": "alice", "password": DEMO_USERS["alice"]}).status == 200
    for _ in range(ORDERS_PER_CHANNEL):
        assert browser.post("/cart/items", {"sku": "SKU-TEA-001", "quantity": 1}).status == 201
        answer = browser.post("/orders")
        assert answer.status == 202, answer.body
        placed.append(answer.body["order_id"])

    def unconfirmed() -> dict[str, str | None]:
        return {o: s for o in placed if (s := (store.order(o) or {}).get("status")) != "CONFIRMED"}

    deadline = time.monotonic() + CONFIRMED_WITHIN_SECONDS
    while (pending := unconfirmed()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not pending, f"not CONFIRMED after {CONFIRMED_WITHIN_SECONDS} s: {pending}"
    # Not before the grace period: the delay is the queue's, applied to what SNS delivers.
    grace = store.declared("Messaging/OrderCancelWindowQueue/Queue")["Properties"]["DelaySeconds"]
    for order_id in placed:
        record = store.order_record(order_id)
        waited = datetime.fromisoformat(record["updated_at"]) - datetime.fromisoformat(record["placed_at"])
        assert waited.total_seconds() >= grace, (order_id, record["placed_at"], record["updated_at"])
