"""Storefront activity on the local cloud (docs/design.md flow 7): shoppers' views, searches and cart
adds go through the web ALB to the activity queue; one synchronous Express execution per SQS batch
counts them per product. Measured: the counters equal what was sent, events per second end to end, a
poison message in the DLQ while the rest of its batch counts, and a redelivered event counted once.
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from localcloud.identity import DEMO_USERS
from localcloud.storefront import wait_for
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

SKUS = ("SKU-TEA-001", "SKU-MUG-002", "SKU-POT-003", "SKU-KET-004")
SHOPPERS = 4
VIEWS_PER_SKU = 30
CART_ADDS_PER_SKU = 5
SEARCHES = 40


def counter(cloud: Harness, subject: str, kind: str) -> int:
    item = (
        cloud.table("Orders").get_item(Key={"pk": f"ACTIVITY#{subject}", "sk": kind}, ConsistentRead=True).get("Item")
    )
    return int(item["event_count"]) if item else 0


def counters(cloud: Harness, expected: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    return {key: counter(cloud, *key) for key in expected}


def logged_in(cloud: Harness, user: str = "bob", password: str = DEMO_USERS["bob"]):
    browser = cloud.browser()
    assert browser.post("/login", {"username": user, "password": password}).status == 200
    return browser


def empty_cart(browser) -> None:
    for line in browser.get("/cart").body["items"]:
        browser.delete(f"/cart/items/{line['sku']}")


@pytest.fixture
def activity(store: Harness) -> Harness:
    store.wait_until_drained(("activity",))
    return store


def test_every_view_search_and_cart_add_is_counted_once_per_product(activity: Harness):
    run = uuid.uuid4().hex[:12]
    term = f"tea {run}"
    requests: list[tuple[str, str, dict | None]] = []
    requests += [("GET", f"/products/{sku}", None) for sku in SKUS for _ in range(VIEWS_PER_SKU)]
    requests += [("POST", "/cart/items", {"sku": sku, "quantity": 1}) for sku in SKUS for _ in range(CART_ADDS_PER_SKU)]
    requests += [("GET", f"/search?q={term.replace(' ', '+')}", None) for _ in range(SEARCHES)]
    sent = {(f"PRODUCT#{sku}", "ProductViewed"): VIEWS_PER_SKU for sku in SKUS}
    sent |= {(f"PRODUCT#{sku}", "CartItemAdded"): CART_ADDS_PER_SKU for sku in SKUS}
    sent[(f"SEARCH#{term}", "SearchPerformed")] = SEARCHES
    before = counters(activity, sent)
    browsers = [logged_in(activity) for _ in range(SHOPPERS)]
    for browser in browsers:
        empty_cart(browser)

    def shop(index: int) -> list[int]:
        browser = browsers[index]
        return [browser.request(method, path, body).status for method, path, body in requests[index::SHOPPERS]]

    started = time.monotonic()
    with ThreadPoolExecutor(SHOPPERS) as pool:
        statuses = [status for part in pool.map(shop, range(SHOPPERS)) for status in part]
    sent_in = time.monotonic() - started
    assert sorted(set(statuses)) == [200, 201], statuses

    def all_counted() -> bool:
        now = counters(activity, sent)
        return all(now[key] - before[key] >= sent[key] for key in sent)

    wait_for(all_counted, 120, "every activity event counted")
    counted_in = time.monotonic() - started
    # Every record was settled (deleted), none waits for a redelivery as if it had not been counted.
    queue = activity.queue_url("activity")
    wait_for(lambda: activity.depth(queue) == 0, 15, "every activity record deleted")
    after = counters(activity, sent)
    assert {key: after[key] - before[key] for key in sent} == sent  # each exactly once, no more
    events = sum(sent.values())
    print(
        f"\n[activity] {events} events through the web ALB by {SHOPPERS} shoppers: sent in {sent_in:.1f}s "
        f"({events / sent_in:.1f} events/s), all counted after {counted_in:.1f}s ({events / counted_in:.1f} events/s "
        f"end to end)"
    )
    time.sleep(1)
    assert counters(activity, sent) == after  # nothing counted twice later
    for browser in browsers:
        empty_cart(browser)


def test_the_counting_pipeline_keeps_up_with_a_burst_of_many_web_instances(activity: Harness):
    """The consumer side alone: 500 events land in the queue at once (SendMessageBatch, as a fleet of web
    instances would send them), and the Express executions count them all, once each."""
    queue = activity.queue_url("activity")
    run = uuid.uuid4().hex[:12]
    terms = [f"burst {run} {n}" for n in range(5)]
    burst = 500
    bodies = [
        json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "kind": "SearchPerformed",
                "query": terms[n % len(terms)],
                "occurred_at": datetime.now(UTC).isoformat(),
            }
        )
        for n in range(burst)
    ]
    started = time.monotonic()
    for first in range(0, burst, 10):
        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[first : first + 10])]
        assert not activity.sqs.send_message_batch(QueueUrl=queue, Entries=entries).get("Failed")
    sent_in = time.monotonic() - started

    def counted() -> int:
        return sum(counter(activity, f"SEARCH#{term}", "SearchPerformed") for term in terms)

    wait_for(lambda: counted() >= burst, 180, f"{burst} burst events counted")
    counted_in = time.monotonic() - started
    wait_for(lambda: activity.depth(queue) == 0, 15, "every burst record deleted")
    assert [counter(activity, f"SEARCH#{term}", "SearchPerformed") for term in terms] == [burst // len(terms)] * 5
    print(
        f"\n[activity] burst: {burst} events queued in {sent_in:.1f}s, all counted after {counted_in:.1f}s "
        f"({burst / counted_in:.1f} events/s, at most 10 events per Express execution)"
    )


def test_a_poison_event_goes_to_the_dlq_and_a_redelivered_event_counts_once(activity: Harness):
    queue, dlq = activity.queue_url("activity"), activity.dlq_url("activity")
    visibility = activity.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])
    dead_before = activity.depth(dlq)
    run = uuid.uuid4().hex[:12]
    term = f"kettle {run}"
    views = 6
    repeated = {
        "event_id": str(uuid.uuid4()),
        "kind": "SearchPerformed",
        "query": term,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    poison_id = f"poison-{run}"
    browser = logged_in(activity)
    view_key = ("PRODUCT#SKU-KET-004", "ProductViewed")
    views_before = counter(activity, *view_key)
    # One batch: the consumer is offline while 6 views arrive through the web tier, one event arrives
    # twice (SQS delivers at least once) and one body that is no activity event (a buggy producer).
    with activity.consumers_offline("activity"):
        for _ in range(views):
            assert browser.get("/products/SKU-KET-004").status == 200
        for _ in range(2):
            activity.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(repeated))
        activity.sqs.send_message(
            QueueUrl=queue, MessageBody=json.dumps({"event_id": poison_id, "kind": "ProductViewed"})
        )
        wait_for(lambda: activity.depth(queue) == views + 3, 20, f"{views + 3} messages in the activity queue")
        # 180 s per redelivery as deployed (6x the consumer timeout); shortened for this test only.
        activity.sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "2"})
    try:
        wait_for(lambda: counter(activity, *view_key) - views_before == views, 60, "the 6 views counted")
        wait_for(lambda: counter(activity, f"SEARCH#{term}", "SearchPerformed") == 1, 60, "the repeated event counted")
        moved = wait_for(lambda: activity.depth(dlq) == dead_before + 1, 60, "the poison message in the DLQ")
        assert moved
    finally:
        activity.sqs.set_queue_attributes(
            QueueUrl=queue, Attributes={"VisibilityTimeout": visibility["Attributes"]["VisibilityTimeout"]}
        )
    assert activity.depth(queue) == 0
    # Delivered again in a later batch, after it was counted: its marker cancels the transaction.
    activity.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(repeated))
    wait_for(lambda: activity.depth(queue) == 0, 30, "the late repeat consumed")
    assert counter(activity, f"SEARCH#{term}", "SearchPerformed") == 1  # delivered three times, counted once
    assert counter(activity, *view_key) - views_before == views
    messages = activity.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    poison = [m for m in messages if poison_id in m["Body"]]
    assert len(poison) == 1
    activity.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=poison[0]["ReceiptHandle"])
    print(
        f"\n[activity] poison: 1 message in the DLQ after 3 receives; {views} views and 1 event delivered 3 times counted once"
    )
