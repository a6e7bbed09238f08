"""orders_api: POST/GET/DELETE /orders and checkout, against moto SNS/SQS/DynamoDB/Step Functions."""

from __future__ import annotations

import json

import pytest

from tests.unit.lambdas.helpers import api_event, order_body, response_json

KEY = {"Idempotency-Key": "key-0001"}


@pytest.fixture
def api(load_handler):
    return load_handler("orders_api.handler")


def place(api, lambda_context, body=None, headers=None, **kwargs):
    event = api_event("POST", "/orders", body=order_body() if body is None else body, headers=headers, **kwargs)
    return api.lambda_handler(event, lambda_context)


def order_path(order_id: str, suffix: str = "") -> dict:
    return {"path": f"/orders/{order_id}{suffix}", "resource": f"/orders/{{order_id}}{suffix}",
            "path_parameters": {"order_id": order_id}}


def record_order(aws, load_handler, lambda_context) -> None:
    """Let the fulfilment consumer record whatever the API published (the choreography's next step)."""
    fulfilment = load_handler("fulfilment.handler")
    assert fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context) == {"batchItemFailures": []}


def test_post_publishes_order_placed_and_starts_the_cancel_window(aws, api, lambda_context, capsys):
    response = place(api, lambda_context, headers={**KEY, "X-Correlation-Id": "corr-42"})

    assert response["statusCode"] == 202
    body = response_json(response)
    assert body["status"] == "RECEIVED"
    assert response["multiValueHeaders"]["X-Correlation-Id"] == ["corr-42"]
    [message] = aws.receive("probe")
    event = json.loads(message["Body"])
    assert event["event_type"] == "OrderPlaced" and event["order_id"] == body["order_id"]
    assert event["total"] == 45.48 and event["items"][0]["unit_price"] == 19.99  # JSON numbers, exact cents
    assert event["channel"] == "api" and event["correlation_id"] == "corr-42"
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {"event_type": "OrderPlaced", "channel": "api", "correlation_id": "corr-42"}
    [window] = aws.receive("cancel")
    assert json.loads(window["Body"]) == {"order_id": body["order_id"]}
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Storefront"  # POWERTOOLS_METRICS_NAMESPACE
    assert emf["OrdersPlaced"] == [1.0]


def test_without_a_correlation_header_the_request_id_is_the_correlation_id(aws, api, lambda_context):
    event = api_event("POST", "/orders", body=order_body(), headers=KEY)

    response = api.lambda_handler(event, lambda_context)

    request_id = event["requestContext"]["requestId"]
    assert response["multiValueHeaders"]["X-Correlation-Id"] == [request_id]
    [message] = aws.receive("probe")
    assert message["MessageAttributes"]["correlation_id"]["StringValue"] == request_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (order_body(items=[{"sku": "SKU-1", "quantity": 0, "unit_price": 1}]), "items.0.quantity"),
        (order_body(items=[{"sku": "SKU-1", "quantity": 101, "unit_price": 1}]), "items.0.quantity"),
        (order_body(items=[{"sku": "bad sku!", "quantity": 1, "unit_price": 1}]), "items.0.sku"),
        (order_body(items=[{"sku": "SKU-1", "quantity": 1, "unit_price": -1}]), "items.0.unit_price"),
        (order_body(items=[]), "items"),
        (order_body(currency="euro"), "currency"),
        (order_body(customer_id=""), "customer_id"),
        (order_body(coupon="FREE"), "coupon"),
        ({"items": order_body()["items"]}, "customer_id"),
    ],
)
def test_invalid_order_is_a_400_naming_the_field_and_publishes_nothing(aws, api, lambda_context, body, field):
    response = place(api, lambda_context, body=body, headers=KEY)

    assert response["statusCode"] == 400
    assert f"{field}:" in response_json(response)["message"]
    assert aws.receive("probe") == [] and aws.receive("cancel") == []
    assert aws.items("idempotency") == []  # a rejected request does not burn its Idempotency-Key


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": "  "}, {"Idempotency-Key": "k" * 129}])
def test_post_requires_an_idempotency_key(aws, api, lambda_context, headers):
    response = place(api, lambda_context, headers=headers)

    assert response["statusCode"] == 400
    assert "Idempotency-Key" in response_json(response)["message"]
    assert aws.receive("probe") == []


def test_body_that_is_not_json_is_a_400(aws, api, lambda_context):
    response = place(api, lambda_context, body="{not json", headers=KEY)

    assert response["statusCode"] == 400
    assert "not valid JSON" in response_json(response)["message"]
    assert aws.receive("probe") == []


def test_duplicate_request_returns_the_same_order_and_publishes_once(aws, api, lambda_context):
    first = place(api, lambda_context, headers=KEY)
    # Same key, same body (keys in another order): the stored answer, nothing published again.
    reordered = dict(reversed(list(order_body().items())))
    second = place(api, lambda_context, body=reordered, headers=KEY)

    assert first["statusCode"] == second["statusCode"] == 202
    assert response_json(first) == response_json(second)
    assert len(aws.receive("probe")) == 1
    assert len(aws.receive("cancel")) == 1


def test_idempotency_key_reused_with_another_body_is_a_422(aws, api, lambda_context):
    place(api, lambda_context, headers=KEY)
    response = place(api, lambda_context, body=order_body(customer_id="someone-else"), headers=KEY)

    assert response["statusCode"] == 422
    assert len(aws.receive("probe")) == 1


def test_idempotency_keys_are_scoped_per_api_key(aws, api, lambda_context):
    first = response_json(place(api, lambda_context, headers=KEY, api_key_id="client-a"))
    second = response_json(place(api, lambda_context, headers=KEY, api_key_id="client-b"))

    assert first["order_id"] != second["order_id"]
    assert len(aws.receive("probe")) == 2


def test_get_order_is_404_until_recorded_then_returns_it(aws, api, load_handler, lambda_context):
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]
    assert api.lambda_handler(api_event("GET", **order_path(order_id)), lambda_context)["statusCode"] == 404

    record_order(aws, load_handler, lambda_context)
    response = api.lambda_handler(api_event("GET", **order_path(order_id)), lambda_context)

    assert response["statusCode"] == 200
    order = response_json(response)
    assert order["status"] == "RECEIVED" and order["total"] == 45.48 and order["channel"] == "api"
    assert order["items"][0] == {"sku": "SKU-1", "quantity": 2, "unit_price": 19.99}


def test_delete_cancels_a_received_order_once(aws, api, load_handler, lambda_context):
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]
    record_order(aws, load_handler, lambda_context)
    aws.receive("probe")  # drop the OrderPlaced

    first = api.lambda_handler(api_event("DELETE", **order_path(order_id)), lambda_context)
    second = api.lambda_handler(api_event("DELETE", **order_path(order_id)), lambda_context)

    assert first["statusCode"] == 200 and response_json(first)["status"] == "CANCELLED"
    assert second["statusCode"] == 409
    [message] = aws.receive("probe")
    assert json.loads(message["Body"])["event_type"] == "OrderCancelled"
    assert aws.table("orders").get_item(Key={"pk": f"ORDER#{order_id}", "sk": "META"})["Item"]["status"] == "CANCELLED"


def test_delete_of_an_unknown_order_is_404(aws, api, lambda_context):
    response = api.lambda_handler(api_event("DELETE", **order_path("nope")), lambda_context)
    assert response["statusCode"] == 404
    assert aws.receive("probe") == []


def test_checkout_starts_one_execution_per_order(aws, api, load_handler, lambda_context):
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]
    record_order(aws, load_handler, lambda_context)
    event = api_event("POST", **order_path(order_id, "/checkout"), body={"payment_token": "flaky-2"})

    first = api.lambda_handler(event, lambda_context)
    second = api.lambda_handler(event, lambda_context)

    assert first["statusCode"] == second["statusCode"] == 202
    arn = response_json(first)["execution_arn"]
    assert arn.endswith(f":checkout-{order_id}") and response_json(second)["execution_arn"] == arn
    assert response_json(second)["already_started"] is True
    [execution] = aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]
    assert execution["executionArn"] == arn
    execution_input = json.loads(aws.sfn.describe_execution(executionArn=arn)["input"])
    assert execution_input["payment_token"] == "flaky-2"
    assert execution_input["total"] == 45.48  # a number: the approval Choice compares it numerically
    assert [item["sku"] for item in execution_input["items"]] == ["SKU-1", "SKU-2"]
    # Once checkout has started the customer can no longer cancel.
    refused = api.lambda_handler(api_event("DELETE", **order_path(order_id)), lambda_context)
    assert refused["statusCode"] == 409
    assert response_json(refused)["status"] == "RECEIVED" and "checkout has started" in response_json(refused)["message"]


def test_checkout_tokenises_a_card_number(aws, api, load_handler, lambda_context):
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]
    record_order(aws, load_handler, lambda_context)
    event = api_event("POST", **order_path(order_id, "/checkout"), body={"card_number": "4000000000000002"})

    arn = response_json(api.lambda_handler(event, lambda_context))["execution_arn"]

    execution_input = aws.sfn.describe_execution(executionArn=arn)["input"]
    assert json.loads(execution_input)["payment_token"] == "card-0002"
    assert "4000000000000002" not in execution_input


def test_checkout_of_unknown_or_cancelled_order_is_refused(aws, api, load_handler, lambda_context):
    assert api.lambda_handler(api_event("POST", **order_path("nope", "/checkout")), lambda_context)["statusCode"] == 404
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]
    record_order(aws, load_handler, lambda_context)
    api.lambda_handler(api_event("DELETE", **order_path(order_id)), lambda_context)

    response = api.lambda_handler(api_event("POST", **order_path(order_id, "/checkout")), lambda_context)

    assert response["statusCode"] == 409
    assert aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"] == []


def test_checkout_body_is_validated(aws, api, load_handler, lambda_context):
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]
    record_order(aws, load_handler, lambda_context)
    event = api_event("POST", **order_path(order_id, "/checkout"), body={"card_number": "12ab"})

    response = api.lambda_handler(event, lambda_context)

    assert response["statusCode"] == 400 and "card_number:" in response_json(response)["message"]
    assert aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"] == []


def test_a_failed_publish_is_a_503_and_the_retry_places_the_same_order(aws, api, lambda_context):
    aws.sns.delete_topic(TopicArn=aws.topic_arn)  # SNS unavailable for this request

    failed = place(api, lambda_context, headers=KEY)

    assert failed["statusCode"] == 503
    assert aws.items("idempotency") == []  # the key is free again: the client may retry
    aws.sns.create_topic(Name="order-events")
    aws.sns.subscribe(TopicArn=aws.topic_arn, Protocol="sqs", Attributes={"RawMessageDelivery": "true"},
                      Endpoint=aws.sqs.get_queue_attributes(QueueUrl=aws.queues["probe"],
                                                            AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    retried = place(api, lambda_context, headers=KEY)
    again = place(api, lambda_context, headers=KEY)

    assert retried["statusCode"] == again["statusCode"] == 202
    order_id = response_json(retried)["order_id"]
    assert response_json(again)["order_id"] == order_id
    assert [json.loads(m["Body"])["order_id"] for m in aws.receive("probe")] == [order_id]
