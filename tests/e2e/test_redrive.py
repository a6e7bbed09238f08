"""DLQ redrive (`make redrive`, scripts/redrive.py): a consumer fails its messages into the DLQ while a
dependency is missing; once the dependency is back, a redrive puts them through exactly once.

The "bug": the order finaliser confirms an order once its cancel window closes, and needs the record
the fulfilment consumer writes. With fulfilment offline, every OrderPlaced the finaliser receives is
for an order not recorded yet, so it fails (OrderNotFound) until the redrive policy moves it to the DLQ.
The "fix": fulfilment comes back and records the orders. The redrive then moves the dead messages back
and the finaliser confirms each order once, as its log shows.
"""

from __future__ import annotations

import json
import time

import pytest

from localcloud.storefront import wait_for
from scripts import redrive
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

POISONED = 5
ITEMS = [{"sku": "SKU-REDRIVE", "quantity": 1, "unit_price": 4}]
FINALISER_LOG = "Processing/OrderFinaliserConsumer/LogGroup"
# The deployed queue allows 8 receives with backoff (5 s doubling, about 8 minutes to the DLQ); two
# receives (5 s apart) are enough to show the path. Shortened for this test only, restored below.
TEST_RECEIVES = 2


def _outcomes(cloud: Harness, since: float, order_ids: set[str]) -> dict[str, list[str]]:
    """The finaliser's `cancel window closed` outcomes per order, from its log."""
    found: dict[str, list[str]] = {order_id: [] for order_id in order_ids}
    for event in cloud.log_events(FINALISER_LOG, since):
        try:
            line = json.loads(event["message"])
        except ValueError:
            continue
        if line.get("message") == "cancel window closed" and line.get("order_id") in found:
            found[line["order_id"]].append(line.get("outcome"))
    return found


def test_messages_a_missing_dependency_killed_are_redriven_after_the_fix_and_processed_once(store: Harness, capsys):
    queue, dlq = store.queue_url("order_finaliser"), store.dlq_url("order_finaliser")
    store.sqs.purge_queue(QueueUrl=dlq)  # earlier runs' leftovers would blur the counts
    wait_for(lambda: store.depth(dlq) == 0, 30, "the finaliser DLQ empty")
    policy = store.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["RedrivePolicy"])["Attributes"]
    shortened = {**json.loads(policy["RedrivePolicy"]), "maxReceiveCount": TEST_RECEIVES}
    store.sqs.set_queue_attributes(QueueUrl=queue, Attributes={"RedrivePolicy": json.dumps(shortened)})
    try:
        with store.consumers_offline("fulfilment"):  # the bug: the finaliser's dependency never appears
            order_ids = {store.place_order(ITEMS)[1]["order_id"] for _ in range(POISONED)}
            wait_for(lambda: store.depth(dlq) == POISONED, 120, f"{POISONED} finaliser messages in the DLQ")
            assert all(store.order(o) is None for o in order_ids)
    finally:
        store.sqs.set_queue_attributes(QueueUrl=queue, Attributes={"RedrivePolicy": policy["RedrivePolicy"]})
    # The fix: fulfilment is back and records the orders; nothing confirms them while they sit in the DLQ.
    wait_for(lambda: all(store.order(o) for o in order_ids), 60, "the orders recorded by fulfilment")
    time.sleep(3)
    assert {store.order_record(o)["status"] for o in order_ids} == {"RECEIVED"}
    assert store.depth(dlq) == POISONED

    # The entry point first, as an operator would: a dry run counts and moves nothing.
    dlq_name = redrive.name_of(dlq)
    assert redrive.main([dlq_name, "--local", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert f"dry run: {POISONED} messages would be moved" in dry and "receive/send/delete loop" in dry
    assert store.depth(dlq) == POISONED

    since = time.time()
    started = time.monotonic()
    assert redrive.main([dlq_name, "--local", "--rate", "2"]) == 0
    took = time.monotonic() - started
    printed = capsys.readouterr().out
    assert f"found {POISONED}, moved {POISONED}, failed 0" in printed, printed
    assert took >= (POISONED - 2) / 2  # 2 messages per second: the rate limit held

    wait_for(
        lambda: {store.order_record(o)["status"] for o in order_ids} == {"CONFIRMED"},
        60,
        "every redriven order confirmed",
    )
    wait_for(lambda: store.depth(queue) == 0, 30, "the cancel-window queue empty")
    assert store.depth(dlq) == 0
    outcomes = wait_for(
        lambda: (o := _outcomes(store, since - 1, order_ids)) and all(o.values()) and o,
        30,
        "the finaliser's log lines",
    )
    # Exactly once: one `confirmed` per order, and no second run (it would log `left CONFIRMED`).
    assert outcomes == {order_id: ["confirmed"] for order_id in order_ids}
