"""The orders context's consumers: fulfilment (records placed orders, applies cancellations) and the order
finaliser (confirms an order when its cancel window closes), fed with messages that went through moto
SNS -> SQS (raw delivery, the contract's filter policies) exactly as in the deployed stack."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest

from contracts.events import INVENTORY_ADJUSTED, ORDER_CANCELLED, ORDER_PLACED, ORDER_SHIPPED
from tests.unit.lambdas.helpers import (
    existing_meta,
    meta,
    order_event,
    poisoned_batch,
    publish,
    send_raw,
    sqs_record,
    store_order,
)

# --- fulfilment -----------------------------------------------------------------------------------


def test_fulfilment_records_a_placed_order(aws, load_handler, lambda_context, capsys, log_records):
    fulfilment = load_handler("orders.handlers.fulfilment")
    publish(aws)

    assert fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context) == {"batchItemFailures": []}

    item = existing_meta(aws, "order-1")
    assert item["status"] == "RECEIVED" and item["total"] == Decimal("20") and item["channel"] == "web"
    assert '"OrdersProcessed":[1.0]' in capsys.readouterr().out
    [applied] = [line for line in log_records() if line["message"] == "event applied"]
    assert applied["correlation_id"] == "corr-order-1"  # the producer's correlation id is carried on


def test_fulfilment_applies_a_duplicate_delivery_once(aws, load_handler, lambda_context):
    fulfilment = load_handler("orders.handlers.fulfilment")
    publish(aws)
    event = aws.sqs_event("fulfilment")
    fulfilment.lambda_handler(event, lambda_context)
    aws.table("orders").update_item(  # a later change that a replay must not overwrite
        Key={"pk": "ORDER#order-1", "sk": "META"},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": "CONFIRMED"},
    )

    assert fulfilment.lambda_handler(event, lambda_context) == {"batchItemFailures": []}  # same delivery again
    publish(aws)  # and the same event published twice (a producer retry)
    assert fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context) == {"batchItemFailures": []}

    assert existing_meta(aws, "order-1")["status"] == "CONFIRMED"
    idempotency_records = aws.items("idempotency")
    assert len(idempotency_records) == 1 and idempotency_records[0]["status"] == "COMPLETED"


def test_fulfilment_reports_only_the_poison_message(aws, load_handler, lambda_context):
    fulfilment = load_handler("orders.handlers.fulfilment")
    event, poison = poisoned_batch(aws, "fulfilment")

    response = fulfilment.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": poison}]}
    assert [meta(aws, f"order-{i}") is not None for i in range(5)] == [True, True, False, True, True]


def test_fulfilment_rejects_an_event_that_breaks_the_schema(aws, load_handler, lambda_context):
    fulfilment = load_handler("orders.handlers.fulfilment")
    body = json.loads(order_event().model_dump_json())
    body["items"][0]["quantity"] = 0
    send_raw(aws, "fulfilment", json.dumps(body))
    event = aws.sqs_event("fulfilment")

    response = fulfilment.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert meta(aws, "order-1") is None


@pytest.mark.parametrize(
    ("field", "value"), [("quantity", True), ("quantity", "2"), ("quantity", 2.5), ("unit_price", "10.00")]
)
def test_fulfilment_rejects_an_event_whose_numbers_are_not_json_numbers(
    aws, load_handler, lambda_context, field, value
):
    """The contract's types hold on the consumer side too: `true`, "2", 2.5 are not quantities, "10.00"
    is not a price."""
    fulfilment = load_handler("orders.handlers.fulfilment")
    body = json.loads(order_event().model_dump_json())
    body["items"][0][field] = value
    send_raw(aws, "fulfilment", json.dumps(body))
    event = aws.sqs_event("fulfilment")

    response = fulfilment.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert meta(aws, "order-1") is None


def test_fulfilment_ignores_fields_it_does_not_know(aws, load_handler, lambda_context):
    """Consumers tolerate a producer adding a field (OrderEvent ignores unknown fields)."""
    fulfilment = load_handler("orders.handlers.fulfilment")
    body = json.loads(order_event().model_dump_json())
    body["loyalty_points"] = 12
    send_raw(aws, "fulfilment", json.dumps(body))

    assert fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context) == {"batchItemFailures": []}
    assert existing_meta(aws, "order-1")["status"] == "RECEIVED"


def test_fulfilment_applies_a_cancellation(aws, load_handler, lambda_context):
    fulfilment = load_handler("orders.handlers.fulfilment")
    publish(aws)
    fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context)
    publish(aws, event_type="OrderCancelled")

    assert fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context) == {"batchItemFailures": []}
    assert existing_meta(aws, "order-1")["status"] == "CANCELLED"


def test_fulfilment_retries_a_cancellation_that_overtook_its_order(aws, load_handler, lambda_context):
    fulfilment = load_handler("orders.handlers.fulfilment")
    publish(aws, event_type="OrderCancelled")
    event = aws.sqs_event("fulfilment")

    response = fulfilment.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert aws.items("idempotency") == []  # a failed attempt leaves no record: the retry runs for real


# --- the cancel window: a subscriber of the topic (OrderPlaced only) --------------------------------------


def test_the_cancel_window_receives_order_placed_through_its_subscription(aws):
    placed = publish(aws)

    [message] = aws.receive("cancel")

    assert json.loads(message["Body"]) == json.loads(placed.model_dump_json())  # raw delivery: the event itself
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {"event_type": "OrderPlaced", "channel": "web", "correlation_id": "corr-order-1"}


@pytest.mark.parametrize("event_type", [ORDER_CANCELLED, ORDER_SHIPPED, INVENTORY_ADJUSTED])
def test_the_cancel_window_receives_no_other_event(aws, event_type):
    publish(aws, event_type=event_type)

    assert [json.loads(m["Body"])["event_type"] for m in aws.receive("probe")] == [event_type]  # it was published
    assert aws.receive("cancel") == []


# --- order finaliser ------------------------------------------------------------------------------------


def cancel_window_event(aws, *order_ids: str) -> dict:
    """The OrderPlaced of each order, as the cancel-window queue delivers it once the window has closed."""
    for order_id in order_ids:
        publish(aws, order_id, ORDER_PLACED)
    return aws.sqs_event("cancel")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("RECEIVED", "CONFIRMED"),
        ("CANCELLED", "CANCELLED"),
        ("COMPLETED", "COMPLETED"),
        ("CONFIRMED", "CONFIRMED"),
    ],
)
def test_finaliser_confirms_only_received_orders(aws, load_handler, lambda_context, status, expected):
    finaliser = load_handler("orders.handlers.finaliser")
    store_order(aws, "order-1", status)

    assert finaliser.lambda_handler(cancel_window_event(aws, "order-1"), lambda_context) == {"batchItemFailures": []}
    assert existing_meta(aws, "order-1")["status"] == expected


def test_finaliser_retries_orders_not_recorded_yet_and_poison(aws, load_handler, lambda_context):
    """The finaliser consumes OrderPlaced events now; a body that is not one (such as the former
    `{"order_id": ...}` cancel-window message) is a failure, reported and retried, then the DLQ's."""
    finaliser = load_handler("orders.handlers.finaliser")
    store_order(aws, "order-1")
    send_raw(aws, "cancel", '{"order": "wrong field"}')
    send_raw(aws, "cancel", '{"order_id": "order-1"}')
    event = cancel_window_event(aws, "order-1", "not-recorded-yet")

    def sent(matches) -> str:
        [message_id] = [r["messageId"] for r in event["Records"] if matches(json.loads(r["body"]))]
        return message_id

    response = finaliser.lambda_handler(event, lambda_context)

    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {
        sent(lambda body: body == {"order": "wrong field"}),
        sent(lambda body: body == {"order_id": "order-1"}),  # the former message shape: not an OrderPlaced
        sent(lambda body: body.get("order_id") == "not-recorded-yet"),
    }
    assert existing_meta(aws, "order-1")["status"] == "CONFIRMED"


def test_finaliser_is_idempotent(aws, load_handler, lambda_context):
    finaliser = load_handler("orders.handlers.finaliser")
    store_order(aws, "order-1")
    event = cancel_window_event(aws, "order-1")
    finaliser.lambda_handler(event, lambda_context)
    updated_at = existing_meta(aws, "order-1")["updated_at"]

    assert finaliser.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert existing_meta(aws, "order-1")["updated_at"] == updated_at  # nothing written the second time


def test_an_order_placed_is_recorded_then_confirmed_when_its_window_closes(aws, load_handler, lambda_context):
    """The choreography of one OrderPlaced: fulfilment records it, the cancel window hands the same event to
    the finaliser, which confirms it."""
    fulfilment = load_handler("orders.handlers.fulfilment")
    finaliser = load_handler("orders.handlers.finaliser")
    publish(aws)

    assert fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context) == {"batchItemFailures": []}
    assert existing_meta(aws, "order-1")["status"] == "RECEIVED"
    assert finaliser.lambda_handler(aws.sqs_event("cancel"), lambda_context) == {"batchItemFailures": []}

    assert existing_meta(aws, "order-1")["status"] == "CONFIRMED"


def test_an_order_not_recorded_yet_comes_back_within_seconds_not_after_the_visibility_timeout(
    aws, load_handler, lambda_context, monkeypatch
):
    """The finaliser may see OrderPlaced before the fulfilment consumer recorded the order (both hear the
    same event): the message is made visible again after a few seconds, and a second look confirms it."""
    finaliser = load_handler("orders.handlers.finaliser")
    monkeypatch.setattr(finaliser, "NOT_RECORDED_RETRY_SECONDS", 1)  # 5 s in the function; 1 s keeps the test short
    aws.sqs.set_queue_attributes(QueueUrl=aws.queues["cancel"], Attributes={"VisibilityTimeout": "180"})
    event = cancel_window_event(aws, "late-order")

    response = finaliser.lambda_handler(event, lambda_context)

    assert len(response["batchItemFailures"]) == 1
    assert aws.receive("cancel") == []  # still invisible right away ...
    time.sleep(1.5)
    [again] = aws.receive("cancel")  # ... and back after the short retry, long before the 180 s timeout
    store_order(aws, "late-order")
    retried = {"Records": [sqs_record(again, event["Records"][0]["eventSourceARN"])]}
    assert finaliser.lambda_handler(retried, lambda_context)["batchItemFailures"] == []
    assert existing_meta(aws, "late-order")["status"] == "CONFIRMED"


@pytest.mark.parametrize(("receives", "delay"), [(1, 5), (2, 10), (3, 20), (6, 160), (7, 180), (8, 180)])
def test_the_retry_backs_off_with_each_receive_up_to_the_ceiling(aws, load_handler, receives, delay):
    """5 s, doubling per receive, at most 180 s: the 8 receives the queue allows span about 8 minutes."""
    from plumbing.batch import OrderEventRecord, retry_later

    finaliser = load_handler("orders.handlers.finaliser")
    event = cancel_window_event(aws, "slow-order")
    raw = {
        **event["Records"][0],
        "attributes": {**event["Records"][0]["attributes"], "ApproximateReceiveCount": str(receives)},
    }
    chosen = retry_later(
        OrderEventRecord.model_validate(raw),
        aws.queues["cancel"],
        first_seconds=finaliser.NOT_RECORDED_RETRY_SECONDS,
        most_seconds=finaliser.NOT_RECORDED_RETRY_MOST_SECONDS,
    )
    assert chosen == delay
