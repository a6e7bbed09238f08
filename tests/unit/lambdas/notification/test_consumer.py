"""notification.handlers.consumer: customer messages, fed through moto SNS -> SQS (the notification
subscription's filter policy)."""

from __future__ import annotations

from tests.unit.lambdas.helpers import poisoned_batch, publish


def test_notification_records_one_message_per_event(aws, load_handler, lambda_context):
    notification = load_handler("notification.handlers.consumer")
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


def test_notification_does_not_subscribe_to_inventory_events(aws):
    publish(aws, event_type="InventoryAdjusted")

    assert len(aws.receive("probe")) == 1
    assert aws.receive("notification") == []


def test_notification_reports_only_the_poison_message(aws, load_handler, lambda_context):
    notification = load_handler("notification.handlers.consumer")
    event, poison = poisoned_batch(aws, "notification")

    assert notification.lambda_handler(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": poison}]}
    notified = [
        aws.table("orders").get_item(Key={"pk": f"ORDER#order-{i}", "sk": "NOTIFICATION"}).get("Item") for i in range(5)
    ]
    assert [item is not None for item in notified] == [True, True, False, True, True]
