"""Seed 003, asynchronous operations: POST /orders fires the recommendations side call and answers.
With the side service failing (hanging 1 s, then raising), the order is answered as fast as with a
healthy one, and every failed call lands, with its payload, on the side function's on-failure queue
after Lambda's bounded retries."""

from __future__ import annotations

import json
import statistics
import time
import uuid

import pytest

from localcloud.storefront import wait_for
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

REQUESTS = 50
ON_FAILURE_QUEUE = "Api/Recommendations/AsyncInvokeOnFailure"


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def _orders(store: Harness, customer_id: str, sku: str) -> tuple[list[float], list[str]]:
    """REQUESTS orders, one after another, as one user would; (latencies in s, order ids)."""
    latencies, order_ids = [], []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        status, body = store.place_order(
            [{"sku": sku, "quantity": 1, "unit_price": 3.5}, {"sku": "SKU-TEA-001", "quantity": 1, "unit_price": 8.5}],
            customer_id=customer_id,
        )
        latencies.append(time.perf_counter() - started)
        assert status == 202, body
        order_ids.append(body["order_id"])
    return latencies, order_ids


def _failed_signals(store: Harness, queue_url: str, wanted: set[str], seen: dict[str, dict]) -> bool:
    """Drain the on-failure queue into `seen` (order id -> record); True once every wanted order is in."""
    while True:
        messages = store.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        if not messages:
            return wanted <= set(seen)
        for message in messages:
            record = json.loads(message["Body"])
            order_id = record.get("requestPayload", {}).get("order_id")
            if order_id in wanted:
                seen[order_id] = record
            store.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_a_failing_side_service_neither_slows_the_order_down_nor_loses_a_call(store: Harness):
    from recommendations.service import SIMULATED_OUTAGE_PREFIX, SIMULATED_OUTAGE_SECONDS

    run = uuid.uuid4().hex[:8].upper()
    sku = f"SKU-RECS-{run}"
    queue_url = store.deployed.physical_id(ON_FAILURE_QUEUE)
    store.place_order([{"sku": sku, "quantity": 1, "unit_price": 1}], customer_id="e2e-recs-warmup")

    healthy, healthy_ids = _orders(store, "e2e-recs", sku)
    down, down_ids = _orders(store, f"{SIMULATED_OUTAGE_PREFIX}e2e-{run}", sku)

    numbers = {
        "healthy p50/p95 s": (round(statistics.median(healthy), 3), round(p95(healthy), 3)),
        "failing p50/p95 s": (round(statistics.median(down), 3), round(p95(down), 3)),
    }
    print(f"\nside calls, {REQUESTS} sequential POST /orders each: {numbers}")
    # The user does not wait for the side service: a synchronous call would add >= 1 s to every request.
    assert p95(down) <= max(1.5 * p95(healthy), p95(healthy) + 0.25), numbers
    assert p95(down) < p95(healthy) + SIMULATED_OUTAGE_SECONDS, numbers

    # The healthy calls did their work (asynchronously, a moment later) ...
    table = store.table("Orders")

    def recorded() -> set[str]:
        items = table.query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": f"RECS#{sku}"}, ConsistentRead=True
        )["Items"]
        return {item["sk"].removeprefix("ORDER#") for item in items}

    wait_for(lambda: set(healthy_ids) <= recorded(), 120, "the healthy side calls recorded")
    assert not set(down_ids) & recorded(), "a failing call wrote nothing"

    # ... and every failing one is on the on-failure queue, after its retry, with its payload and error.
    started = time.monotonic()
    seen: dict[str, dict] = {}
    wait_for(lambda: _failed_signals(store, queue_url, set(down_ids), seen), 240, "every failed side call kept")
    print(f"all {len(seen)} failed side calls on the on-failure queue {time.monotonic() - started:.1f} s later")
    assert set(seen) == set(down_ids)
    for record in seen.values():
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["responseContext"]["functionError"]
        assert record["requestPayload"]["skus"] == [sku, "SKU-TEA-001"]
