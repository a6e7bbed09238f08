"""Load: >= 500 orders through API Gateway -> Lambda -> SNS -> SQS -> Lambda -> DynamoDB; none lost,
none duplicated. The API's usage plan throttles (50 requests/s, burst 100 on the local stage): a 429
is retried with the same Idempotency-Key, as a well-behaved client does, so it can never double an order;
so is a request whose answer does not come in time (the client cannot know whether it was placed)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import urllib3

from localcloud.storefront import idempotency_key, wait_for
from tests.e2e.harness import FANOUT, Harness

pytestmark = pytest.mark.e2e

ORDERS = 500
CLIENTS = 8
MAX_ATTEMPTS = 8


def _place(store: Harness, n: int) -> tuple[str, int]:
    """One order, retried on throttling/unavailability with the same key. Returns (order id, attempts)."""
    key = idempotency_key()
    body = {
        "customer_id": f"load-{n % 50}",
        "currency": "EUR",
        "items": [{"sku": f"SKU-LOAD-{n % 7}", "quantity": 1 + n % 3, "unit_price": 4.5}],
    }
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            response = store.api.post("/orders", body, headers={"Idempotency-Key": key})
        except urllib3.exceptions.TimeoutError:
            continue  # placed or not, the retry with the same key answers with the one order
        if response.status == 202:
            return response.body["order_id"], attempt
        assert response.status in (429, 503, 409), response.body  # throttled / in progress: retry
        time.sleep(min(2.0, 0.1 * 2**attempt))
    raise AssertionError(f"order {n} not accepted after {MAX_ATTEMPTS} attempts")


def _recorded(store: Harness, order_ids: list[str]) -> int:
    table = store.table("Orders")
    found = 0
    for start in range(0, len(order_ids), 100):
        keys = [{"pk": f"ORDER#{o}", "sk": "META"} for o in order_ids[start : start + 100]]
        request: dict[str, Any] | None = {
            table.name: {"Keys": keys, "ProjectionExpression": "pk", "ConsistentRead": True}
        }
        while request:
            answer = store.dynamodb.batch_get_item(RequestItems=request)
            found += len(answer["Responses"].get(table.name, []))
            request = answer.get("UnprocessedKeys") or None
    return found


def test_500_orders_end_to_end_with_none_lost_and_none_duplicated(store: Harness):
    counted_before = int(store.analytics("OrderPlaced").get("event_count", 0))
    dead_before = [store.depth(store.dlq_url(c)) for c in FANOUT]
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(lambda n: _place(store, n), range(ORDERS)))
    accepted_after = time.monotonic() - started
    order_ids = [order_id for order_id, _ in results]
    retries = sum(attempts - 1 for _, attempts in results)

    assert len(set(order_ids)) == ORDERS  # every request its own order
    recorded = wait_for(lambda: (n := _recorded(store, order_ids)) == ORDERS and n, 600, f"{ORDERS} orders recorded")
    processed_after = time.monotonic() - started
    store.wait_until_drained(timeout=300)
    counted = int(store.analytics("OrderPlaced").get("event_count", 0)) - counted_before
    dead = [store.depth(store.dlq_url(c)) for c in FANOUT]

    print(
        f"\nload: {ORDERS} orders accepted in {accepted_after:.1f}s ({ORDERS / accepted_after:.1f}/s, "
        f"{retries} throttled retries), all recorded after {processed_after:.1f}s "
        f"({ORDERS / processed_after:.1f} orders/s end to end)"
    )
    assert recorded == ORDERS  # none lost
    assert counted == ORDERS  # none counted twice
    assert dead == dead_before  # no message failed for good
