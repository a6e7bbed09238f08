"""The checkout saga as deployed: the states docs/design.md flow 5 names, jittered retries, every
failure routed into compensation, a callback task with a timeout, full logging and tracing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from contracts.tables import ORDER_PREFIX
from stacks.workflow_stack import APPROVAL_THRESHOLD, CHECKOUT_TASKS, ORDER_ITEM_ACTIONS
from tests.infra.test_processing import actions_of, cross_stack_target, logical_id, resources, statements

TOKEN = "<token>"


def machine_of(synthesized, prefix: str = "Checkout") -> dict:
    """The workflow stack's state machine whose logical id starts with `prefix` (the checkout, or the
    `ActivityCounters` Express machine)."""
    (machine,) = [
        m
        for logical, m in resources(synthesized.templates["workflow"], "AWS::StepFunctions::StateMachine").items()
        if logical.startswith(prefix)
    ]
    return machine


def definition(synthesized, prefix: str = "Checkout") -> dict:
    """The state machine's ASL: DefinitionString is an Fn::Join whose tokens (ARNs) become <token>."""
    machine = machine_of(synthesized, prefix)
    body = machine["Properties"]["DefinitionString"]
    if isinstance(body, dict):
        delimiter, parts = body["Fn::Join"]
        body = delimiter.join(p if isinstance(p, str) else TOKEN for p in parts)
    return json.loads(body)


def all_states(states: dict) -> Iterator[tuple[str, dict]]:
    """Every state, including those inside Map item processors and Parallel branches."""
    for name, state in states.items():
        yield name, state
        if state["Type"] == "Map":
            yield from all_states(state["ItemProcessor"]["States"])
        if state["Type"] == "Parallel":
            for branch in state["Branches"]:
                yield from all_states(branch["States"])


@pytest.fixture(scope="module")
def asl(sandbox) -> dict:
    return definition(sandbox)


@pytest.fixture(scope="module")
def states(asl) -> dict[str, dict]:
    return dict(all_states(asl["States"]))


def test_flow_has_map_parallel_choice_wait_task_and_fail(states):
    types = {state["Type"] for state in states.values()}
    assert {"Map", "Parallel", "Choice", "Wait", "Task", "Fail", "Succeed"} <= types


def test_happy_path_order(asl, states):
    """Reserve all -> pay and quote -> approval if large -> wait -> ship -> COMPLETED."""
    assert asl["StartAt"] == "ReserveItems" and states["ReserveItems"]["ItemsPath"] == "$.stock"
    assert states["ReserveItems"]["Next"] == "ChargeAndQuote"
    branches = [b["StartAt"] for b in states["ChargeAndQuote"]["Branches"]]
    assert branches == ["ChargePayment", "QuoteShipping"]
    choice = states[states["ChargeAndQuote"]["Next"]]
    (rule,) = choice["Choices"]
    assert rule == {"Variable": "$.total", "NumericGreaterThanEquals": APPROVAL_THRESHOLD, "Next": "AwaitApproval"}
    assert states["AwaitApproval"]["Next"] == choice["Default"] == "WarehouseHandover"
    assert states["WarehouseHandover"]["Type"] == "Wait" and states["WarehouseHandover"]["Seconds"] > 0
    assert states["WarehouseHandover"]["Next"] == "ShipOrder"
    assert states["ShipOrder"]["Next"] == "MarkCompleted"
    assert states["MarkCompleted"]["Parameters"]["status"] == "COMPLETED"


def test_every_task_retries_with_exponential_backoff_and_full_jitter(states):
    tasks = {name: s for name, s in states.items() if s["Type"] == "Task"}
    assert set(tasks) == {
        "ReserveItem",
        "ChargePayment",
        "QuoteShipping",
        "AwaitApproval",
        "ShipOrder",
        "MarkCompleted",
        "RefundPayment",
        "ReleaseItem",
        "MarkCancelled",
    }
    for name, task in tasks.items():
        assert task.get("Retry"), name
        for retry in task["Retry"]:
            assert retry["BackoffRate"] == 2, name
            assert retry["JitterStrategy"] == "FULL", name
            assert retry["MaxDelaySeconds"] > 0, name
            assert "States.ALL" not in retry["ErrorEquals"], f"{name} must not retry business errors"
            assert "Lambda.TooManyRequestsException" in retry["ErrorEquals"], name


def test_retry_and_catch_error_names_are_the_contracts_exception_classes(states):
    """Lambda reports an exception's class name as errorType; the rules must name the same classes, so
    renaming one in contracts/errors.py renames the rule (and this test sees a stale literal)."""
    from contracts.errors import BUSINESS_ERRORS, TRANSIENT_ERRORS, ApprovalRejected, StorefrontError

    named = {
        e for s in states.values() for rule in s.get("Retry", []) + s.get("Catch", []) for e in rule["ErrorEquals"]
    }
    named |= {c["StringEquals"] for s in states.values() for c in s.get("Choices", []) if "StringEquals" in c}
    ours = {e for e in named if not e.startswith(("States.", "Lambda."))}
    assert ours == {cls.__name__ for cls in (*BUSINESS_ERRORS, *TRANSIENT_ERRORS, ApprovalRejected)}
    assert all(issubclass(cls, StorefrontError) for cls in (*BUSINESS_ERRORS, *TRANSIENT_ERRORS, ApprovalRejected))


def test_payment_retries_gateway_outages_and_catches_declines(states):
    (retry,) = states["ChargePayment"]["Retry"]
    assert {"PaymentGatewayUnavailable", "Lambda.ServiceException"} <= set(retry["ErrorEquals"])
    catches = states["ChargeAndQuote"]["Catch"]
    assert catches[0]["ErrorEquals"] == ["PaymentDeclined"]
    assert catches[-1]["ErrorEquals"] == ["States.ALL"]  # States.ALL must come last


def test_every_catch_routes_into_the_compensation_chain(states):
    """Refund only if charged -> release every item -> mark CANCELLED -> Fail."""
    catchers = {name: s["Catch"] for name, s in states.items() if "Catch" in s}
    assert {"ReserveItems", "ChargeAndQuote", "AwaitApproval", "ShipOrder"} <= set(catchers)
    targets = {name: {c["Next"] for c in catches} for name, catches in catchers.items()}
    assert targets.pop("ChargeAndQuote") == {"MayHaveCharged"}
    assert set().union(*targets.values()) == {"WasPaymentCharged"}
    for catches in catchers.values():
        assert all(c["ResultPath"] == "$.error" for c in catches)  # the order input survives the error

    refund_check = states["WasPaymentCharged"]
    (rule,) = refund_check["Choices"]
    assert rule["IsPresent"] is True and rule["Variable"] == "$.checkout.payment" and rule["Next"] == "RefundPayment"
    assert refund_check["Default"] == states["RefundPayment"]["Next"] == "ReleaseItems"
    assert states["ReleaseItems"]["Type"] == "Map" and states["ReleaseItems"]["ItemsPath"] == "$.stock"
    assert states["ReleaseItems"]["Next"] == "MarkCancelled"
    assert states["MarkCancelled"]["Parameters"]["status"] == "CANCELLED"
    failed = states[states["MarkCancelled"]["Next"]]
    assert failed["Type"] == "Fail" and failed["Error"] and failed["Cause"]


def test_a_failed_parallel_refunds_unless_the_charge_was_declined(states):
    """The Parallel drops its branches' results when one fails: a charge that succeeded before the
    shipping quote failed is invisible in the state, so only a declined charge skips the refund."""
    choice = states["MayHaveCharged"]
    (rule,) = choice["Choices"]
    assert rule == {"Variable": "$.error.Error", "StringEquals": "PaymentDeclined", "Next": "ReleaseItems"}
    assert choice["Default"] == "RefundPayment"


@pytest.mark.parametrize("stage", ["sandbox", "local"])
def test_approval_waits_for_a_task_token_with_the_configured_timeout(stage, request):
    synthesized = request.getfixturevalue(stage)
    states = dict(all_states(definition(synthesized)["States"]))
    ((name, approval),) = [(n, s) for n, s in states.items() if s.get("Resource", "").endswith(".waitForTaskToken")]
    assert approval["Resource"] == f"arn:{TOKEN}:states:::lambda:invoke.waitForTaskToken"
    assert approval["TimeoutSeconds"] == synthesized.app.config.approval_timeout_seconds
    assert approval["Parameters"]["Payload"] == {"task_token.$": "$$.Task.Token", "order_id.$": "$.order_id"}
    caught = [c["ErrorEquals"] for c in approval["Catch"]]
    assert ["States.Timeout", "ApprovalRejected"] in caught


def test_standard_machine_logs_everything_and_is_traced(sandbox):
    template = sandbox.templates["workflow"]
    props = machine_of(sandbox)["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is True
    assert props["TracingConfiguration"] == {"Enabled": True}
    log_group = logical_id(props["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"])
    retention = template["Resources"][log_group]["Properties"]["RetentionInDays"]
    assert retention == sandbox.app.config.log_retention_days


def test_task_functions_are_the_design_handlers(sandbox):
    functions = sandbox.app.stacks["workflow"].task_functions
    assert set(functions) == {*CHECKOUT_TASKS, "request_approval"}
    template = sandbox.templates["workflow"]
    handlers = {f["Properties"]["Handler"] for f in resources(template, "AWS::Lambda::Function").values()}
    assert handlers == {f"checkout.handlers.tasks.{t}" for t in CHECKOUT_TASKS} | {
        "checkout.handlers.approvals.request_approval"
    }


def test_task_permissions_are_least_privilege(sandbox):
    """Only stock moves touch inventory (shipping may only update: it commits reservations); only
    ship_order publishes; ledger events from the five steps that reserve, release, charge, refund or ship."""
    template = sandbox.templates["workflow"]
    stack = sandbox.app.stacks["workflow"]
    fifo_sender = set()
    for name, function in stack.task_functions.items():
        role_id = logical_id(
            template["Resources"][stack.get_logical_id(function.node.default_child)]["Properties"]["Role"]
        )
        stmts = statements(template, role_id)
        resources_by_action = [(actions_of([s]), s["Resource"]) for s in stmts]
        inventory_actions = set().union(*(a for a, r in resources_by_action if "InventoryTable" in str(r)))
        assert bool(inventory_actions) == (name in {"reserve_item", "release_item", "ship_order"}), name
        if inventory_actions:  # stock moves are conditional updates of the SKU's item, nothing else
            assert inventory_actions == {"dynamodb:UpdateItem"}, name
        # The order's own partition only, with exactly the item actions its step performs.
        order_items = [s for s in stmts if "OrdersTable" in str(s["Resource"])]
        if name in ORDER_ITEM_ACTIONS:
            (statement,) = order_items
            assert actions_of([statement]) == {f"dynamodb:{a}" for a in ORDER_ITEM_ACTIONS[name]}, name
            assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{ORDER_PREFIX}*"]}}
        else:
            assert order_items == [], name  # quote_shipping reads nothing
        assert ("sns:Publish" in actions_of(stmts)) == (name == "ship_order"), name
        for actions, resource in resources_by_action:
            if "sqs:SendMessage" in actions and "AsyncInvokeFailures" not in str(resource):
                key, value = cross_stack_target(sandbox, resource)
                assert key == "messaging" and logical_id(value).startswith("InventoryEventsQueue")
                fifo_sender.add(name)
    assert fifo_sender == {"reserve_item", "release_item", "charge_payment", "refund_payment", "ship_order"}
