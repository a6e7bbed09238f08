"""analytics.handlers.consumer: per-day counters of every event type, fed through moto SNS -> SQS."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from tests.unit.lambdas.helpers import poisoned_batch, publish, send_raw

TODAY = datetime.now(UTC).strftime("%Y-%m-%d")


def test_analytics_counts_each_event_once_on_the_day_it_was_sent(aws, load_handler, lambda_context):
    analytics = load_handler("analytics.handlers.consumer")
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


def test_analytics_counts_every_event_type(aws, load_handler, lambda_context):
    analytics = load_handler("analytics.handlers.consumer")
    for event_type in ("OrderPlaced", "OrderCancelled", "OrderShipped", "InventoryAdjusted"):
        publish(aws, "order-1", event_type)

    assert analytics.lambda_handler(aws.sqs_event("analytics"), lambda_context) == {"batchItemFailures": []}

    counters = {item["sk"]: item["event_count"] for item in aws.items() if item["pk"] == f"ANALYTICS#{TODAY}"}
    assert counters == {"OrderPlaced": 1, "OrderCancelled": 1, "OrderShipped": 1, "InventoryAdjusted": 1}


def test_analytics_reports_only_the_poison_message(aws, load_handler, lambda_context):
    analytics = load_handler("analytics.handlers.consumer")
    event, poison = poisoned_batch(aws, "analytics")

    assert analytics.lambda_handler(event, lambda_context) == {"batchItemFailures": [{"itemIdentifier": poison}]}
    placed = aws.table("orders").get_item(Key={"pk": f"ANALYTICS#{TODAY}", "sk": "OrderPlaced"})["Item"]
    assert placed["event_count"] == 4


def test_a_batch_where_everything_fails_is_reported_not_raised(aws, load_handler, lambda_context, capsys):
    analytics = load_handler("analytics.handlers.consumer")
    send_raw(aws, "analytics", "[]")
    send_raw(aws, "analytics", "null")
    event = aws.sqs_event("analytics")

    response = analytics.lambda_handler(event, lambda_context)

    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {r["messageId"] for r in event["Records"]}
    assert '"ProcessingFailed":[2.0]' in capsys.readouterr().out
