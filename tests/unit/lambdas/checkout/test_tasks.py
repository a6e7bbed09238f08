"""checkout.handlers.tasks, the saga's steps: reservations, payments, shipping, status; their errors and
compensations."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from checkout.domain import stock_lines
from contracts import errors
from contracts.orders import OrderItem
from tests.unit.lambdas.helpers import store_order

ITEMS = [{"sku": "SKU-1", "quantity": 3, "unit_price": 10.0}, {"sku": "SKU-2", "quantity": 1, "unit_price": 2.5}]


@pytest.fixture
def checkout(load_handler):
    return load_handler("checkout.handlers.tasks")


@pytest.fixture
def stock(aws):
    inventory = aws.table("inventory")
    inventory.put_item(Item={"sku": "SKU-1", "on_hand": 10, "reserved": 0})
    inventory.put_item(Item={"sku": "SKU-2", "on_hand": 1, "reserved": 0})

    def read(sku: str) -> tuple[int, int]:
        item = inventory.get_item(Key={"sku": sku}, ConsistentRead=True)["Item"]
        return int(item["on_hand"]), int(item["reserved"])

    return read


def state(order_id: str = "order-1", payment_token: str = "tok_visa", **extra) -> dict:
    """The execution input as the orders API builds it (plus what earlier steps added)."""
    return {
        "order_id": order_id,
        "customer_id": "customer-1",
        "items": ITEMS,
        "total": 32.5,
        "currency": "EUR",
        "stock": stock_lines(OrderItem.model_validate(item) for item in ITEMS),
        "channel": "api",
        "placed_at": "2025-01-01T10:00:00Z",
        "payment_token": payment_token,
        "correlation_id": "corr-1",
        **extra,
    }


def ledger_messages(aws) -> list[dict]:
    return aws.receive("inventory")


# --- reserve / release -----------------------------------------------------------------------------


def test_reserve_holds_stock_once_and_sends_an_ordered_ledger_event(aws, checkout, stock, lambda_context):
    step = {"order_id": "order-1", "sku": "SKU-1", "quantity": 3}

    first = checkout.reserve_item(step, lambda_context)
    replay = checkout.reserve_item(step, lambda_context)  # Step Functions retried the task

    assert first["replayed"] is False and replay["replayed"] is True
    assert stock("SKU-1") == (7, 3)
    [message] = ledger_messages(aws)  # the replay's message was deduplicated by SQS
    assert message["Attributes"]["MessageGroupId"] == "SKU-1"
    assert message["Attributes"]["MessageDeduplicationId"] == "order-1:reserve:SKU-1"
    assert json.loads(message["Body"])["event_type"] == "ItemReserved"


def test_reserve_without_enough_stock_raises_out_of_stock_and_changes_nothing(aws, checkout, stock, lambda_context):
    with pytest.raises(errors.OutOfStock):
        checkout.reserve_item({"order_id": "order-1", "sku": "SKU-2", "quantity": 2}, lambda_context)
    with pytest.raises(errors.OutOfStock):
        checkout.reserve_item({"order_id": "order-1", "sku": "UNKNOWN", "quantity": 1}, lambda_context)

    assert stock("SKU-2") == (1, 0)
    assert ledger_messages(aws) == []
    assert aws.items("orders") == []  # no reservation marker left behind


def test_release_after_reserve_restores_inventory_once(aws, checkout, stock, lambda_context):
    step = {"order_id": "order-1", "sku": "SKU-1", "quantity": 3}
    checkout.reserve_item(step, lambda_context)

    assert checkout.release_item(step, lambda_context)["released"] is True
    assert checkout.release_item(step, lambda_context)["released"] is False  # idempotent

    assert stock("SKU-1") == (10, 0)
    assert [json.loads(m["Body"])["event_type"] for m in ledger_messages(aws)] == ["ItemReserved", "ItemReleased"]


def test_compensation_releases_only_what_was_reserved(aws, checkout, stock, lambda_context):
    """The Map reserves SKU-1, SKU-2 fails OutOfStock; compensation releases every item of the order."""
    checkout.reserve_item({"order_id": "order-1", "sku": "SKU-1", "quantity": 3}, lambda_context)
    with pytest.raises(errors.OutOfStock):
        checkout.reserve_item({"order_id": "order-1", "sku": "SKU-2", "quantity": 5}, lambda_context)

    for item in ITEMS[:1] + [{"sku": "SKU-2", "quantity": 5}]:
        checkout.release_item({"order_id": "order-1", **item}, lambda_context)

    assert stock("SKU-1") == (10, 0) and stock("SKU-2") == (1, 0)


def test_another_order_cannot_release_my_reservation(aws, checkout, stock, lambda_context):
    checkout.reserve_item({"order_id": "order-1", "sku": "SKU-1", "quantity": 3}, lambda_context)

    assert (
        checkout.release_item({"order_id": "order-2", "sku": "SKU-1", "quantity": 3}, lambda_context)["released"]
        is False
    )
    assert stock("SKU-1") == (7, 3)


@pytest.mark.parametrize(
    "step",
    [
        {"order_id": "order-1", "sku": "SKU-1", "quantity": 0},
        {"order_id": "order-1", "sku": "SKU-1", "quantity": True},
        {"order_id": "order-1", "sku": "SKU-1", "quantity": "3"},
        {"order_id": "order-1", "sku": "SKU-1", "quantity": 3.5},
        {"order_id": "order-1", "sku": "sku-1", "quantity": 3},
        {"order_id": "order 1", "sku": "SKU-1", "quantity": 3},
    ],
)
def test_malformed_step_payload_fails_the_step(aws, checkout, stock, lambda_context, step):
    with pytest.raises(ValidationError):
        checkout.reserve_item(step, lambda_context)
    assert stock("SKU-1") == (10, 0) and aws.items("orders") == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("total", "32.50"), ("total", True), ("total", -1), ("customer_id", "jane doe"), ("channel", "fax")],
)
def test_a_malformed_checkout_state_fails_the_step_before_charging(aws, checkout, lambda_context, field, value):
    with pytest.raises(ValidationError):
        checkout.charge_payment(state(**{field: value}), lambda_context)
    assert aws.items("orders") == [] and ledger_messages(aws) == []


# --- payments -------------------------------------------------------------------------------------------


def test_charge_succeeds_once_and_records_a_payment_event(aws, checkout, lambda_context):
    payment = checkout.charge_payment(state(), lambda_context)
    replay = checkout.charge_payment(state(), lambda_context)

    assert payment == replay
    assert payment["status"] == "CHARGED" and payment["amount"] == 32.5 and payment["currency"] == "EUR"
    [message] = ledger_messages(aws)
    assert message["Attributes"]["MessageGroupId"] == "order-1"  # payment events are ordered per order
    assert json.loads(message["Body"])["event_type"] == "PaymentCharged"


def test_declined_card_raises_payment_declined(aws, checkout, lambda_context):
    with pytest.raises(errors.PaymentDeclined):
        checkout.charge_payment(state(payment_token="card-0002"), lambda_context)
    assert ledger_messages(aws) == []


def test_flaky_gateway_fails_n_times_then_charges(aws, checkout, lambda_context):
    for _ in range(2):
        with pytest.raises(errors.PaymentGatewayUnavailable):
            checkout.charge_payment(state(payment_token="flaky-2"), lambda_context)

    payment = checkout.charge_payment(state(payment_token="flaky-2"), lambda_context)

    assert payment["status"] == "CHARGED"
    attempts = aws.table("orders").get_item(Key={"pk": "ORDER#order-1", "sk": "PAYMENT"})["Item"]["attempts"]
    assert attempts == 3  # kept in DynamoDB: any Lambda instance sees the same count


def test_refund_returns_the_recorded_charge_once(aws, checkout, lambda_context):
    payment = checkout.charge_payment(state(), lambda_context)
    compensation_input = state(checkout={"payment": payment, "shipping_quote": {"amount": 0}}, error={"Error": "X"})

    first = checkout.refund_payment(compensation_input, lambda_context)
    second = checkout.refund_payment(compensation_input, lambda_context)

    assert first["status"] == second["status"] == "REFUNDED"
    assert first["replayed"] is False and second["replayed"] is True
    events = [json.loads(m["Body"])["event_type"] for m in ledger_messages(aws)]
    assert events == ["PaymentCharged", "PaymentRefunded"]


def test_refund_of_an_order_never_charged_does_nothing(aws, checkout, lambda_context):
    fake_payment = {"charge_id": "ch_1", "amount": 1, "currency": "EUR", "status": "CHARGED"}
    result = checkout.refund_payment(state(checkout={"payment": fake_payment}), lambda_context)

    assert result["status"] == "NOT_CHARGED"
    assert ledger_messages(aws) == []


def test_refund_after_a_failed_parallel_refunds_the_recorded_charge(aws, checkout, lambda_context):
    """The quote branch failed after the charge: the state has no `checkout`, DynamoDB has the charge."""
    payment = checkout.charge_payment(state(), lambda_context)
    result = checkout.refund_payment(state(error={"Error": "States.TaskFailed"}), lambda_context)

    assert result["status"] == "REFUNDED" and result["charge_id"] == payment["charge_id"]
    assert [json.loads(m["Body"])["event_type"] for m in ledger_messages(aws)] == ["PaymentCharged", "PaymentRefunded"]


def test_refund_without_payment_in_state_or_table_does_nothing(aws, checkout, lambda_context):
    result = checkout.refund_payment(state(error={"Error": "States.TaskFailed"}), lambda_context)

    assert result == {"charge_id": None, "status": "NOT_CHARGED"}
    assert ledger_messages(aws) == []


# --- shipping and status --------------------------------------------------------------------------------


def test_quote_shipping(aws, checkout, lambda_context):
    assert checkout.quote_shipping(state(), lambda_context) == {
        "amount": 6.9,
        "currency": "EUR",
        "carrier": "standard",
        "estimated_days": 3,
    }
    assert checkout.quote_shipping(state(total=150), lambda_context)["amount"] == 0.0


def reserve_all(checkout, lambda_context, order_id: str = "order-1") -> None:
    """What the ReserveItems Map does before the order can ship."""
    for item in ITEMS:
        checkout.reserve_item({"order_id": order_id, "sku": item["sku"], "quantity": item["quantity"]}, lambda_context)


def drain_ledger(aws) -> None:
    """Consume (receive and delete) the ledger messages so far: a FIFO group stays blocked while one
    of its messages is in flight."""
    for message in ledger_messages(aws):
        aws.sqs.delete_message(QueueUrl=aws.queues["inventory"], ReceiptHandle=message["ReceiptHandle"])


def test_ship_order_publishes_order_shipped(aws, checkout, stock, lambda_context):
    reserve_all(checkout, lambda_context)

    shipment = checkout.ship_order(state(), lambda_context)

    assert shipment["tracking_number"].startswith("TRK-")
    [message] = aws.receive("probe")
    body = json.loads(message["Body"])
    assert body["event_type"] == "OrderShipped" and body["order_id"] == "order-1" and body["total"] == 32.5
    assert message["MessageAttributes"]["correlation_id"]["StringValue"] == "corr-1"
    assert aws.receive("fulfilment") == []  # filtered out: fulfilment does not subscribe to OrderShipped
    assert len(aws.receive("notification")) == 1


def test_ship_order_commits_the_reserved_units_they_leave_the_warehouse(aws, checkout, stock, lambda_context):
    reserve_all(checkout, lambda_context)
    assert stock("SKU-1") == (7, 3) and stock("SKU-2") == (0, 1)

    shipment = checkout.ship_order(state(), lambda_context)

    assert shipment["items_committed"] == 2 and shipment["items_replayed"] == 0
    assert stock("SKU-1") == (7, 0) and stock("SKU-2") == (0, 0)  # on_hand = stock - q, nothing held any more
    for item in ITEMS:
        marker = aws.table("orders").get_item(Key={"pk": "ORDER#order-1", "sk": f"RESERVATION#{item['sku']}"})["Item"]
        assert marker["quantity"] == item["quantity"] and marker["shipped_at"]


def test_ship_order_replayed_commits_once(aws, checkout, stock, lambda_context):
    """Step Functions retried ShipOrder (or a redriven execution ran it again): stock moves once."""
    reserve_all(checkout, lambda_context)

    checkout.ship_order(state(), lambda_context)
    replay = checkout.ship_order(state(), lambda_context)

    assert replay["items_committed"] == 0 and replay["items_replayed"] == 2
    assert stock("SKU-1") == (7, 0) and stock("SKU-2") == (0, 0)


def test_ship_order_sends_one_ordered_item_shipped_event_per_item(aws, checkout, stock, lambda_context):
    reserve_all(checkout, lambda_context)
    drain_ledger(aws)  # the ItemReserved events

    checkout.ship_order(state(), lambda_context)
    checkout.ship_order(state(), lambda_context)  # the replay's messages are deduplicated by SQS

    messages = ledger_messages(aws)
    assert [json.loads(m["Body"])["event_type"] for m in messages] == ["ItemShipped", "ItemShipped"]
    by_sku = {m["Attributes"]["MessageGroupId"]: m for m in messages}  # ordered per SKU, after its reservation
    assert set(by_sku) == {"SKU-1", "SKU-2"}
    for item in ITEMS:
        message = by_sku[item["sku"]]
        assert message["Attributes"]["MessageDeduplicationId"] == f"order-1:ship:{item['sku']}"
        body = json.loads(message["Body"])
        assert body["quantity"] == item["quantity"] and body["order_id"] == "order-1"


def test_release_after_ship_changes_nothing(aws, checkout, stock, lambda_context):
    """A compensation that runs after the commit (it must not) cannot put shipped units back."""
    reserve_all(checkout, lambda_context)
    checkout.ship_order(state(), lambda_context)
    drain_ledger(aws)

    for item in ITEMS:
        step = {"order_id": "order-1", "sku": item["sku"], "quantity": item["quantity"]}
        assert checkout.release_item(step, lambda_context)["released"] is False

    assert stock("SKU-1") == (7, 0) and stock("SKU-2") == (0, 0)
    assert ledger_messages(aws) == []  # no ItemReleased
    markers = [i for i in aws.items("orders") if i["sk"].startswith("RESERVATION#")]
    assert len(markers) == 2 and all("shipped_at" in m for m in markers)  # kept, still marked shipped


def test_ship_order_without_a_reservation_fails_and_publishes_nothing(aws, checkout, stock, lambda_context):
    checkout.reserve_item({"order_id": "order-1", "sku": "SKU-1", "quantity": 3}, lambda_context)
    checkout.release_item({"order_id": "order-1", "sku": "SKU-1", "quantity": 3}, lambda_context)

    with pytest.raises(errors.ReservationNotHeld):
        checkout.ship_order(state(), lambda_context)

    assert stock("SKU-1") == (10, 0)
    assert aws.receive("probe") == []  # no OrderShipped


def test_ship_order_of_another_quantity_fails(aws, checkout, stock, lambda_context):
    checkout.reserve_item({"order_id": "order-1", "sku": "SKU-1", "quantity": 2}, lambda_context)

    with pytest.raises(errors.ReservationNotHeld):
        checkout.ship_order(state(), lambda_context)  # the state says 3 x SKU-1

    assert stock("SKU-1") == (8, 2)


def test_a_transaction_cancelled_by_a_conflict_is_tried_again(aws, checkout, stock, lambda_context, monkeypatch):
    """Another transaction held the SKU (TransactionConflict): nothing was written, so try again."""
    from botocore.exceptions import ClientError

    from inventory import repository
    from plumbing import aws as plumbing_aws

    reserve_all(checkout, lambda_context)
    client = plumbing_aws.table("inventory").meta.client
    real = client.transact_write_items
    conflicts = iter([True])
    calls = []

    def conflicting_once(**kwargs):
        calls.append(kwargs)
        if next(conflicts, False):
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        return real(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", conflicting_once)
    monkeypatch.setattr(repository, "TRANSACTION_CONFLICT_PAUSE_SECONDS", 0)

    shipment = checkout.ship_order(state(), lambda_context)

    assert shipment["items_committed"] == 2 and len(calls) == 3  # SKU-1 twice, SKU-2 once
    assert stock("SKU-1") == (7, 0) and stock("SKU-2") == (0, 0)


def _store_order(aws, status: str) -> None:
    store_order(
        aws,
        "order-1",
        status,
        customer_id="c",
        channel="api",
        items=[OrderItem(sku="SKU-1", quantity=1, unit_price=Decimal(1))],
    )


def _status(aws) -> str:
    return aws.table("orders").get_item(Key={"pk": "ORDER#order-1", "sk": "META"})["Item"]["status"]


def test_mark_order_follows_the_lifecycle(aws, checkout, lambda_context):
    _store_order(aws, "CONFIRMED")

    assert checkout.mark_order({"order_id": "order-1", "status": "COMPLETED"}, lambda_context)["changed"] is True
    assert checkout.mark_order({"order_id": "order-1", "status": "COMPLETED"}, lambda_context)["changed"] is False
    with pytest.raises(errors.InvalidStatusTransition):
        checkout.mark_order({"order_id": "order-1", "status": "CANCELLED", "reason": "PaymentDeclined"}, lambda_context)
    assert _status(aws) == "COMPLETED"


def test_mark_cancelled_keeps_the_reason(aws, checkout, lambda_context):
    _store_order(aws, "RECEIVED")

    checkout.mark_order({"order_id": "order-1", "status": "CANCELLED", "reason": "PaymentDeclined"}, lambda_context)

    item = aws.table("orders").get_item(Key={"pk": "ORDER#order-1", "sk": "META"})["Item"]
    assert item["status"] == "CANCELLED" and item["cancel_reason"] == "PaymentDeclined"


def test_mark_order_of_a_missing_order_fails(aws, checkout, lambda_context):
    with pytest.raises(errors.OrderNotFound):
        checkout.mark_order({"order_id": "missing", "status": "COMPLETED"}, lambda_context)


def test_lines_of_one_sku_are_reserved_and_shipped_as_one(aws, checkout, stock, lambda_context):
    """A SKU on two lines (two prices, say) is one stock line: the checkout holds and ships their sum."""
    lines = [
        OrderItem(sku="SKU-1", quantity=2, unit_price=Decimal("10.00")),
        OrderItem(sku="SKU-2", quantity=1, unit_price=Decimal("5.00")),
        OrderItem(sku="SKU-1", quantity=3, unit_price=Decimal("9.00")),
    ]
    assert stock_lines(lines) == [{"sku": "SKU-1", "quantity": 5}, {"sku": "SKU-2", "quantity": 1}]
    for line in stock_lines(lines):
        checkout.reserve_item({"order_id": "order-9", **line}, lambda_context)
    assert stock("SKU-1") == (5, 5) and stock("SKU-2") == (0, 1)

    shipped = checkout.ship_order(
        state("order-9", items=[line.model_dump(mode="json") for line in lines], stock=stock_lines(lines), total=52.0),
        lambda_context,
    )

    assert shipped["items_committed"] == 2
    assert stock("SKU-1") == (5, 0) and stock("SKU-2") == (0, 0)
