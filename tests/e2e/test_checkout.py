"""The checkout saga on Step Functions (docs/design.md flow 5): compensation, retries, human approval."""

from __future__ import annotations

import time
import uuid

import pytest

from localcloud.storefront import wait_for
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

STOCK = 50
APPROVAL_TIMEOUT_SECONDS = 20  # cdk.json stages.local.approvalTimeoutSeconds


def _sku(name: str) -> str:
    return f"SKU-E2E-{name}-{uuid.uuid4().hex[:6].upper()}"  # the contract: upper-case SKUs


def test_declined_payment_is_compensated_order_cancelled_and_stock_released(store: Harness):
    sku = _sku("DECLINE")
    store.stock(sku, STOCK)
    order_id = store.recorded_order([{"sku": sku, "quantity": 3, "unit_price": 20}])

    execution = store.finished_execution(store.checkout(order_id, card_number="4000000000000002"))

    assert execution["status"] == "FAILED"
    entered = store.states_entered(execution["executionArn"])
    assert "ReleaseItems" in entered and "MarkCancelled" in entered
    assert "RefundPayment" not in entered  # nothing was charged, so nothing is refunded
    assert "ShipOrder" not in entered
    order = store.order_record(order_id)
    assert order["status"] == "CANCELLED"
    assert order.get("cancel_reason") == "PaymentDeclined"
    assert store.inventory(sku) == (STOCK, 0)  # the 3 reserved units are back


def test_transient_payment_failure_is_retried_and_the_checkout_completes(store: Harness):
    sku = _sku("FLAKY")
    store.stock(sku, STOCK)
    order_id = store.recorded_order([{"sku": sku, "quantity": 2, "unit_price": 15}])

    execution = store.finished_execution(store.checkout(order_id, payment_token="flaky-1"))

    assert execution["status"] == "SUCCEEDED"
    failures = [
        e["taskFailedEventDetails"]["error"]
        for e in store.history(execution["executionArn"])
        if e["type"] == "TaskFailed"
    ]
    assert failures == ["PaymentGatewayUnavailable"]  # failed once, the retry charged
    assert store.order_record(order_id)["status"] == "COMPLETED"
    assert store.inventory(sku) == (STOCK - 2, 0)  # shipped: the units left the warehouse, none held any more


def _large_order(store: Harness, sku: str) -> str:
    return store.recorded_order([{"sku": sku, "quantity": 12, "unit_price": 89}])  # 1068 >= 1000: approval


def _pending_approval(store: Harness, order_id: str) -> dict:
    return wait_for(
        lambda: next(
            (a for a in store.back_office.get("/approvals").body["approvals"] if a["order_id"] == order_id), None
        ),
        60,
        f"an approval request for {order_id}",
    )


def test_approval_through_the_task_token_resumes_the_checkout(store: Harness):
    sku = _sku("APPROVE")
    store.stock(sku, STOCK)
    order_id = _large_order(store, sku)
    execution_arn = store.checkout(order_id)

    _pending_approval(store, order_id)
    assert store.sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"  # waiting for a human
    decided = store.back_office.post(f"/approvals/{order_id}", {"decision": "approve", "reason": "known customer"})
    assert decided.status == 200, decided.body

    execution = store.finished_execution(execution_arn)
    assert execution["status"] == "SUCCEEDED"
    entered = store.states_entered(execution_arn)
    assert entered.index("AwaitApproval") < entered.index("ShipOrder")
    assert store.order_record(order_id)["status"] == "COMPLETED"
    assert store.inventory(sku) == (STOCK - 12, 0)


def test_unanswered_approval_times_out_and_the_checkout_is_compensated(store: Harness):
    sku = _sku("TIMEOUT")
    store.stock(sku, STOCK)
    order_id = _large_order(store, sku)
    started = time.monotonic()
    execution_arn = store.checkout(order_id)
    _pending_approval(store, order_id)

    execution = store.finished_execution(execution_arn, timeout=APPROVAL_TIMEOUT_SECONDS + 60)
    waited = time.monotonic() - started

    assert execution["status"] == "FAILED"
    assert waited >= APPROVAL_TIMEOUT_SECONDS
    entered = store.states_entered(execution_arn)
    assert {"RefundPayment", "ReleaseItems", "MarkCancelled"} <= set(entered)  # charged before, so refunded
    assert "ShipOrder" not in entered
    order = store.order_record(order_id)
    assert order["status"] == "CANCELLED"
    assert order.get("cancel_reason") == "States.Timeout"
    assert store.inventory(sku) == (STOCK, 0)
