"""Storefront activity as deployed (docs/design.md flow 7; seed 004, Standard vs Express): the activity
counters machine is Express and logs errors only, the checkout stays Standard, and each has the type
because of what it does; the consumer may start that one machine synchronously and nothing else; the
machine may write activity items only, once per event id."""

from __future__ import annotations

import pytest

from contracts.tables import ACTIVITY_PREFIX
from stacks.constructs.activity_counters import ACTIVITY_MACHINE_TIMEOUT, DUPLICATE_CAUSE
from stacks.messaging_stack import CONSUMER_TIMEOUT
from tests.infra.test_processing import actions_of, cross_stack_target, logical_id, resources, statements
from tests.infra.test_workflow import all_states, definition, machine_of

# Express executions end after 5 minutes at most and support neither .sync nor .waitForTaskToken.
EXPRESS_MAX_SECONDS = 300
STAGES = ["sandbox", "production", "local"]


@pytest.fixture(scope="module")
def activity_states(sandbox) -> dict[str, dict]:
    return dict(all_states(definition(sandbox, "ActivityCounters")["States"]))


@pytest.mark.parametrize("stage", STAGES)
def test_the_activity_machine_is_express_logs_errors_only_without_data_and_is_traced(stage, request):
    synthesized = request.getfixturevalue(stage)
    props = machine_of(synthesized, "ActivityCounters")["Properties"]
    assert props["StateMachineType"] == "EXPRESS"
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ERROR"  # not ALL: one execution per batch of clicks
    assert logging["IncludeExecutionData"] is False  # no event payloads in CloudWatch Logs
    assert props["TracingConfiguration"] == {"Enabled": True}
    template = synthesized.templates["workflow"]
    log_group = template["Resources"][logical_id(logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"])]
    assert log_group["Properties"]["RetentionInDays"] == synthesized.app.config.log_retention_days
    assert log_group["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/states/")


@pytest.mark.parametrize("stage", STAGES)
def test_each_machine_has_the_type_its_work_needs(stage, request):
    """Checkout: a human approval that may wait longer than Express's 5 minutes, through a task token
    (Standard only) -> STANDARD. Activity: short, idempotent, started synchronously per batch, no
    callback -> EXPRESS."""
    synthesized = request.getfixturevalue(stage)
    checkout = machine_of(synthesized)["Properties"]
    checkout_states = dict(all_states(definition(synthesized)["States"]))
    waits_for_a_human = [s for s in checkout_states.values() if s.get("Resource", "").endswith(".waitForTaskToken")]
    assert waits_for_a_human
    approval_seconds = synthesized.app.config.approval_timeout_seconds
    assert checkout["StateMachineType"] == "STANDARD"
    if approval_seconds > EXPRESS_MAX_SECONDS:
        assert checkout["StateMachineType"] == "STANDARD"  # an Express execution would be cut off

    activity = machine_of(synthesized, "ActivityCounters")["Properties"]
    activity_states = dict(all_states(definition(synthesized, "ActivityCounters")["States"]))
    assert activity["StateMachineType"] == "EXPRESS"
    assert not [s for s in activity_states.values() if s.get("Resource", "").endswith((".sync", ".waitForTaskToken"))]
    # It answers inside Express's limit and inside the consumer's timeout, which waits for it.
    assert ACTIVITY_MACHINE_TIMEOUT.to_seconds() < min(EXPRESS_MAX_SECONDS, CONSUMER_TIMEOUT.to_seconds())
    assert definition(synthesized, "ActivityCounters")["TimeoutSeconds"] == ACTIVITY_MACHINE_TIMEOUT.to_seconds()


def test_each_event_is_one_transaction_of_its_marker_and_its_counter(activity_states):
    count_each = activity_states["CountEach"]
    assert count_each["Type"] == "Map" and count_each["ItemsPath"] == "$.events"
    # The outcomes replace the entries: lambdas/activity/service.py outcomes_of reads `$.events`.
    assert count_each["ResultPath"] == "$.events" and count_each["End"] is True
    task = activity_states["CountOnce"]
    assert task["Resource"].endswith(":states:::aws-sdk:dynamodb:transactWriteItems")
    marker, counter = task["Parameters"]["TransactItems"]
    assert marker["Put"]["Item"]["pk"] == {"S.$": "$.marker.pk"}
    assert marker["Put"]["ConditionExpression"] == "attribute_not_exists(pk)"  # a repeat changes nothing
    assert counter["Update"]["Key"] == {"pk": {"S.$": "$.counter.pk"}, "sk": {"S.$": "$.counter.sk"}}
    assert counter["Update"]["UpdateExpression"] == "ADD event_count :one"
    assert "ConditionExpression" not in counter["Update"]  # only the marker can fail the condition
    (retry,) = task["Retry"]
    assert "DynamoDb.TransactionCanceledException" in retry["ErrorEquals"]  # TransactionConflict, hot counter
    assert retry["JitterStrategy"] == "FULL" and retry["MaxAttempts"] >= 1


def test_a_repeat_is_a_duplicate_and_any_other_failure_is_reported_not_raised(activity_states):
    task = activity_states["CountOnce"]
    cancelled, everything = task["Catch"]
    assert cancelled["ErrorEquals"] == ["DynamoDb.TransactionCanceledException"]
    assert everything["ErrorEquals"] == ["States.ALL"]
    why = activity_states[cancelled["Next"]]
    (duplicate,) = why["Choices"]
    assert duplicate == {"Variable": "$.error.Cause", "StringMatches": DUPLICATE_CAUSE, "Next": "AlreadyCounted"}
    assert activity_states["AlreadyCounted"]["Parameters"]["outcome"] == "duplicate"
    assert why["Default"] == everything["Next"] == "NotCounted"
    assert activity_states["NotCounted"]["Parameters"]["outcome"] == "failed"
    assert activity_states[task["Next"]]["Parameters"] == {"event_id.$": "$.event_id", "outcome": "counted"}


def test_the_machine_may_put_and_update_activity_items_only(sandbox):
    template = sandbox.templates["workflow"]
    role = logical_id(machine_of(sandbox, "ActivityCounters")["Properties"]["RoleArn"])
    stmts = statements(template, role)
    dynamodb = [s for s in stmts if any(a.startswith("dynamodb:") for a in actions_of([s]))]
    (statement,) = dynamodb
    assert actions_of([statement]) == {"dynamodb:PutItem", "dynamodb:UpdateItem"}
    assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{ACTIVITY_PREFIX}*"]}}
    key, table = cross_stack_target(sandbox, statement["Resource"])
    assert key == "data" and logical_id(table).startswith("OrdersTable")
    assert not {a for a in actions_of(stmts) if a.startswith(("lambda:", "sqs:", "sns:", "states:"))}


def test_the_activity_consumer_may_start_sync_executions_of_that_one_machine_only(sandbox):
    processing = sandbox.app.stacks["processing"]
    template = sandbox.templates["processing"]
    function = processing.consumers["activity"]
    stmts = statements(template, processing.get_logical_id(function.role.node.default_child))
    states = [s for s in stmts if any(a.startswith("states:") for a in actions_of([s]))]
    (statement,) = states
    assert actions_of([statement]) == {"states:StartSyncExecution"}  # not StartExecution, not '*'
    key, machine = cross_stack_target(sandbox, statement["Resource"])
    assert key == "workflow" and logical_id(machine).startswith("ActivityCountersStateMachine")
    assert not [s for s in stmts if "dynamodb" in str(actions_of([s]))]  # the machine writes, not the consumer
    env = template["Resources"][processing.get_logical_id(function.node.default_child)]["Properties"]["Environment"]
    key, arn = cross_stack_target(sandbox, env["Variables"]["ACTIVITY_STATE_MACHINE_ARN"])
    assert key == "workflow" and logical_id(arn).startswith("ActivityCountersStateMachine")


def test_the_activity_queue_has_a_dlq_and_the_web_tier_finds_it_through_discovery(sandbox):
    messaging = sandbox.app.stacks["messaging"]
    queue = sandbox.templates["messaging"]["Resources"][
        messaging.get_logical_id(messaging.activity.queue.node.default_child)
    ]
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 3
    params = [
        p["Properties"]
        for p in resources(sandbox.templates["web"], "AWS::SSM::Parameter").values()
        if p["Properties"]["Name"].endswith("/discovery/activity-queue-url")
    ]
    (param,) = params
    key, url = cross_stack_target(sandbox, param["Value"])
    assert key == "messaging" and logical_id(url).startswith("ActivityQueue")
