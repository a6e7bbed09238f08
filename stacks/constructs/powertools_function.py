"""A Python Lambda function with the defaults every function of this app needs, and nothing to forget.

All functions of a stack share one code asset (the `lambdas/` directory plus the shared `contracts/`
package, handler paths relative to it) and one dependency layer, held by `LambdaPackaging.of(stack)`.
Each function gets its own role (no AWS-managed policy: it may write only to its own log group), an
explicit log group (encrypted with the stage's log key when it has one), active X-Ray tracing, an
explicit memory size and timeout, the Powertools environment variables and a dead-letter queue for
asynchronous invocations. A function that something invokes asynchronously (a schedule, a bucket or
topic notification) also says so (`PowertoolsFunctionProps.asynchronous`): its retries and maximum
event age are then chosen, not AWS's defaults (2 retries, 6 hours), and an event that runs out of
both goes to its own on-failure queue, which the observability stack alarms on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from aws_cdk import CfnResource, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.implied_dependency import drop_implied_role_dependency
from stacks.constructs.lambda_packaging import LambdaPackaging, LambdaPackagingProps
from stacks.nag import acknowledge, acknowledge_older_runtime

METRICS_NAMESPACE = "Storefront"


@dataclass(frozen=True)
class SharedFunctionProps:
    """What every function of a stack has in common (one value per stack, not per function)."""

    packaging: LambdaPackagingProps
    # CloudWatch keeps logs forever unless told otherwise; a month covers an incident review.
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    # Of the log group: RETAIN keeps the logs of a deleted stack.
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    # Why running a Python runtime older than the newest CDK knows is acceptable here (it then
    # acknowledges AwsSolutions-L1). None: an older runtime stays a cdk-nag finding until upgraded.
    older_runtime_reason: str | None = None
    # Customer managed key of the log groups (the stage's `encryptionKeys: cmk`); None: the service's own.
    log_encryption_key: kms.IKey | None = None


@dataclass(frozen=True)
class AsyncInvokeProps:
    """How Lambda retries an asynchronous invocation that failed, and for how long an event may wait."""

    retry_attempts: int  # 0-2
    max_event_age: Duration  # 60 s to 6 h


@dataclass(frozen=True)
class PowertoolsFunctionProps:
    """`handler` is relative to `lambdas/` (docs/design.md); `service_name` names the function in
    Powertools logs, metrics and traces."""

    handler: str
    service_name: str
    description: str
    environment: Mapping[str, str] = field(default_factory=dict)
    timeout: Duration = Duration.seconds(10)
    memory_size: int = 256
    log_level: str = "INFO"
    # Set for a function invoked asynchronously (None: only synchronous callers and event source mappings).
    asynchronous: AsyncInvokeProps | None = None


class PowertoolsFunction(Construct):
    """`.function` is the Lambda function; grant it access with the resources' `grant_*` methods.
    `.on_failure_queue`: where asynchronous invocations that exhausted their retries or age go (None
    for a function that is not invoked asynchronously)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, shared: SharedFunctionProps, props: PowertoolsFunctionProps
    ) -> None:
        super().__init__(scope, construct_id)
        packaging = LambdaPackaging.of(self, shared.packaging)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=shared.log_retention,
            removal_policy=shared.removal_policy,
            encryption_key=shared.log_encryption_key,
        )
        # Own role, no AWSLambdaBasicExecutionRole: that managed policy may write to every log group.
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{props.service_name} Lambda function",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=packaging.runtime,
            architecture=packaging.architecture,
            code=packaging.code,
            handler=props.handler,
            layers=[packaging.dependencies.layer],
            description=props.description,
            role=self.role,
            log_group=self.log_group,
            timeout=props.timeout,
            memory_size=props.memory_size,
            tracing=lambda_.Tracing.ACTIVE,
            dead_letter_queue=packaging.async_failures,
            environment={
                "POWERTOOLS_SERVICE_NAME": props.service_name,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": props.log_level,
                **props.environment,
            },
        )
        drop_implied_role_dependency(cast(CfnResource, self.function.node.default_child), self.role)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions (AWS documents Resource *).",
        )
        if shared.older_runtime_reason is not None:
            acknowledge_older_runtime(self.function, packaging.runtime, shared.older_runtime_reason)
        self.on_failure_queue: sqs.Queue | None = None
        if props.asynchronous is not None:
            self._configure_async_invoke(props.asynchronous, shared.removal_policy)

    def _configure_async_invoke(self, props: AsyncInvokeProps, removal_policy: RemovalPolicy) -> None:
        """The on-failure destination records the event with the error and the attempt count (richer
        than the DLQ's bare event); the DLQ stays as cdk-nag's LambdaDLQ wants, for the same failures."""
        self.on_failure_queue = sqs.Queue(
            self,
            "AsyncInvokeOnFailure",
            retention_period=Duration.days(14),  # the maximum: time to inspect and replay the event
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy,
        )
        acknowledge(
            self.on_failure_queue,
            "Serverless::Serverless-SQSRedrivePolicy",
            "This queue is the function's on-failure destination: the end of the line, watched by a depth alarm.",
        )
        acknowledge(
            self.on_failure_queue,
            "AwsSolutions-SQS3",
            "This queue is a Lambda on-failure destination, which cdk-nag does not count as a DLQ: it is the "
            "end of the line for failed asynchronous invocations (14 days to inspect and replay).",
        )
        self.function.configure_async_invoke(
            retry_attempts=props.retry_attempts,
            max_event_age=props.max_event_age,
            on_failure=destinations.SqsDestination(self.on_failure_queue),
        )
