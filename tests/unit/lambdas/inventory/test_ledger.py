"""inventory.handlers.ledger: FIFO consumer with partial batch failures that never let a message overtake a
failed one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from contracts.events import LedgerEvent
from plumbing.events import send_ledger_event


@pytest.fixture
def ledger(load_handler):
    return load_handler("inventory.handlers.ledger")


def reserve_event(order_id: str, sku: str, quantity: int = 1) -> LedgerEvent:
    return LedgerEvent(
        event_id=f"{order_id}:reserve:{sku}",
        event_type="ItemReserved",
        order_id=order_id,
        sku=sku,
        quantity=quantity,
        occurred_at=datetime.now(UTC),
    )


def send(aws, event: LedgerEvent) -> None:
    send_ledger_event(aws.queues["inventory"], event)


def send_poison(aws, group: str) -> None:
    aws.sqs.send_message(
        QueueUrl=aws.queues["inventory"],
        MessageBody='{"event_type": "ItemReserved"}',
        MessageGroupId=group,
        MessageDeduplicationId=f"poison-{group}",
    )


_sequence = iter(range(18_000_000_000_000_000_000, 19_000_000_000_000_000_000))


def fifo_event(aws) -> dict:
    """Receive the FIFO queue as Lambda would. moto draws SequenceNumbers at random; real SQS numbers
    grow with every message, so they are renumbered in delivery order here."""
    event = aws.sqs_event("inventory")
    for record in event["Records"]:
        record["attributes"]["SequenceNumber"] = str(next(_sequence))
    return event


def delete(aws, event: dict) -> None:
    """What the event source mapping does with successfully processed records."""
    for record in event["Records"]:
        aws.sqs.delete_message(QueueUrl=aws.queues["inventory"], ReceiptHandle=record["receiptHandle"])


def entries(aws, sku: str) -> list[dict]:
    from boto3.dynamodb.conditions import Key

    return aws.table("orders").query(KeyConditionExpression=Key("pk").eq(f"LEDGER#{sku}"))["Items"]


def test_ledger_records_events_in_queue_order(aws, ledger, lambda_context):
    for index in range(3):
        send(aws, reserve_event(f"order-{index}", "SKU-A"))

    assert ledger.lambda_handler(fifo_event(aws), lambda_context) == {"batchItemFailures": []}

    recorded = entries(aws, "SKU-A")
    assert [entry["order_id"] for entry in recorded] == ["order-0", "order-1", "order-2"]  # sorted by sequence
    assert all(len(entry["sk"]) == 40 for entry in recorded)


def test_fifo_failure_holds_back_the_rest_of_its_group_only(aws, ledger, lambda_context):
    send(aws, reserve_event("order-1", "SKU-A"))
    send(aws, reserve_event("order-1", "SKU-B"))
    send_poison(aws, "SKU-A")
    send(aws, reserve_event("order-2", "SKU-A"))  # after the poison in its group: must not overtake it
    send(aws, reserve_event("order-2", "SKU-B"))
    event = fifo_event(aws)
    ids = [record["messageId"] for record in event["Records"]]
    assert [r["attributes"]["MessageGroupId"] for r in event["Records"]] == [
        "SKU-A",
        "SKU-B",
        "SKU-A",
        "SKU-A",
        "SKU-B",
    ]

    response = ledger.lambda_handler(event, lambda_context)

    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [ids[2], ids[3]]
    assert [e["order_id"] for e in entries(aws, "SKU-A")] == ["order-1"]
    assert [e["order_id"] for e in entries(aws, "SKU-B")] == ["order-1", "order-2"]


def test_ledger_applies_a_resent_event_once(aws, ledger, lambda_context):
    """Same event_id sent again after SQS's deduplication window: a new message, one ledger entry."""
    send(aws, reserve_event("order-1", "SKU-A"))
    first = fifo_event(aws)
    assert ledger.lambda_handler(first, lambda_context) == {"batchItemFailures": []}
    assert ledger.lambda_handler(first, lambda_context) == {"batchItemFailures": []}  # redelivery of the same message
    delete(aws, first)  # the group is blocked until then: FIFO
    # The resend: same body, another deduplication id (the 5-minute window has passed).
    aws.sqs.send_message(
        QueueUrl=aws.queues["inventory"],
        MessageBody=first["Records"][0]["body"],
        MessageGroupId="SKU-A",
        MessageDeduplicationId="order-1:reserve:SKU-A:later",
    )
    second = fifo_event(aws)
    assert second["Records"][0]["messageId"] != first["Records"][0]["messageId"]

    assert ledger.lambda_handler(second, lambda_context) == {"batchItemFailures": []}

    assert len(entries(aws, "SKU-A")) == 1


def test_payment_events_go_to_the_order_ledger(aws, ledger, lambda_context):
    send(
        aws,
        LedgerEvent(
            event_id="order-1:charge",
            event_type="PaymentCharged",
            order_id="order-1",
            amount=Decimal("12.5"),  # what the checkout steps pass: the order's Decimal total
            currency="EUR",
            occurred_at=datetime.now(UTC),
        ),
    )

    ledger.lambda_handler(fifo_event(aws), lambda_context)

    [entry] = entries(aws, "ORDER#order-1")
    assert entry["event_type"] == "PaymentCharged" and json.loads(json.dumps(float(entry["amount"]))) == 12.5


def test_item_shipped_follows_the_reservation_in_the_sku_ledger(aws, ledger, lambda_context):
    """ship_order commits the reservation: ItemShipped goes to the SKU's ledger, after ItemReserved."""
    send(aws, reserve_event("order-1", "SKU-A", quantity=3))
    send(
        aws,
        LedgerEvent(
            event_id="order-1:ship:SKU-A",
            event_type="ItemShipped",
            order_id="order-1",
            sku="SKU-A",
            quantity=3,
            occurred_at=datetime.now(UTC),
            correlation_id="corr-1",
        ),
    )

    assert ledger.lambda_handler(fifo_event(aws), lambda_context) == {"batchItemFailures": []}

    recorded = entries(aws, "SKU-A")
    assert [(e["event_type"], e["quantity"]) for e in recorded] == [("ItemReserved", 3), ("ItemShipped", 3)]
    assert recorded[1]["event_id"] == "order-1:ship:SKU-A" and recorded[1]["correlation_id"] == "corr-1"


def test_item_shipped_needs_sku_and_quantity():
    with pytest.raises(ValueError, match="ItemShipped needs sku and quantity"):
        LedgerEvent(
            event_id="order-1:ship", event_type="ItemShipped", order_id="order-1", occurred_at=datetime.now(UTC)
        )
