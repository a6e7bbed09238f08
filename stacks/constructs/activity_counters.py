"""The activity counters (docs/design.md flow 7): an Express state machine that counts one SQS batch of
storefront activity, started synchronously by the activity consumer (StartSyncExecution).

Why Express, when the checkout is Standard (seed 004, Standard vs Express): each execution is a few
hundred milliseconds of DynamoDB writes, at the rate shoppers browse; Express is priced per request and
duration instead of per state transition, starts synchronously (the consumer needs the per-event result
to settle each SQS record), and its at-least-once semantics are fine because every write here is
idempotent. The checkout needs what only Standard gives: exactly-once steps, a one-hour human
approval (Express stops after 5 minutes) and an execution history to audit.

Per event (a Map over `$.events`, as the consumer built them, lambdas/activity/service.py): one
TransactWriteItems of the event's marker (put, only if absent) and the counter's `ADD event_count 1`.
A repeated event finds its marker and the transaction is cancelled with ConditionalCheckFailed: it is
reported `duplicate` and counted nothing. Any other cancellation (TransactionConflict on a hot counter)
or error is retried with jitter, then reported `failed`, and the consumer lets SQS deliver the record
again. Output: `{"events": [{"event_id", "outcome": counted|duplicate|failed}]}`.

Logging at ERROR without execution data: at one execution per batch of shoppers' clicks, logging ALL
with inputs would cost more in CloudWatch Logs than the executions themselves; failed executions and
failed states are still logged, and X-Ray traces every execution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from aws_cdk import CfnResource, Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from contracts.tables import ACTIVITY_COUNTER_ATTRIBUTE, ACTIVITY_PREFIX, PARTITION_KEY, SORT_KEY
from stacks.constructs.implied_dependency import drop_implied_role_dependency
from stacks.grants import grant_items
from stacks.nag import acknowledge

# Well inside the consumer's 30 s timeout, so the consumer always hears the answer.
ACTIVITY_MACHINE_TIMEOUT = Duration.seconds(20)
# The events of one batch are counted side by side (the batch size is 10).
COUNT_CONCURRENCY = 10
TRANSACTION_CANCELLED = "DynamoDb.TransactionCanceledException"
RETRIED_ERRORS = [
    TRANSACTION_CANCELLED,  # TransactionConflict on a hot counter; a duplicate is cancelled again, then caught
    "DynamoDb.ProvisionedThroughputExceededException",
    "DynamoDb.ThrottlingException",
    "DynamoDb.InternalServerErrorException",
]
# The marker is the transaction's first item: only it has a condition.
DUPLICATE_CAUSE = "*reasons [ConditionalCheckFailed*"
LOG_LEVEL = sfn.LogLevel.ERROR


@dataclass(frozen=True)
class ActivityCountersProps:
    log_group_name: str
    log_retention: logs.RetentionDays
    removal_policy: RemovalPolicy
    log_key: kms.IKey | None = None


class ActivityCounters(Construct):
    """`.state_machine` is the Express machine; it may write `ACTIVITY#` items of `table` only."""

    def __init__(
        self, scope: Construct, construct_id: str, *, table: dynamodb.ITable, props: ActivityCountersProps
    ) -> None:
        super().__init__(scope, construct_id)
        event_id = "$.event_id"

        def reported(state_id: str, result: str) -> sfn.Pass:
            return sfn.Pass(
                self, state_id, parameters={"event_id": sfn.JsonPath.string_at(event_id), "outcome": result}
            )

        count_once = sfn.CustomState(
            self,
            "CountOnce",
            state_json={
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:dynamodb:transactWriteItems",
                "Parameters": {
                    "TransactItems": [
                        {
                            "Put": {
                                "TableName": table.table_name,
                                "Item": {
                                    PARTITION_KEY: {"S.$": "$.marker.pk"},
                                    SORT_KEY: {"S.$": "$.marker.sk"},
                                    "expires_at": {"N.$": "$.expires_at"},
                                },
                                "ConditionExpression": f"attribute_not_exists({PARTITION_KEY})",
                            }
                        },
                        {
                            "Update": {
                                "TableName": table.table_name,
                                "Key": {PARTITION_KEY: {"S.$": "$.counter.pk"}, SORT_KEY: {"S.$": "$.counter.sk"}},
                                "UpdateExpression": f"ADD {ACTIVITY_COUNTER_ATTRIBUTE} :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}},
                            }
                        },
                    ]
                },
                "ResultPath": "$.written",
            },
        )
        count_once.add_retry(
            errors=RETRIED_ERRORS,
            interval=Duration.seconds(1),
            backoff_rate=2,
            max_attempts=2,
            jitter_strategy=sfn.JitterType.FULL,
        )
        not_counted = reported("NotCounted", "failed")
        why = (
            sfn.Choice(self, "WhyCancelled")
            .when(
                sfn.Condition.string_matches("$.error.Cause", DUPLICATE_CAUSE), reported("AlreadyCounted", "duplicate")
            )
            .otherwise(not_counted)
        )
        count_once.add_catch(why, errors=[TRANSACTION_CANCELLED], result_path="$.error")
        count_once.add_catch(not_counted, errors=[sfn.Errors.ALL], result_path="$.error")
        count_once.next(reported("Counted", "counted"))

        # Each event's outcome replaces its entry: the output is {"events": [{"event_id", "outcome"}, ...]}.
        count_each = sfn.Map(
            self, "CountEach", items_path="$.events", result_path="$.events", max_concurrency=COUNT_CONCURRENCY
        )
        count_each.item_processor(count_once)

        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=props.log_group_name,
            retention=props.log_retention,
            removal_policy=props.removal_policy,
            encryption_key=props.log_key,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.EXPRESS,  # the module docstring says why
            definition_body=sfn.DefinitionBody.from_chainable(count_each),
            timeout=ACTIVITY_MACHINE_TIMEOUT,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=LOG_LEVEL, include_execution_data=False),
        )
        # The transaction's two item actions, on the activity items only (TransactWriteItems is
        # authorised per item action; LeadingKeys holds for each item).
        grant_items(table, self.state_machine, ["PutItem", "UpdateItem"], key_prefixes=[ACTIVITY_PREFIX])
        drop_implied_role_dependency(cast(CfnResource, self.state_machine.node.default_child), self.state_machine.role)
        acknowledge(
            self.state_machine,
            "AwsSolutions-SF1",
            "Express machine at storefront-click volume: logging ALL events would cost more than the executions; "
            "ERROR level logs every failed execution and state, and X-Ray traces each execution.",
        )
        acknowledge(
            self.state_machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs delivery (logs:CreateLogDelivery, ...) and X-Ray actions support no resource-level "
            "permissions; AWS documents Resource * for a state machine's logging and tracing.",
        )
