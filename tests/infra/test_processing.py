"""Queue consumers and the hand-off ingester: partial batch failures, bounded concurrency, visibility
timeouts that outlast retries, and an ingester that can read and delete hand-offs but never write one."""

from __future__ import annotations

import pytest

from contracts.handoff import INCOMING_PREFIX as HANDOFF_PREFIX
from stacks.processing_stack import BATCH_SIZE, MIN_MAX_CONCURRENCY
from stacks.processing_stack import CONSUMERS as CONSUMER_TABLE

CONSUMERS = {
    "fulfilment",
    "notification",
    "analytics",
    "order_finaliser",
    "inventory_ledger",
    "delivery_updates",
    "activity",
}


# --- helpers shared with the other infra tests ---------------------------------------------------


def resources(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template.get("Resources", {}).items() if v["Type"] == resource_type}


def cross_stack_target(synthesized, value) -> tuple[str, dict]:
    """(stack key, producer-side value) of a reference into another stack, for either CDK style:
    Fn::ImportValue of an export, or Fn::GetStackOutput of an output (weak references)."""
    if "Fn::GetStackOutput" in value:
        ref = value["Fn::GetStackOutput"]
        for key, template in synthesized.templates.items():
            if (
                ref["OutputName"] in template.get("Outputs", {})
                and template_stack_name(synthesized, key) == ref["StackName"]
            ):
                return key, template["Outputs"][ref["OutputName"]]["Value"]
    if "Fn::ImportValue" in value:
        for key, template in synthesized.templates.items():
            for output in template.get("Outputs", {}).values():
                if output.get("Export", {}).get("Name") == value["Fn::ImportValue"]:
                    return key, output["Value"]
    raise AssertionError(f"not a resolvable cross-stack reference: {value}")


def template_stack_name(synthesized, key: str) -> str:
    return synthesized.app.stacks[key].stack_name


def logical_id(value) -> str:
    """Logical id behind a Ref or Fn::GetAtt."""
    if "Ref" in value:
        return value["Ref"]
    if "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    raise AssertionError(f"not a Ref/GetAtt: {value}")


def statements(template: dict, role_prefix: str) -> list[dict]:
    """Allow statements of every policy attached to roles whose logical id starts with `role_prefix`."""
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        roles = [r["Ref"] for r in policy["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            found += [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert found, f"no policy for role {role_prefix}*"
    return found


def actions_of(stmts: list[dict]) -> set[str]:
    out: set[str] = set()
    for s in stmts:
        out |= set([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    return out


# --- tests ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mappings(sandbox):
    found = resources(sandbox.templates["processing"], "AWS::Lambda::EventSourceMapping")
    assert len(found) == len(CONSUMERS)
    return found


def test_every_sqs_mapping_reports_partial_failures_with_bounded_concurrency(sandbox, mappings):
    expected = max(MIN_MAX_CONCURRENCY, sandbox.app.config.consumer_max_concurrency)
    for logical, mapping in mappings.items():
        props = mapping["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], logical
        assert props["ScalingConfig"]["MaximumConcurrency"] == expected, logical
        assert props["ScalingConfig"]["MaximumConcurrency"] >= 2, logical  # Lambda's floor
        assert props["BatchSize"] == BATCH_SIZE, logical


def test_batching_window_only_on_standard_queues(sandbox, mappings):
    messaging = sandbox.templates["messaging"]
    for logical, mapping in mappings.items():
        key, arn = cross_stack_target(sandbox, mapping["Properties"]["EventSourceArn"])
        assert key == "messaging"
        queue = messaging["Resources"][logical_id(arn)]["Properties"]
        if queue.get("FifoQueue"):
            assert "MaximumBatchingWindowInSeconds" not in mapping["Properties"], logical
        else:
            assert mapping["Properties"]["MaximumBatchingWindowInSeconds"] > 0, logical


@pytest.mark.parametrize("stage", ["sandbox", "production", "local"])
def test_visibility_timeout_is_at_least_six_consumer_timeouts(stage, request):
    """AWS's rule for SQS event sources: otherwise a message being retried by Lambda reappears."""
    synthesized = request.getfixturevalue(stage)
    processing, messaging = synthesized.templates["processing"], synthesized.templates["messaging"]
    mapped_queues = set()
    for mapping in resources(processing, "AWS::Lambda::EventSourceMapping").values():
        function = processing["Resources"][logical_id(mapping["Properties"]["FunctionName"])]["Properties"]
        _, arn = cross_stack_target(synthesized, mapping["Properties"]["EventSourceArn"])
        queue = messaging["Resources"][logical_id(arn)]["Properties"]
        assert function["Timeout"] * 6 <= queue["VisibilityTimeout"], (function["Handler"], queue)
        mapped_queues.add(logical_id(arn))
    assert len(mapped_queues) == len(CONSUMERS)  # one consumer per queue, no queue consumed twice


def test_each_consumer_runs_its_design_handler(sandbox):
    consumers = sandbox.app.stacks["processing"].consumers
    assert set(consumers) == CONSUMERS
    handlers = {
        f["Properties"]["Handler"] for f in resources(sandbox.templates["processing"], "AWS::Lambda::Function").values()
    }
    assert {handler for handler, _actions, _prefix in CONSUMER_TABLE.values()} | {
        "handoff.handlers.ingest.lambda_handler"
    } == handlers


def test_each_consumer_touches_only_its_own_partitions_of_the_orders_table(sandbox):
    """Least privilege on the single table: item actions limited by `dynamodb:LeadingKeys` to the key
    prefixes the consumer's repository writes, never a table-wide grant, never a Scan."""
    processing = sandbox.app.stacks["processing"]
    template = sandbox.templates["processing"]
    for name, function in processing.consumers.items():
        _handler, actions, prefix = CONSUMER_TABLE[name]
        role = processing.get_logical_id(function.role.node.default_child)
        table_statements = [s for s in statements(template, role) if "OrdersTable" in str(s["Resource"])]
        if not actions:  # the activity consumer: its Express machine writes the counters
            assert table_statements == [], name
            continue
        assert len(table_statements) == 1, (name, table_statements)
        (statement,) = table_statements
        assert sorted(actions_of([statement])) == sorted(f"dynamodb:{action}" for action in actions), name
        assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{prefix}*"]}}


def test_consumers_cannot_touch_the_inventory_table_or_publish(sandbox):
    """Choreography: consumers record what happened; they never publish events or move stock.
    The only queues they may send to are their own dead-letter queue for failed async invocations and
    (the hand-off ingester) its on-failure destination."""
    template = sandbox.templates["processing"]
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = actions_of([statement])
            assert "sns:Publish" not in actions
            if "sqs:SendMessage" in actions:
                assert logical_id(statement["Resource"]).startswith(
                    ("LambdaPackagingAsyncInvokeFailures", "HandoffIngestAsyncInvokeOnFailure")
                )
            assert "InventoryTable" not in str(statement["Resource"])


def test_handoff_ingest_may_list_get_delete_but_never_put(sandbox):
    template = sandbox.templates["processing"]
    stmts = statements(template, "HandoffIngestRole")
    s3_actions = {a for a in actions_of(stmts) if a.startswith("s3:")}
    assert s3_actions == {"s3:ListBucket", "s3:GetObject", "s3:DeleteObject"}
    assert not any("Put" in a or a.endswith("*") for a in s3_actions)
    for statement in stmts:
        if statement["Action"] == "s3:ListBucket":
            assert statement["Condition"] == {"StringLike": {"s3:prefix": [f"{HANDOFF_PREFIX}*"]}}
        elif "s3:GetObject" in statement["Action"]:
            joined = statement["Resource"]["Fn::Join"][1]
            assert joined[-1] == f"/{HANDOFF_PREFIX}*"  # objects under incoming/ only
            key, value = cross_stack_target(sandbox, joined[0])
            assert key == "data" and logical_id(value).startswith("HandoffBucket")


def test_handoff_ingest_runs_every_minute_with_a_dead_letter_queue(sandbox):
    template = sandbox.templates["processing"]
    (rule,) = resources(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    (target,) = rule["Properties"]["Targets"]
    ingest_id = sandbox.app.stacks["processing"].get_logical_id(
        sandbox.app.stacks["processing"].handoff_ingest.node.default_child
    )
    assert logical_id(target["Arn"]) == ingest_id
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    function = template["Resources"][ingest_id]["Properties"]
    assert function["Timeout"] < 60  # finishes before the next scheduled run
