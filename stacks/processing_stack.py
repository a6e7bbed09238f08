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
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.config import StageConfig
from stacks.constructs.lambda_packaging import LambdaPackaging
from stacks.constructs.powertools_function import PowertoolsFunction, PowertoolsFunctionProps
from stacks.data_stack import HANDOFF_PREFIX
from stacks.messaging_stack import CONSUMER_TIMEOUT
from stacks.nag import acknowledge, acknowledge_wildcard_resource
from stacks.stage_defaults import shared_function_props

BATCH_SIZE = 10
# Standard queues only: wait up to this long to fill a batch (fewer, fuller invocations).
MAX_BATCHING_WINDOW = Duration.seconds(2)
# Lambda's floor for an SQS event source's maximum concurrency.
MIN_MAX_CONCURRENCY = 2
HANDOFF_SCHEDULE = events.Schedule.rate(Duration.minutes(1))
# The ingester must finish before the next scheduled run starts.
HANDOFF_TIMEOUT = Duration.seconds(50)


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
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.consumers: dict[str, lambda_.Function] = {}
        with_idempotency = {"ORDERS_TABLE": orders_table.table_name, "IDEMPOTENCY_TABLE": idempotency_table.table_name}

        # Fan-out consumers (flow 3) and the inventory ledger record each message once, through
        # Powertools idempotency; the finaliser's conditional status update is idempotent by itself.
        for name, queue in fanout_queues.items():
            self._consumer(name, queue, with_idempotency, f"Consumes the {name} fan-out queue")
        self._consumer("order_finaliser", cancel_window_queue, {"ORDERS_TABLE": orders_table.table_name},
                       "Confirms orders whose cancel grace period has passed")
        self._consumer("inventory_ledger", inventory_events_queue, with_idempotency,
                       "Records ordered inventory and payment events", fifo=True)
        for name, function in self.consumers.items():
            orders_table.grant_read_write_data(function)
            if name != "order_finaliser":
                idempotency_table.grant_read_write_data(function)

        self.handoff_ingest = self._handoff_ingest(handoff_bucket, orders_table)

    def _consumer(self, name: str, queue: sqs.IQueue, environment: dict[str, str], description: str,
                  *, fifo: bool = False) -> None:
        function = PowertoolsFunction(
            self,
            "".join(part.capitalize() for part in name.split("_")) + "Consumer",
            shared=shared_function_props(self.config),
            props=PowertoolsFunctionProps(
                handler=f"{name}.handler.lambda_handler",
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
        function = PowertoolsFunction(
            self,
            "HandoffIngest",
            shared=shared_function_props(self.config),
            props=PowertoolsFunctionProps(
                handler="handoff_ingest.handler.lambda_handler",
                service_name="handoff-ingest",
                description="Ingests producers' hand-off objects from S3 into DynamoDB, then deletes them",
                environment={"HANDOFF_BUCKET": bucket.bucket_name, "ORDERS_TABLE": orders_table.table_name},
                timeout=HANDOFF_TIMEOUT,
            ),
        ).function
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{HANDOFF_PREFIX}*"]}},
            )
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:DeleteObject"],
                resources=[bucket.arn_for_objects(f"{HANDOFF_PREFIX}*")],
            )
        )
        orders_table.grant_write_data(function)
        acknowledge_wildcard_resource(
            function.role,
            bucket.arn_for_objects(f"{HANDOFF_PREFIX}*"),
            "Hand-off object keys are chosen by producers; access is limited to the incoming/ prefix.",
        )
        packaging = LambdaPackaging.of(self, shared_function_props(self.config).packaging)
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
