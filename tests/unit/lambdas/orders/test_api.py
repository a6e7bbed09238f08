"""orders.handlers.api: POST/GET/DELETE /orders and checkout, against moto SNS/SQS/DynamoDB/Step Functions."""

from __future__ import annotations

import json

import pytest

from contracts.api import CheckoutStarted, OrderAccepted, OrderCancelled
from contracts.orders import Order, OrderRequest
from tests.unit.lambdas.helpers import api_event, existing_meta, meta, order_body, response_json

KEY = {"Idempotency-Key": "key-0001"}


@pytest.fixture
def api(load_handler):
    return load_handler("orders.handlers.api")


def place(api, lambda_context, body=None, headers=None, **kwargs):
    event = api_event("POST", "/orders", body=order_body() if body is None else body, headers=headers, **kwargs)
    return api.lambda_handler(event, lambda_context)


def order_path(order_id: str, suffix: str = "") -> dict:
    return {
        "path": f"/orders/{order_id}{suffix}",
        "resource": f"/orders/{{order_id}}{suffix}",
        "path_parameters": {"order_id": order_id},
    }


def record_order(aws, load_handler, lambda_context) -> None:
    """Let the fulfilment consumer record whatever the API published (the choreography's next step)."""
    fulfilment = load_handler("orders.handlers.fulfilment")
    assert fulfilment.lambda_handler(aws.sqs_event("fulfilment"), lambda_context) == {"batchItemFailures": []}


def test_post_publishes_order_placed_and_starts_the_cancel_window(aws, api, lambda_context, capsys, handler_calls):
    response = place(api, lambda_context, headers={**KEY, "X-Correlation-Id": "corr-42"})

    assert response["statusCode"] == 202
    body = response_json(response)
    assert body["status"] == "RECEIVED"
    OrderAccepted.model_validate(body)
    assert response["multiValueHeaders"]["X-Correlation-Id"] == ["corr-42"]
    [message] = aws.receive("probe")
    event = json.loads(message["Body"])
    assert event["event_type"] == "OrderPlaced" and event["order_id"] == body["order_id"]
    assert event["total"] == 45.48 and event["items"][0]["unit_price"] == 19.99  # JSON numbers, exact cents
    assert event["channel"] == "api" and event["correlation_id"] == "corr-42"
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {"event_type": "OrderPlaced", "channel": "api", "correlation_id": "corr-42"}
    # The cancel window starts from the same OrderPlaced, through its subscription (raw delivery): the
    # API publishes that one event and sends nothing else (no second write to the delay queue).
    [window] = aws.receive("cancel")
    assert json.loads(window["Body"]) == event
    assert window["MessageAttributes"]["event_type"]["StringValue"] == "OrderPlaced"
    assert handler_calls == [("sns", "Publish")]
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
        (order_body(items=[{"sku": "sku-1", "quantity": 1, "unit_price": 1}]), "items.0.sku"),  # upper case only
        (order_body(items=[{"sku": "AB", "quantity": 1, "unit_price": 1}]), "items.0.sku"),  # 3 characters at least
        (order_body(items=[{"sku": "SKU-1", "quantity": True, "unit_price": 1}]), "items.0.quantity"),
        (order_body(items=[{"sku": "SKU-1", "quantity": "3", "unit_price": 1}]), "items.0.quantity"),
        (order_body(items=[{"sku": "SKU-1", "quantity": 3.5, "unit_price": 1}]), "items.0.quantity"),
        (order_body(items=[{"sku": "SKU-1", "quantity": 1, "unit_price": "19.99"}]), "items.0.unit_price"),
        (order_body(items=[{"sku": "SKU-1", "quantity": 1, "unit_price": True}]), "items.0.unit_price"),
        (order_body(items=[{"sku": "SKU-1", "quantity": 1, "unit_price": 1.001}]), "items.0.unit_price"),
        (order_body(items=[{"sku": "SKU-1", "quantity": 1, "unit_price": 1, "note": "x"}]), "items.0.note"),
        (order_body(items=[{"sku": "SKU-1", "quantity": 1, "unit_price": -1}]), "items.0.unit_price"),
        (order_body(items=[]), "items"),
        (order_body(currency="euro"), "currency"),
        (order_body(customer_id=""), "customer_id"),
        (order_body(customer_id="jane doe"), "customer_id"),
        (order_body(customer_id="-jane"), "customer_id"),
        (order_body(customer_id="c" * 65), "customer_id"),
        (order_body(coupon="FREE"), "coupon"),
        ({"items": order_body()["items"]}, "customer_id"),
    ],
)
def test_invalid_order_is_a_400_naming_the_field_and_publishes_nothing(aws, api, lambda_context, body, field):
    response = place(api, lambda_context, body=body, headers=KEY)

    assert response["statusCode"] == 400
    message = response_json(response)["message"]
    assert message.startswith("Invalid request: ") and f"{field}:" in message
    assert aws.receive("probe") == [] and aws.receive("cancel") == []
    assert aws.items("idempotency") == []  # a rejected request does not burn its Idempotency-Key


@pytest.mark.parametrize(
    "headers", [{}, {"Idempotency-Key": "  "}, {"Idempotency-Key": "k" * 129}, {"Idempotency-Key": " key-0001"}]
)
def test_post_requires_an_idempotency_key(aws, api, lambda_context, headers):
    response = place(api, lambda_context, headers=headers)

    assert response["statusCode"] == 400
    assert response_json(response)["message"].startswith("Invalid request: header idempotency-key: ")
    assert aws.receive("probe") == []
    assert aws.items("idempotency") == []


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
    assert Order.model_validate(order).order_id == order_id  # the answer is the contract's Order


def test_delete_cancels_a_received_order_once_and_a_repeat_announces_it_again(aws, api, load_handler, lambda_context):
    """Cancelling is decided once, in the record; a repeated DELETE (the client retrying after a 503 whose
    publish failed) answers 200 again and publishes OrderCancelled again, so the announcement is never
    lost. (Changed on purpose: the repeat used to be a 409 that published nothing.)"""
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]
    record_order(aws, load_handler, lambda_context)
    aws.receive("probe")  # drop the OrderPlaced

    first = api.lambda_handler(api_event("DELETE", **order_path(order_id)), lambda_context)
    cancelled = existing_meta(aws, order_id)
    second = api.lambda_handler(api_event("DELETE", **order_path(order_id)), lambda_context)

    assert first["statusCode"] == second["statusCode"] == 200
    assert response_json(first) == response_json(second) == {"order_id": order_id, "status": "CANCELLED"}
    OrderCancelled.model_validate(response_json(second))
    messages = [json.loads(m["Body"]) for m in aws.receive("probe")]
    assert [(m["event_type"], m["order_id"]) for m in messages] == [("OrderCancelled", order_id)] * 2
    assert cancelled["status"] == "CANCELLED" and cancelled["cancel_reason"] == "CustomerCancelled"
    assert meta(aws, order_id) == cancelled  # the repeat wrote nothing
    # The cancel window holds the order's OrderPlaced only: cancellations are not its business.
    assert [json.loads(m["Body"])["event_type"] for m in aws.receive("cancel")] == ["OrderPlaced"]


def test_a_repeated_delete_is_applied_once_by_every_consumer(aws, api, load_handler, lambda_context):
    """Two DELETEs publish OrderCancelled twice; fulfilment, notification and analytics apply it once."""
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]
    record_order(aws, load_handler, lambda_context)
    for _ in range(3):
        assert api.lambda_handler(api_event("DELETE", **order_path(order_id)), lambda_context)["statusCode"] == 200

    fulfilment = load_handler("orders.handlers.fulfilment")
    event = aws.sqs_event("fulfilment")
    assert [json.loads(r["body"])["event_type"] for r in event["Records"]] == ["OrderCancelled"] * 3
    assert fulfilment.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    notification = load_handler("notification.handlers.consumer")
    assert notification.lambda_handler(aws.sqs_event("notification"), lambda_context) == {"batchItemFailures": []}
    analytics = load_handler("analytics.handlers.consumer")
    assert analytics.lambda_handler(aws.sqs_event("analytics"), lambda_context) == {"batchItemFailures": []}

    assert existing_meta(aws, order_id)["status"] == "CANCELLED"
    notified = aws.table("orders").get_item(Key={"pk": f"ORDER#{order_id}", "sk": "NOTIFICATION"})["Item"]
    assert [m["event_type"] for m in notified["messages"]] == ["OrderPlaced", "OrderCancelled"]
    counters = {item["sk"]: item["event_count"] for item in aws.items() if item["pk"].startswith("ANALYTICS#")}
    assert counters == {"OrderPlaced": 1, "OrderCancelled": 1}


def test_delete_of_an_order_a_failed_checkout_cancelled_is_409(aws, api, load_handler, lambda_context):
    """Only the customer's own cancellation is repeatable; one made by checkout compensation is not hers."""
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]
    record_order(aws, load_handler, lambda_context)
    tasks = load_handler("checkout.handlers.tasks")
    tasks.mark_order({"order_id": order_id, "status": "CANCELLED", "reason": "PaymentDeclined"}, lambda_context)
    aws.receive("probe")  # drop the OrderPlaced

    response = api.lambda_handler(api_event("DELETE", **order_path(order_id)), lambda_context)

    assert response["statusCode"] == 409 and response_json(response)["status"] == "CANCELLED"
    assert aws.receive("probe") == []
    assert existing_meta(aws, order_id)["cancel_reason"] == "PaymentDeclined"


def test_delete_of_an_unknown_order_is_404(aws, api, lambda_context):
    response = api.lambda_handler(api_event("DELETE", **order_path("nope")), lambda_context)
    assert response["statusCode"] == 404
    assert aws.receive("probe") == []


@pytest.mark.parametrize("order_id", ["not_an_id", "o" * 65, "a.b", "caf%C3%A9"])
@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("DELETE", ""), ("POST", "/checkout")])
def test_an_order_id_that_breaks_the_pattern_is_a_400(
    aws, api, lambda_context, handler_calls, order_id, method, suffix
):
    response = api.lambda_handler(api_event(method, **order_path(order_id, suffix)), lambda_context)

    assert response["statusCode"] == 400
    assert response_json(response)["message"].startswith("Invalid request: path order_id: ")
    assert handler_calls == []  # nothing published, no execution started


def test_checkout_starts_one_execution_per_order(aws, api, load_handler, lambda_context):
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]
    record_order(aws, load_handler, lambda_context)
    event = api_event("POST", **order_path(order_id, "/checkout"), body={"payment_token": "flaky-2"})

    first = api.lambda_handler(event, lambda_context)
    second = api.lambda_handler(event, lambda_context)

    assert first["statusCode"] == second["statusCode"] == 202
    CheckoutStarted.model_validate(response_json(first))
    assert response_json(first)["already_started"] is False
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
    assert (
        response_json(refused)["status"] == "RECEIVED" and "checkout has started" in response_json(refused)["message"]
    )


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
    aws.sns.subscribe(
        TopicArn=aws.topic_arn,
        Protocol="sqs",
        Attributes={"RawMessageDelivery": "true"},
        Endpoint=aws.sqs.get_queue_attributes(QueueUrl=aws.queues["probe"], AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ],
    )

    retried = place(api, lambda_context, headers=KEY)
    again = place(api, lambda_context, headers=KEY)

    assert retried["statusCode"] == again["statusCode"] == 202
    order_id = response_json(retried)["order_id"]
    assert response_json(again)["order_id"] == order_id
    assert [json.loads(m["Body"])["order_id"] for m in aws.receive("probe")] == [order_id]


def test_the_api_validates_post_orders_against_the_contracts_order_request_schema(api):
    """The OpenAPI document the resolver publishes (docs/openapi.json is generated from it) describes the
    POST /orders body with exactly the JSON schema of contracts.orders.OrderRequest."""
    from plumbing.http import SECURITY_SCHEMES

    published = api.app.get_openapi_schema(title="t", version="1", security_schemes=SECURITY_SCHEMES).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    components = published["components"]["schemas"]
    contract = OrderRequest.model_json_schema(mode="validation", ref_template="#/components/schemas/{model}")
    definitions = contract.pop("$defs")

    body = published["paths"]["/orders"]["post"]["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderRequest"}
    assert components["OrderRequest"] == contract
    assert {name: components[name] for name in definitions} == definitions


@pytest.fixture
def side_calls():
    """The parameters of every Lambda Invoke the side-call client makes (moto answers them)."""
    from plumbing import side_calls as module

    calls: list[dict] = []

    def record(params, **_):
        calls.append(dict(params))

    client = module._lambda_client()
    client.meta.events.register("provide-client-params.lambda.Invoke", record, unique_id="side-call-params")
    yield calls
    client.meta.events.unregister("provide-client-params.lambda.Invoke", unique_id="side-call-params")


def test_a_placed_order_fires_the_recommendations_side_call_asynchronously_once(aws, api, lambda_context, side_calls):
    first = place(api, lambda_context, headers=KEY)
    again = place(api, lambda_context, headers=KEY)  # a retry: the stored answer, no second side call

    assert (first["statusCode"], again["statusCode"]) == (202, 202)
    [call] = side_calls
    assert call["FunctionName"] == "recommendations" and call["InvocationType"] == "Event"
    signal = json.loads(call["Payload"])
    body = order_body()
    assert signal == {
        "order_id": response_json(first)["order_id"],
        "customer_id": body["customer_id"],
        "skus": [item["sku"] for item in body["items"]],
    }


def test_a_side_call_that_cannot_be_queued_never_fails_the_order(aws, api, lambda_context, side_calls, capsys):
    """moto knows no `recommendations` function: Invoke fails, the order is placed and announced anyway."""
    response = place(api, lambda_context, headers=KEY)

    assert response["statusCode"] == 202
    assert len(side_calls) == 1
    [event] = [json.loads(m["Body"]) for m in aws.receive("probe")]
    assert event["order_id"] == response_json(response)["order_id"]
    [emf] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf["SideCallsNotQueued"] == [1.0]


def test_get_catalog_serves_the_contracts_catalogue_the_web_tier_prices_with(aws, api, lambda_context):
    from contracts.catalog import CATALOG, Catalog
    from services.web.catalog import CATALOG as WEB_CATALOG

    response = api.lambda_handler(api_event("GET", "/catalog"), lambda_context)

    assert response["statusCode"] == 200
    body = response_json(response)
    assert body == CATALOG.model_dump(mode="json")
    published = Catalog.model_validate(body)
    assert {p.sku: p.unit_price for p in published.products} == {s: p.unit_price for s, p in WEB_CATALOG.items()}


def _as_customer(method: str, order_id: str, customer: str | None, route: str = "", **kwargs) -> dict:
    """A /me/orders/{order_id}[route] request past API Gateway's Cognito authorizer (its claims in the event)."""
    event = api_event(
        method,
        f"/me/orders/{order_id}{route}",
        resource="/me/orders/{order_id}" + route,
        path_parameters={"order_id": order_id},
        api_key_id="",
        **kwargs,
    )
    if customer is not None:
        event["requestContext"]["authorizer"] = {"claims": {"cognito:username": customer, "token_use": "id"}}
    return event


def test_a_customer_reads_and_cancels_only_their_own_orders(aws, api, load_handler, lambda_context):
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]  # customer-1's order
    record_order(aws, load_handler, lambda_context)

    mine = api.lambda_handler(_as_customer("GET", order_id, "customer-1"), lambda_context)
    assert mine["statusCode"] == 200 and response_json(mine)["order_id"] == order_id
    for stranger in ("customer-2", None):  # someone else's order is absent, not forbidden
        assert api.lambda_handler(_as_customer("GET", order_id, stranger), lambda_context)["statusCode"] == 404
        assert api.lambda_handler(_as_customer("DELETE", order_id, stranger), lambda_context)["statusCode"] == 404
    assert aws.receive("probe") and not [
        m for m in aws.receive("probe") if json.loads(m["Body"])["event_type"] == "OrderCancelled"
    ]

    cancelled = api.lambda_handler(_as_customer("DELETE", order_id, "customer-1"), lambda_context)
    assert cancelled["statusCode"] == 200 and response_json(cancelled)["status"] == "CANCELLED"


def test_a_customer_checks_out_only_their_own_orders(aws, api, load_handler, lambda_context):
    """POST /me/orders/{id}/checkout (the storefront's Pay button): the customer's own order starts the
    same one execution as the partners' route; a stranger's is absent and starts nothing."""
    order_id = response_json(place(api, lambda_context, headers=KEY))["order_id"]  # customer-1's order
    record_order(aws, load_handler, lambda_context)
    payment = {"card_number": "4242424242424242"}

    for stranger in ("customer-2", None):
        refused = api.lambda_handler(
            _as_customer("POST", order_id, stranger, "/checkout", body=payment), lambda_context
        )
        assert refused["statusCode"] == 404
    assert aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"] == []

    started = api.lambda_handler(
        _as_customer("POST", order_id, "customer-1", "/checkout", body=payment), lambda_context
    )
    assert started["statusCode"] == 202 and response_json(started)["already_started"] is False
    again = api.lambda_handler(_as_customer("POST", order_id, "customer-1", "/checkout", body=payment), lambda_context)
    assert response_json(again)["already_started"] is True
    [execution] = aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]
    assert execution["executionArn"] == response_json(started)["execution_arn"]
    execution_input = aws.sfn.describe_execution(executionArn=execution["executionArn"])["input"]
    assert json.loads(execution_input)["payment_token"] == "card-4242" and "4242424242424242" not in execution_input

    bad = api.lambda_handler(
        _as_customer("POST", order_id, "customer-1", "/checkout", body={"card_number": "x"}), lambda_context
    )
    assert bad["statusCode"] == 400
