"""The approval callback end to end, on moto's Step Functions interpreter: a waitForTaskToken task
hands the token over (here through SQS, standing in for the request_approval Lambda invocation), the
approvals API completes it, and the execution continues - or fails through the ApprovalRejected catch."""

from __future__ import annotations

import json
import time

import pytest
from moto.core.config import default_user_config

from tests.unit.lambdas.helpers import ACCOUNT, api_event, response_json

# A one-state slice of the checkout: wait for the approval, catch a rejection.
DEFINITION = {
    "StartAt": "AwaitApproval",
    "States": {
        "AwaitApproval": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {
                "QueueUrl": "QUEUE_URL",
                "MessageBody": {"task_token.$": "$$.Task.Token", "order_id.$": "$.order_id"},
            },
            "TimeoutSeconds": 60,
            "ResultPath": "$.approval",
            "Catch": [{"ErrorEquals": ["ApprovalRejected"], "ResultPath": "$.error", "Next": "Rejected"}],
            "End": True,
        },
        "Rejected": {"Type": "Fail", "Error": "CheckoutCancelled", "Cause": "approval rejected"},
    },
}


@pytest.fixture
def interpreter(aws, monkeypatch):
    """moto runs executions for real (its ASL interpreter) while this fixture is active; returns a
    factory of approval state machines (timeout in seconds)."""
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})

    def create(timeout_seconds: int = 60) -> str:
        definition = json.loads(json.dumps(DEFINITION).replace("QUEUE_URL", aws.queues["probe"]))
        definition["States"]["AwaitApproval"]["TimeoutSeconds"] = timeout_seconds
        return aws.sfn.create_state_machine(
            name=f"approval-slice-{timeout_seconds}",
            definition=json.dumps(definition),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/checkout",
        )["stateMachineArn"]

    return create


@pytest.fixture
def interpreted(interpreter) -> str:
    return interpreter()


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise TimeoutError("condition not met in time")


def start_and_park_token(aws, approvals, lambda_context, state_machine_arn: str) -> str:
    execution_arn = aws.sfn.start_execution(
        stateMachineArn=state_machine_arn, name="checkout-order-1", input=json.dumps({"order_id": "order-1"})
    )["executionArn"]
    [message] = wait_for(lambda: aws.receive("probe"))
    approvals.request_approval(json.loads(message["Body"]), lambda_context)  # what the task Lambda does
    return execution_arn


def decide(approvals, lambda_context, body: dict) -> dict:
    event = api_event(
        "POST",
        "/approvals/order-1",
        resource="/approvals/{order_id}",
        body=body,
        path_parameters={"order_id": "order-1"},
    )
    return approvals.lambda_handler(event, lambda_context)


def finished(aws, execution_arn: str) -> dict:
    return wait_for(lambda: (d := aws.sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and d)


def test_approval_resumes_the_execution(aws, load_handler, lambda_context, interpreted):
    approvals = load_handler("checkout.handlers.approvals")
    execution_arn = start_and_park_token(aws, approvals, lambda_context, interpreted)

    assert decide(approvals, lambda_context, {"decision": "approve", "reason": "ok"})["statusCode"] == 200

    execution = finished(aws, execution_arn)
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["approval"]["decision"] == "approve"


def test_rejection_is_caught_as_approval_rejected(aws, load_handler, lambda_context, interpreted):
    approvals = load_handler("checkout.handlers.approvals")
    execution_arn = start_and_park_token(aws, approvals, lambda_context, interpreted)

    assert decide(approvals, lambda_context, {"decision": "reject", "reason": "fraud check"})["statusCode"] == 200

    execution = finished(aws, execution_arn)
    assert execution["status"] == "FAILED" and execution["error"] == "CheckoutCancelled"  # via the Catch


def test_a_token_whose_task_timed_out_is_a_409_and_the_approval_expires(aws, load_handler, lambda_context, interpreter):
    approvals = load_handler("checkout.handlers.approvals")
    execution_arn = start_and_park_token(aws, approvals, lambda_context, interpreter(timeout_seconds=1))
    assert finished(aws, execution_arn)["error"] == "States.Timeout"  # nobody decided in time

    response = decide(approvals, lambda_context, {"decision": "approve"})

    assert response["statusCode"] == 409 and "no longer waits" in response_json(response)["message"]
    item = aws.table("orders").get_item(Key={"pk": "ORDER#order-1", "sk": "APPROVAL"})["Item"]
    assert item["approval_status"] == "EXPIRED"
