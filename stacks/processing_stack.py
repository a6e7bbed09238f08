"""Asynchronous consumers: one Lambda per queue, plus the scheduled S3 hand-off ingester.

Every queue consumer reports partial batch failures (only the failed messages return to the queue;
after maxReceiveCount they move to the queue's DLQ) and has a maximum concurrency, so a backlog is
drained at a pace DynamoDB and downstreams can take instead of all at once.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from contracts.handoff import INCOMING_PREFIX
from contracts.tables import ACTIVITY_PREFIX, ANALYTICS_PREFIX, HANDOFF_PREFIX, LEDGER_PREFIX, ORDER_PREFIX
from stacks.config import StageConfig
from stacks.constructs.lambda_packaging import LambdaPackaging
from stacks.constructs.powertools_function import AsyncInvokeProps, PowertoolsFunction, PowertoolsFunctionProps
from stacks.grants import grant_items
from stacks.messaging_stack import CONSUMER_TIMEOUT
from stacks.nag import acknowledge, acknowledge_wildcard_resource
from stacks.stage_defaults import shared_function_props

BATCH_SIZE = 10
# Standard queues only: wait up to this long to fill a batch (fewer, fuller invocations).
MAX_BATCHING_WINDOW = Duration.seconds(2)
# Each queue consumer: its handler, and the orders-table items its repository touches (action, key prefix).
# The activity consumer touches none: its Express machine writes the counters (stacks/constructs/activity_counters.py).
CONSUMERS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "fulfilment": ("orders.handlers.fulfilment.lambda_handler", ("GetItem", "PutItem", "UpdateItem"), ORDER_PREFIX),
    "notification": ("notification.handlers.consumer.lambda_handler", ("UpdateItem",), ORDER_PREFIX),
    "analytics": ("analytics.handlers.consumer.lambda_handler", ("UpdateItem",), ANALYTICS_PREFIX),
    "order_finaliser": ("orders.handlers.finaliser.lambda_handler", ("GetItem", "UpdateItem"), ORDER_PREFIX),
    "inventory_ledger": ("inventory.handlers.ledger.lambda_handler", ("PutItem",), LEDGER_PREFIX),
    "delivery_updates": ("orders.handlers.deliveries.lambda_handler", ("GetItem", "UpdateItem"), ORDER_PREFIX),
    "activity": ("activity.handlers.consumer.lambda_handler", (), ACTIVITY_PREFIX),
}
# Idempotent by themselves: the finaliser's conditional status update, the activity machine's markers.
WITHOUT_IDEMPOTENCY_TABLE = frozenset({"order_finaliser", "activity"})
# Lambda's floor for an SQS event source's maximum concurrency.
MIN_MAX_CONCURRENCY = 2
HANDOFF_SCHEDULE = events.Schedule.rate(Duration.minutes(1))
# The ingester must finish before the next scheduled run starts.
HANDOFF_TIMEOUT = Duration.seconds(50)
# A failed run is retried once (Lambda waits about a minute first): that absorbs a transient error
# without paging. A run still undone after 5 minutes is stale - five newer runs have been scheduled
# and pick the same objects up - so it goes to the on-failure queue, which alarms: two failures in a
# row, or runs that cannot start (throttling), mean objects pile up in the bucket.
HANDOFF_ASYNC_INVOKE = AsyncInvokeProps(retry_attempts=1, max_event_age=Duration.minutes(5))


class ProcessingStack(Stack):
    """`.consumers` maps consumer name -> Lambda function; `.handoff_ingest` is the scheduled ingester."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        orders_table: dynamodb.ITable,
        idempotency_table: dynamodb.ITable,
        handoff_bucket: s3.IBucket,
        fanout_queues: dict[str, sqs.IQueue],
        cancel_window_queue: sqs.IQueue,
        inventory_events_queue: sqs.IQueue,
        delivery_updates_queue: sqs.IQueue,
        activity_queue: sqs.IQueue,
        activity_state_machine: sfn.IStateMachine,
        log_key: kms.IKey | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.shared = shared_function_props(config, log_key)
        self.consumers: dict[str, lambda_.Function] = {}
        with_idempotency = {"ORDERS_TABLE": orders_table.table_name, "IDEMPOTENCY_TABLE": idempotency_table.table_name}

        # Fan-out consumers (flow 3) and the inventory ledger record each message once, through
        # Powertools idempotency; the finaliser's conditional status update is idempotent by itself.
        for name, queue in fanout_queues.items():
            self._consumer(name, queue, with_idempotency, f"Consumes the {name} fan-out queue")
        self._consumer(
            "order_finaliser",
            cancel_window_queue,
            {"ORDERS_TABLE": orders_table.table_name, "CANCEL_WINDOW_QUEUE_URL": cancel_window_queue.queue_url},
            "Confirms orders whose cancel grace period has passed",
        )
        self._consumer(
            "inventory_ledger",
            inventory_events_queue,
            with_idempotency,
            "Records ordered inventory and payment events",
            fifo=True,
        )
        self._consumer(
            "delivery_updates",
            delivery_updates_queue,
            with_idempotency,
            "Applies partner delivery updates (queued by API Gateway) to the orders",
        )
        # Storefront activity: one synchronous Express execution per batch, on that one machine only.
        self._consumer(
            "activity",
            activity_queue,
            {"ACTIVITY_STATE_MACHINE_ARN": activity_state_machine.state_machine_arn},
            "Counts storefront activity, one Express execution per batch",
        )
        activity_state_machine.grant(self.consumers["activity"], "states:StartSyncExecution")
        for name, function in self.consumers.items():
            _handler, actions, key_prefix = CONSUMERS[name]
            if actions:
                grant_items(orders_table, function, actions, key_prefixes=[key_prefix])
            if name not in WITHOUT_IDEMPOTENCY_TABLE:
                idempotency_table.grant_read_write_data(function)

        self.handoff_ingest = self._handoff_ingest(handoff_bucket, orders_table)

    def _consumer(
        self, name: str, queue: sqs.IQueue, environment: dict[str, str], description: str, *, fifo: bool = False
    ) -> None:
        function = PowertoolsFunction(
            self,
            "".join(part.capitalize() for part in name.split("_")) + "Consumer",
            shared=self.shared,
            props=PowertoolsFunctionProps(
                handler=CONSUMERS[name][0],
                service_name=name.replace("_", "-"),
                description=description,
                environment=environment,
                timeout=CONSUMER_TIMEOUT,  # the queue's visibility timeout is 6x this (QueueWithDlq)
            ),
        ).function
        function.add_event_source(
            sources.SqsEventSource(
                queue,
                batch_size=BATCH_SIZE,
                # FIFO event sources reject a batching window: ordering within a group comes first.
                max_batching_window=None if fifo else MAX_BATCHING_WINDOW,
                report_batch_item_failures=True,
                max_concurrency=max(MIN_MAX_CONCURRENCY, self.config.consumer_max_concurrency),
            )
        )
        acknowledge(
            function,
            "Serverless::Serverless-LambdaEventSourceMappingDestination",
            "Lambda supports on-failure destinations only for stream and Kafka sources, not SQS; a message that "
            "keeps failing moves to the queue's own DLQ after maxReceiveCount.",
        )
        self.consumers[name] = function

    def _handoff_ingest(self, bucket: s3.IBucket, orders_table: dynamodb.ITable) -> lambda_.Function:
        """Seed 003: the consumer may list, read and delete hand-off objects, never write them."""
        construct = PowertoolsFunction(
            self,
            "HandoffIngest",
            shared=self.shared,
            props=PowertoolsFunctionProps(
                handler="handoff.handlers.ingest.lambda_handler",
                service_name="handoff-ingest",
                description="Ingests producers' hand-off objects from S3 into DynamoDB, then deletes them",
                environment={"HANDOFF_BUCKET": bucket.bucket_name, "ORDERS_TABLE": orders_table.table_name},
                timeout=HANDOFF_TIMEOUT,
                # The schedule invokes it asynchronously (docstring of HANDOFF_ASYNC_INVOKE).
                asynchronous=HANDOFF_ASYNC_INVOKE,
            ),
        )
        function = construct.function
        assert construct.on_failure_queue is not None  # set for every asynchronously invoked function
        # Runs that failed their retry, or waited too long: the observability stack alarms on the first.
        self.handoff_ingest_failures = construct.on_failure_queue
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{INCOMING_PREFIX}*"]}},
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:DeleteObject"],
                resources=[bucket.arn_for_objects(f"{INCOMING_PREFIX}*")],
            )
        )
        grant_items(orders_table, function, ["PutItem"], key_prefixes=[HANDOFF_PREFIX])
        assert function.role is not None  # PowertoolsFunction gives every function its own role
        acknowledge_wildcard_resource(
            function.role,
            bucket.arn_for_objects(f"{INCOMING_PREFIX}*"),
            "Hand-off object keys are chosen by producers; access is limited to the incoming/ prefix.",
        )
        packaging = LambdaPackaging.of(self, self.shared.packaging)
        events.Rule(
            self,
            "HandoffSchedule",
            description="Runs the S3 hand-off ingester",
            schedule=HANDOFF_SCHEDULE,
            targets=[
                targets.LambdaFunction(
                    function,
                    # A run that cannot be delivered is pointless a few minutes later: the next run
                    # picks the objects up. Undeliverable events are kept for inspection.
                    retry_attempts=2,
                    max_event_age=Duration.minutes(5),
                    dead_letter_queue=packaging.async_failures,
                )
            ],
        )
        return function
