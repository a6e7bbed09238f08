"""Fan-out consumers (fulfilment, notification, analytics) and the order finaliser, fed with messages
that went through moto SNS -> SQS (raw delivery, filter policies) exactly as in the deployed stack."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from shared.events import publish_order_event
from shared.models import Order, OrderEvent, OrderItem

TODAY = datetime.now(timezone.utc).strftime("%Y-%m-%d")


def order(order_id: str = "order-1", **overrides) -> Order:
    fields = dict(
        order_id=order_id, customer_id="customer-1", channel="web", placed_at=datetime.now(timezone.utc),
        items=[OrderItem(sku="SKU-1", quantity=2, unit_price=Decimal("10.00"))],
    )
    fields.update(overrides)
    return Order(**fields)


def publish(aws, order_id: str = "order-1", event_type: str = "OrderPlaced") -> None:
    publish_order_event(aws.topic_arn, OrderEvent.from_order(order(order_id), event_type, f"corr-{order_id}"))


def send_raw(aws, queue: str, body: str) -> None:
    aws.sqs.send_message(QueueUrl=aws.queues[queue], MessageBody=body)


def meta(aws, order_id: str) -> dict | None:
    return aws.table("orders").get_item(Key={"pk": f"ORDER#{order_id}", "sk": "META"}).get("Item")


def poisoned_batch(aws, queue: str) -> tuple[dict, str]:
    """Five messages, the third one poison (not JSON); returns the Lambda event and the poison's id."""
    for index in range(5):
        if index == 2:
            send_raw(aws, queue, "{this is not json")
        else:
            publish(aws, f"order-{index}")
    event = aws.sqs_event(queue)
    assert len(event["Records"]) == 5
    [poison] = [r["messageId"] for r in event["Records"] if r["body"].startswith("{this")]
    return event, poison


# --- fulfilment -----------------------------------------------------------------------------------


def test_fulfilment_records_a_placed_order(aws, load_handler, lambda_context, capsys, log_records):
    fulfilment = load_handler("fulfilment.handler")
    publish(aws)

    assert fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context) == {"batchItemFailures": []}

    item = meta(aws, "order-1")
    assert item["status"] == "RECEIVED" and item["total"] == Decimal("20") and item["channel"] == "web"
    assert '"OrdersProcessed":[1.0]' in capsys.readouterr().out
    [applied] = [line for line in log_records() if line["message"] == "event applied"]
    assert applied["correlation_id"] == "corr-order-1"  # the producer's correlation id is carried on


def test_fulfilment_applies_a_duplicate_delivery_once(aws, load_handler, lambda_context):
    fulfilment = load_handler("fulfilment.handler")
    publish(aws)
    event = aws.sqs_event("fulfilment")
    fulfilment.lambda_handler(event, lambda_context)
    aws.table("orders").update_item(  # a later change that a replay must not overwrite
        Key={"pk": "ORDER#order-1", "sk": "META"}, UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": "CONFIRMED"},
    )

    assert fulfilment.lambda_handler(event, lambda_context) == {"batchItemFailures": []}  # same delivery again
    publish(aws)  # and the same event published twice (a producer retry)
    assert fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context) == {"batchItemFailures": []}

    assert meta(aws, "order-1")["status"] == "CONFIRMED"
    idempotency_records = aws.items("idempotency")
    assert len(idempotency_records) == 1 and idempotency_records[0]["status"] == "COMPLETED"


def test_fulfilment_reports_only_the_poison_message(aws, load_handler, lambda_context):
    fulfilment = load_handler("fulfilment.handler")
    event, poison = poisoned_batch(aws, "fulfilment")

    response = fulfilment.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": poison}]}
    assert [meta(aws, f"order-{i}") is not None for i in range(5)] == [True, True, False, True, True]


def test_fulfilment_rejects_an_event_that_breaks_the_schema(aws, load_handler, lambda_context):
    fulfilment = load_handler("fulfilment.handler")
    body = json.loads(OrderEvent.from_order(order(), "OrderPlaced", "c").model_dump_json())
    body["items"][0]["quantity"] = 0
    send_raw(aws, "fulfilment", json.dumps(body))
    event = aws.sqs_event("fulfilment")

    response = fulfilment.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert meta(aws, "order-1") is None


def test_fulfilment_applies_a_cancellation(aws, load_handler, lambda_context):
    fulfilment = load_handler("fulfilment.handler")
    publish(aws)
    fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context)
    publish(aws, event_type="OrderCancelled")

    assert fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context) == {"batchItemFailures": []}
    assert meta(aws, "order-1")["status"] == "CANCELLED"


def test_fulfilment_retries_a_cancellation_that_overtook_its_order(aws, load_handler, lambda_context):
    fulfilment = load_handler("fulfilment.handler")
    publish(aws, event_type="OrderCancelled")
    event = aws.sqs_event("fulfilment")

    response = fulfilment.lambda_handler(event, lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert aws.items("idempotency") == []  # a failed attempt leaves no record: the retry runs for real


# --- notification ----------------------------------------------------------------------------------


def test_notification_records_one_message_per_event(aws, load_handler, lambda_context):
    notification = load_handler("notification.handler")
    publish(aws)
    publish(aws)  # duplicate publish
    publish(aws, event_type="OrderShipped")
    event = aws.sqs_event("notification")
    assert len(event["Records"]) == 3

    assert notification.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert notification.lambda_handler(event, lambda_context) == {"batchItemFailures": []}  # redelivery

    item = aws.table("orders").get_item(Key={"pk": "ORDER#order-1", "sk": "NOTIFICATION"})["Item"]
    assert [m["event_type"] for m in item["messages"]] == ["OrderPlaced", "OrderShipped"]
    assert "order-1" in item["messages"][0]["text"] and item["customer_id"] == "customer-1"


def test_notification_reports_only_the_poison_message(aws, load_handler, lambda_context):
    notification = load_handler("notification.handler")
    event, poison = poisoned_batch(aws, "notification")

    assert notification.lambda_handler(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": poison}]}
    notified = [aws.table("orders").get_item(Key={"pk": f"ORDER#order-{i}", "sk": "NOTIFICATION"}).get("Item")
                for i in range(5)]
    assert [item is not None for item in notified] == [True, True, False, True, True]


# --- analytics ---------------------------------------------------------------------------------------


def test_analytics_counts_each_event_once_on_the_day_it_was_sent(aws, load_handler, lambda_context):
    analytics = load_handler("analytics.handler")
    publish(aws, "order-1")
    publish(aws, "order-2")
    publish(aws, "order-1")  # duplicate
    publish(aws, "order-1", "OrderShipped")
    event = aws.sqs_event("analytics")

    assert analytics.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert analytics.lambda_handler(event, lambda_context) == {"batchItemFailures": []}  # redelivery

    placed = aws.table("orders").get_item(Key={"pk": f"ANALYTICS#{TODAY}", "sk": "OrderPlaced"})["Item"]
    shipped = aws.table("orders").get_item(Key={"pk": f"ANALYTICS#{TODAY}", "sk": "OrderShipped"})["Item"]
    assert placed["event_count"] == 2 and placed["amount"] == Decimal("40")
    assert shipped["event_count"] == 1


def test_analytics_reports_only_the_poison_message(aws, load_handler, lambda_context):
    analytics = load_handler("analytics.handler")
    event, poison = poisoned_batch(aws, "analytics")

    assert analytics.lambda_handler(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": poison}]}
    placed = aws.table("orders").get_item(Key={"pk": f"ANALYTICS#{TODAY}", "sk": "OrderPlaced"})["Item"]
    assert placed["event_count"] == 4


def test_a_batch_where_everything_fails_is_reported_not_raised(aws, load_handler, lambda_context, capsys):
    analytics = load_handler("analytics.handler")
    send_raw(aws, "analytics", "[]")
    send_raw(aws, "analytics", "null")
    event = aws.sqs_event("analytics")

    response = analytics.lambda_handler(event, lambda_context)

    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {r["messageId"] for r in event["Records"]}
    assert '"ProcessingFailed":[2.0]' in capsys.readouterr().out


# --- order finaliser ------------------------------------------------------------------------------------


def cancel_window_event(aws, *order_ids: str) -> dict:
    for order_id in order_ids:
        send_raw(aws, "cancel", json.dumps({"order_id": order_id}))
    return aws.sqs_event("cancel")


def store(aws, order_id: str, status: str = "RECEIVED") -> None:
    from shared.models import to_item

    aws.table("orders").put_item(Item=to_item(order(order_id, status=status), pk=f"ORDER#{order_id}", sk="META"))


@pytest.mark.parametrize(("status", "expected"), [
    ("RECEIVED", "CONFIRMED"), ("CANCELLED", "CANCELLED"), ("COMPLETED", "COMPLETED"), ("CONFIRMED", "CONFIRMED"),
])
def test_finaliser_confirms_only_received_orders(aws, load_handler, lambda_context, status, expected):
    finaliser = load_handler("order_finaliser.handler")
    store(aws, "order-1", status)

    assert finaliser.lambda_handler(cancel_window_event(aws, "order-1"), lambda_context) == {"batchItemFailures": []}
    assert meta(aws, "order-1")["status"] == expected


def test_finaliser_retries_orders_not_recorded_yet_and_poison(aws, load_handler, lambda_context):
    finaliser = load_handler("order_finaliser.handler")
    store(aws, "order-1")
    send_raw(aws, "cancel", '{"order": "wrong field"}')
    event = cancel_window_event(aws, "order-1", "not-recorded-yet")
    by_body = {r["body"]: r["messageId"] for r in event["Records"]}

    response = finaliser.lambda_handler(event, lambda_context)

    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {by_body['{"order": "wrong field"}'], by_body['{"order_id": "not-recorded-yet"}']}
    assert meta(aws, "order-1")["status"] == "CONFIRMED"


def test_finaliser_is_idempotent(aws, load_handler, lambda_context):
    finaliser = load_handler("order_finaliser.handler")
    store(aws, "order-1")
    event = cancel_window_event(aws, "order-1")
    finaliser.lambda_handler(event, lambda_context)
    updated_at = meta(aws, "order-1")["updated_at"]

    assert finaliser.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    assert meta(aws, "order-1")["updated_at"] == updated_at  # nothing written the second time
