"""Builders of the events Lambda hands to the handlers (API Gateway REST proxy, SQS), and of the order
events the producers publish."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from contracts.events import ORDER_PLACED, EventType, OrderEvent
from contracts.orders import Order, OrderItem
from contracts.tables import order_key
from plumbing.events import publish_order_event
from plumbing.orders_table import to_item

REGION = "us-east-1"
ACCOUNT = "123456789012"

# Every Lambda entry-point module (asset root `lambdas/`); docs/design.md's Lambda table lists each one.
HANDLER_MODULES = (
    "orders.handlers.api",
    "orders.handlers.fulfilment",
    "orders.handlers.finaliser",
    "orders.handlers.deliveries",
    "checkout.handlers.tasks",
    "checkout.handlers.approvals",
    "inventory.handlers.ledger",
    "notification.handlers.consumer",
    "analytics.handlers.consumer",
    "activity.handlers.consumer",
    "handoff.handlers.ingest",
    "recommendations.handlers.side_call",
    "live.handlers.authorizer",
    "live.handlers.connections",
    "live.handlers.notifier",
)


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message (ReceiveMessage shape) as a record of Lambda's SQS event."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": None,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def api_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    path_parameters: dict[str, str] | None = None,
    api_key_id: str = "test-api-key",
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy-integration event."""
    raw_body = body if body is None or isinstance(body, str) else json.dumps(body)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    request_id = str(uuid.uuid4())
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": request_id,
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "identity": {"sourceIp": "192.0.2.1", "apiKeyId": api_key_id, "userAgent": "pytest"},
            "requestTimeEpoch": 1_700_000_000_000,
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }


def order_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "customer_id": "customer-1",
        "currency": "EUR",
        "items": [
            {"sku": "SKU-1", "quantity": 2, "unit_price": 19.99},
            {"sku": "SKU-2", "quantity": 1, "unit_price": 5.5},
        ],
    }
    body.update(overrides)
    return body


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None


# --- order events, published the way the producers do (SNS -> filtered raw-delivery SQS) ---------------


def order(order_id: str = "order-1", **overrides: Any) -> Order:
    fields: dict[str, Any] = dict(
        order_id=order_id,
        customer_id="customer-1",
        channel="web",
        placed_at=datetime.now(UTC),
        items=[OrderItem(sku="SKU-1", quantity=2, unit_price=Decimal("10.00"))],
    )
    fields.update(overrides)
    return Order(**fields)


def order_event(order_id: str = "order-1", event_type: EventType = ORDER_PLACED, **overrides: Any) -> OrderEvent:
    return OrderEvent.of(order(order_id, **overrides), event_type, f"corr-{order_id}")


def publish(aws: Any, order_id: str = "order-1", event_type: EventType = ORDER_PLACED, **overrides: Any) -> OrderEvent:
    event = order_event(order_id, event_type, **overrides)
    publish_order_event(aws.topic_arn, event)
    return event


def send_raw(aws: Any, queue: str, body: str) -> None:
    aws.sqs.send_message(QueueUrl=aws.queues[queue], MessageBody=body)


def store_order(aws: Any, order_id: str = "order-1", status: str = "RECEIVED", **overrides: Any) -> None:
    """An order record as the fulfilment consumer writes it (`ORDER#<id>` / `META`)."""
    aws.table("orders").put_item(Item=to_item(order(order_id, status=status, **overrides), **order_key(order_id)))


def meta(aws: Any, order_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = aws.table("orders").get_item(Key=order_key(order_id)).get("Item")
    return item


def existing_meta(aws: Any, order_id: str) -> dict[str, Any]:
    """The order's META item, which must be there."""
    item = meta(aws, order_id)
    assert item is not None, f"order {order_id} is not recorded"
    return item


def poisoned_batch(aws: Any, queue: str) -> tuple[dict[str, Any], str]:
    """Five messages, the third one poison (not JSON); returns the Lambda event and the poison's id."""
    for index in range(5):
        if index == 2:
            send_raw(aws, queue, "{this is not json")
        else:
            publish(aws, f"order-{index}")
    event: dict[str, Any] = aws.sqs_event(queue)
    assert len(event["Records"]) == 5
    [poison] = [r["messageId"] for r in event["Records"] if r["body"].startswith("{this")]
    return event, poison
