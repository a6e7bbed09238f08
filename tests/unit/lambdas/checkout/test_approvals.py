"""checkout.handlers.approvals: the waitForTaskToken task and the approvers' REST API (moto Step Functions)."""

from __future__ import annotations

import json

import pytest

from contracts.api import ApprovalDecided, ErrorBody, PendingApprovals
from plumbing import aws as plumbing_aws
from tests.unit.lambdas.helpers import api_event, response_json

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAd1token-for-order-1"


@pytest.fixture
def approvals(load_handler):
    return load_handler("checkout.handlers.approvals")


@pytest.fixture
def sfn_calls(aws):
    """Every SendTask* request the handler makes, as sent over the wire (moto accepts any token, so the
    request itself is what shows the right token and error reached Step Functions)."""
    calls: list[tuple[str, dict]] = []
    client = plumbing_aws.client("stepfunctions")

    def record(model, params, **_):
        calls.append((model.name, json.loads(params["body"])))

    events = ("before-call.sfn.SendTaskSuccess", "before-call.sfn.SendTaskFailure")
    for event in events:
        client.meta.events.register(event, record, unique_id=f"sfn-calls-{event}")
    yield calls
    for event in events:  # the client outlives the test
        client.meta.events.unregister(event, unique_id=f"sfn-calls-{event}")


def decide(approvals, lambda_context, order_id: str, body) -> dict:
    event = api_event(
        "POST",
        f"/approvals/{order_id}",
        resource="/approvals/{order_id}",
        body=body,
        path_parameters={"order_id": order_id},
    )
    return approvals.lambda_handler(event, lambda_context)


def pending(approvals, lambda_context) -> list[dict]:
    response = approvals.lambda_handler(api_event("GET", "/approvals"), lambda_context)
    assert response["statusCode"] == 200
    body = response_json(response)
    PendingApprovals.model_validate(body)  # the answer is the contract's model
    return body["approvals"]


def test_request_approval_parks_the_task_token(aws, approvals, lambda_context):
    approvals.request_approval({"task_token": TOKEN, "order_id": "order-1"}, lambda_context)

    item = aws.table("orders").get_item(Key={"pk": "ORDER#order-1", "sk": "APPROVAL"})["Item"]
    assert item["task_token"] == TOKEN and item["approval_status"] == "PENDING" and "requested_at" in item
    assert [a["order_id"] for a in pending(approvals, lambda_context)] == ["order-1"]


def test_approve_sends_task_success_once(aws, approvals, sfn_calls, lambda_context):
    approvals.request_approval({"task_token": TOKEN, "order_id": "order-1"}, lambda_context)

    first = decide(approvals, lambda_context, "order-1", {"decision": "approve", "reason": "known customer"})
    second = decide(approvals, lambda_context, "order-1", {"decision": "reject"})

    assert first["statusCode"] == 200 and response_json(first)["approval"] == "APPROVED"
    assert ApprovalDecided.model_validate(response_json(first)) == ApprovalDecided(
        order_id="order-1", decision="approve", approval="APPROVED"
    )
    assert second["statusCode"] == 409
    assert "already APPROVED" in ErrorBody.model_validate(response_json(second)).message
    [(operation, request)] = sfn_calls
    assert operation == "SendTaskSuccess" and request["taskToken"] == TOKEN
    assert json.loads(request["output"])["decision"] == "approve"
    assert pending(approvals, lambda_context) == []


def test_reject_sends_task_failure_with_the_caught_error_name(aws, approvals, sfn_calls, lambda_context):
    approvals.request_approval({"task_token": TOKEN, "order_id": "order-1"}, lambda_context)

    response = decide(approvals, lambda_context, "order-1", {"decision": "reject", "reason": "too risky"})

    assert response["statusCode"] == 200
    assert response_json(response) == {"order_id": "order-1", "decision": "reject", "approval": "REJECTED"}
    [(operation, request)] = sfn_calls
    assert operation == "SendTaskFailure"
    assert request == {"taskToken": TOKEN, "error": "ApprovalRejected", "cause": "too risky"}


def test_decision_without_pending_approval_is_404(aws, approvals, sfn_calls, lambda_context):
    response = decide(approvals, lambda_context, "order-unknown", {"decision": "approve"})

    assert response["statusCode"] == 404
    assert sfn_calls == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"decision": "maybe"}, "decision:"),
        ({}, "decision:"),
        ({"decision": "approve", "extra": 1}, "extra:"),
        ({"decision": "approve", "reason": "r" * 501}, "reason:"),
        ("not json", "the body is not valid JSON"),
    ],
)
def test_invalid_decision_is_400_and_keeps_the_approval_pending(
    aws, approvals, sfn_calls, lambda_context, body, problem
):
    approvals.request_approval({"task_token": TOKEN, "order_id": "order-1"}, lambda_context)

    response = decide(approvals, lambda_context, "order-1", body)

    assert response["statusCode"] == 400
    message = response_json(response)["message"]
    assert message.startswith("Invalid request: ") and problem in message
    assert sfn_calls == []
    assert [a["order_id"] for a in pending(approvals, lambda_context)] == ["order-1"]


def test_pending_list_shows_only_undecided_approvals(aws, approvals, lambda_context):
    for order_id in ("order-1", "order-2", "order-3"):
        approvals.request_approval({"task_token": f"{TOKEN}-{order_id}", "order_id": order_id}, lambda_context)
    decide(approvals, lambda_context, "order-2", {"decision": "approve"})

    assert [a["order_id"] for a in pending(approvals, lambda_context)] == ["order-1", "order-3"]


def test_an_order_id_that_breaks_the_pattern_is_a_400(aws, approvals, sfn_calls, lambda_context):
    response = decide(approvals, lambda_context, "not_an_id", {"decision": "approve"})

    assert response["statusCode"] == 400
    assert response_json(response)["message"].startswith("Invalid request: path order_id: ")
    assert sfn_calls == []


def test_request_approval_refuses_a_malformed_payload(aws, approvals, lambda_context):
    from pydantic import ValidationError

    for payload in (
        {"order_id": "order-1"},
        {"task_token": "", "order_id": "order-1"},
        {"task_token": TOKEN, "order_id": "order 1"},
    ):
        with pytest.raises(ValidationError):
            approvals.request_approval(payload, lambda_context)
    assert aws.items("orders") == []
