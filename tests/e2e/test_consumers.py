"""Temporal decoupling: producers keep working while consumers are offline, nothing is lost, and a
message that can never be processed ends in the DLQ without holding back the rest of its batch."""

from __future__ import annotations

import json
import uuid

import pytest

from localcloud.storefront import wait_for
from tests.e2e.harness import FANOUT, Harness

pytestmark = pytest.mark.e2e

BACKLOG = 20
ITEMS = [{"sku": "SKU-BACKLOG", "quantity": 1, "unit_price": 5}]


@pytest.fixture(scope="module")
def backlog(cloud: Harness):
    """Take the three fan-out consumers offline and place BACKLOG orders through the API meanwhile."""
    cloud.resume_all_consumers()
    cloud.wait_until_drained()
    counted_before = int(cloud.analytics("OrderPlaced").get("event_count", 0))
    with cloud.consumers_offline(*FANOUT):
        order_ids = []
        for _ in range(BACKLOG):
            status, body = cloud.place_order(ITEMS)
            assert status == 202, body
            order_ids.append(body["order_id"])
        yield {"order_ids": order_ids, "counted_before": counted_before}


def test_orders_wait_in_the_queues_while_consumers_are_offline(cloud: Harness, backlog):
    depths = wait_for(
        lambda: (
            (d := {c: cloud.depth(cloud.queue_url(c)) for c in FANOUT}) and all(v == BACKLOG for v in d.values()) and d
        ),
        30,
        f"{BACKLOG} messages in each fan-out queue",
    )
    assert depths == {c: BACKLOG for c in FANOUT}
    assert sum(cloud.order(order_id) is not None for order_id in backlog["order_ids"]) == 0


def test_consumers_back_online_process_every_waiting_order_exactly_once(cloud: Harness, backlog):
    for consumer in FANOUT:
        cloud.set_consumer(consumer, True)
    order_ids = backlog["order_ids"]
    recorded = wait_for(
        lambda: (n := sum(cloud.order_items(o).keys() >= {"META", "NOTIFICATION"} for o in order_ids)) == BACKLOG and n,
        120,
        f"{BACKLOG} orders recorded and notified",
    )
    assert recorded == BACKLOG
    cloud.wait_until_drained()
    # Analytics ADDs per event: any duplicate delivery that slipped past idempotency would show here.
    counted = int(cloud.analytics("OrderPlaced").get("event_count", 0)) - backlog["counted_before"]
    assert counted == BACKLOG


def test_poison_message_goes_to_the_dlq_while_the_rest_of_its_batch_is_processed(store: Harness):
    queue, dlq = store.queue_url("fulfilment"), store.dlq_url("fulfilment")
    redrive = json.loads(
        store.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    )
    visibility = store.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])
    dead_before = store.depth(dlq)
    poison_id = f"poison-{uuid.uuid4()}"
    # Same batch: the consumer is offline while 4 good orders are placed and 1 undecodable event
    # arrives. The poison is sent to the fulfilment queue itself (as a buggy producer would): through
    # SNS it would reach all three fan-out queues and keep the other two busy for 3 x 180 s.
    with store.consumers_offline("fulfilment"):
        good = [store.place_order(ITEMS)[1]["order_id"] for _ in range(4)]
        store.sqs.send_message(
            QueueUrl=queue,
            MessageBody=json.dumps({"event_type": "OrderPlaced", "order_id": poison_id, "items": "not a list"}),
            MessageAttributes={"event_type": {"DataType": "String", "StringValue": "OrderPlaced"}},
        )
        wait_for(lambda: store.depth(queue) == 5, 20, "5 messages in the fulfilment queue")
        # The deployed visibility timeout is 6x the consumer timeout (180 s): each redelivery of the
        # poison message would take 3 minutes. Shortened for this test only, restored below.
        store.sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "2"})
    try:
        wait_for(lambda: all(store.order(o) for o in good), 60, "the 4 good orders recorded")
        in_flight = store.depth(queue)
        assert in_flight == 1  # the good ones are done while the poison message is still being retried
        moved = wait_for(lambda: store.depth(dlq) == dead_before + 1, 60, "the poison message in the DLQ")
        assert moved
    finally:
        store.sqs.set_queue_attributes(
            QueueUrl=queue, Attributes={"VisibilityTimeout": visibility["Attributes"]["VisibilityTimeout"]}
        )
    assert store.depth(queue) == 0
    messages = store.sqs.receive_message(
        QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=1
    )["Messages"]
    poison = [m for m in messages if poison_id in m["Body"]]
    assert len(poison) == 1
    assert int(poison[0]["Attributes"]["ApproximateReceiveCount"]) >= int(redrive["maxReceiveCount"]) == 3
    store.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=poison[0]["ReceiptHandle"])
