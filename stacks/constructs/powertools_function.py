"""A Python Lambda function with the defaults every function of this app needs, and nothing to forget.

All functions of a stack share one code asset (the `lambdas/` directory, handler paths relative to
it) and one dependency layer, held by `LambdaPackaging.of(stack)`. Each function gets its own role
(no AWS-managed policy: it may write only to its own log group), an explicit log group with the
stage's retention, active X-Ray tracing, an explicit memory size and timeout, the Powertools
environment variables and a dead-letter queue for asynchronous invocations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Mapping

import jsii
from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IValidation

from stacks.config import StageConfig
from stacks.constructs.dependency_layer import LAMBDAS_DIR, DependencyLayer, DependencyLayerProps
from stacks.nag import acknowledge

METRICS_NAMESPACE = "Storefront"

# Never part of the code asset: tests run on the build machine, the requirements go in the layer.
CODE_EXCLUDES = ["tests", "**/tests", "**/__pycache__", "**/*.pyc", ".pytest_cache", "requirements*.txt", "conftest.py"]

# CloudWatch Logs accepts only these retention periods (days).
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS, 150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    """`config.log_retention_days` as the enum CDK wants; refuses a period CloudWatch does not offer."""
    try:
        return _RETENTION[days]
    except KeyError:
        raise ValueError(f"log retention {days} days: CloudWatch accepts only {sorted(_RETENTION)}") from None


def lambda_runtime(config: StageConfig) -> lambda_.Runtime:
    """The stage's Python runtime: CDK's constant when it knows the name, else a Python-family runtime."""
    known = {r.name: r for r in lambda_.Runtime.ALL if r.family == lambda_.RuntimeFamily.PYTHON}
    return known.get(config.lambda_runtime) or lambda_.Runtime(config.lambda_runtime, lambda_.RuntimeFamily.PYTHON)


def lambda_architecture(config: StageConfig) -> lambda_.Architecture:
    return {"ARM_64": lambda_.Architecture.ARM_64, "X86_64": lambda_.Architecture.X86_64}[config.lambda_architecture]


def removal_policy(config: StageConfig) -> RemovalPolicy:
    return RemovalPolicy.DESTROY if config.destroy_on_delete else RemovalPolicy.RETAIN


def latest_python_runtime() -> lambda_.Runtime:
    return max(
        (r for r in lambda_.Runtime.ALL if r.family == lambda_.RuntimeFamily.PYTHON),
        key=lambda r: tuple(int(p) for p in r.name.removeprefix("python").split(".")),
    )


def iam5_resource_finding(scope: Construct, resource: str) -> str:
    """The id cdk-nag gives a wildcard-resource finding (`AwsSolutions-IAM5[Resource::...]`) for
    `resource`, rendered the way its flattenCfnReference does (Ref -> <Id>, GetAtt -> <Id.Attr>).
    Lets an acknowledgement name exactly one resource pattern in every stage and environment."""

    def flatten(node: object) -> str:
        if node is None:
            return ""
        if isinstance(node, str):
            return node.replace("${", "<").replace("}", ">")
        if isinstance(node, dict):
            if "Fn::Join" in node:
                delimiter, items = node["Fn::Join"]
                return delimiter.join(flatten(item) for item in items)
            if "Fn::Sub" in node:
                return flatten(node["Fn::Sub"])
            if "Fn::GetAtt" in node:
                resource_id, attribute = node["Fn::GetAtt"]
                return f"<{flatten(resource_id)}.{flatten(attribute)}>"
            if "Fn::ImportValue" in node:
                return flatten(node["Fn::ImportValue"])
            if "Ref" in node:
                return f"<{flatten(node['Ref'])}>"
        return json.dumps(node, separators=(",", ":"))

    return f"AwsSolutions-IAM5[Resource::{flatten(Stack.of(scope).resolve(resource))}]"


@jsii.implements(IValidation)
class _AcknowledgeOnceResolved:
    """Validation hook that records an acknowledgement when the tree is validated: by then CDK has
    replaced cross-stack references with their final form (e.g. Fn::GetStackOutput), which is the
    form cdk-nag prints in a finding id."""

    def __init__(self, construct: Construct, rule: Callable[[], str], reason: str) -> None:
        self.construct, self.rule, self.reason = construct, rule, reason

    def validate(self) -> list[str]:
        acknowledge(self.construct, self.rule(), self.reason)
        return []


def acknowledge_wildcard_resource(construct: Construct, resource: str, reason: str) -> None:
    """Acknowledge `AwsSolutions-IAM5[Resource::<resource>]` on `construct`, also when `resource`
    refers to another stack (its rendering is known only after references are resolved)."""
    construct.node.add_validation(_AcknowledgeOnceResolved(construct, lambda: iam5_resource_finding(construct, resource), reason))


@jsii.implements(IValidation)
class _DropImpliedDependsOn:
    """CDK makes a function (or state machine) depend on its role construct, which renders
    `DependsOn: [Role, RoleDefaultPolicy]`. The role half is implied by the `Fn::GetAtt Role.Arn` the
    resource already holds (cfn-lint W3005); the policy half is real - a function must not run, and
    an event source mapping must not be created, before its permissions exist - and stays. Runs at
    validation time, after CDK has turned construct dependencies into DependsOn entries."""

    def __init__(self, source: CfnResource, implied: CfnResource) -> None:
        self.source, self.implied = source, implied

    def validate(self) -> list[str]:
        self.source.remove_resource_dependency(self.implied)
        return []


def drop_implied_role_dependency(resource: CfnResource, role: iam.Role) -> None:
    """Remove the DependsOn on `role` that a GetAtt on it already implies (see _DropImpliedDependsOn)."""
    resource.node.add_validation(_DropImpliedDependsOn(resource, role.node.default_child))


def acknowledge_topic_key_grant(function: lambda_.Function) -> None:
    """`topic.grant_publish` on a KMS-encrypted topic also grants `kms:GenerateDataKey*` (the
    GenerateDataKey variants SNS may call) on that topic's key - one key, not every key."""
    acknowledge(
        function.role,
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
        "Publishing to the KMS-encrypted order-events topic needs kms:GenerateDataKey* on its key; the grant "
        "names that single key.",
    )


class LambdaPackaging(Construct):
    """Per-stack singleton: the shared code asset, the dependency layer and the async-failure DLQ.

    A CDK asset-backed `Code` can be bound to one stack only, so each stack gets its own handle; the
    cloud assembly still stores one copy of each asset (same hash), and pip runs once per synth.
    """

    CONSTRUCT_ID = "LambdaPackaging"

    @classmethod
    def of(cls, scope: Construct, config: StageConfig) -> "LambdaPackaging":
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(cls.CONSTRUCT_ID)
        if isinstance(existing, LambdaPackaging):
            return existing
        return cls(stack, cls.CONSTRUCT_ID, config=config)

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.runtime = lambda_runtime(config)
        self.architecture = lambda_architecture(config)
        self.code = lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=CODE_EXCLUDES)
        self.dependencies = DependencyLayer(
            self, "Dependencies", props=DependencyLayerProps(runtime=self.runtime, architecture=self.architecture)
        )
        # Failed *asynchronous* invocations (EventBridge schedules, retried events) land here after
        # Lambda's own retries instead of vanishing; synchronous callers see their errors directly.
        self.async_failures = sqs.Queue(
            self,
            "AsyncInvokeFailures",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy(config),
        )
        acknowledge(
            self.async_failures,
            "Serverless::Serverless-SQSRedrivePolicy",
            "This queue is the functions' dead-letter target: the end of the line, kept 14 days for redrive.",
        )


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


class PowertoolsFunction(Construct):
    """`.function` is the Lambda function; grant it access with the resources' `grant_*` methods."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, props: PowertoolsFunctionProps) -> None:
        super().__init__(scope, construct_id)
        packaging = LambdaPackaging.of(self, config)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=log_retention(config.log_retention_days),
            removal_policy=removal_policy(config),
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
        drop_implied_role_dependency(self.function.node.default_child, self.role)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions (AWS documents Resource *).",
        )
        # Only the local cloud may lag behind: it runs Python Lambdas with its own interpreter. A real
        # stage on an older runtime keeps failing cdk-nag (AwsSolutions-L1) until it is upgraded.
        if config.stage == "local" and packaging.runtime.name != latest_python_runtime().name:
            reason = (
                f"The local stage runs {packaging.runtime.name} on purpose: the local cloud executes Python "
                "Lambdas with its own interpreter, and the layer is built for that version."
            )
            acknowledge(self.function, "AwsSolutions-L1", reason)
            acknowledge(self.function, "Serverless::Serverless-LambdaLatestVersion", reason)
