"""Builders of the events Lambda hands to the handlers (API Gateway REST proxy, SQS)."""

from __future__ import annotations

import json
import uuid
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS message (ReceiveMessage shape) as a record of Lambda's SQS event."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "binaryValue": None, "stringListValues": [],
                   "binaryListValues": [], "dataType": value["DataType"]}
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
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": 19.99}, {"sku": "SKU-2", "quantity": 1, "unit_price": 5.5}],
    }
    body.update(overrides)
    return body


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None
