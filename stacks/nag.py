"""cdk-nag v3 wiring: rule packs run as CDK policy-validation plugins at synth time.

Every acknowledgement goes through `acknowledge()` so that it always names the rule, the construct
and a reason (an empty reason is refused), and so the id format quirks of cdk-nag v3 live in one place:
how a wildcard-resource finding is named (`iam5_resource_finding`), when a cross-stack resource can be
named at all (`acknowledge_wildcard_resource`), and what makes a runtime "not the latest"
(`acknowledge_older_runtime`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import aws_cdk as cdk
import jsii
from aws_cdk import Stack
from aws_cdk import aws_lambda as lambda_
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct, IValidation


def apply_rule_packs(app: cdk.App) -> None:
    """AwsSolutions + Serverless packs; any unacknowledged finding makes `cdk synth` fail."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


# The rule packs' plugin names: an acknowledgement id is `<plugin>::<rule>`.
RULE_PACKS = ("AwsSolutions", "Serverless")


def acknowledgement_id(rule: str) -> str:
    """`AwsSolutions-IAM4` -> `AwsSolutions::AwsSolutions-IAM4`. CDK also honours the bare rule name,
    but then drops the finding from the validation report altogether instead of listing it with its
    reason under the plugin's suppressedViolations; qualified, every acknowledgement stays reviewable."""
    if rule.startswith(tuple(f"{pack}::" for pack in RULE_PACKS)):
        return rule
    pack = rule.split("-", 1)[0]
    if pack not in RULE_PACKS:
        raise ValueError(f"{rule}: not a rule of the {' or '.join(RULE_PACKS)} pack")
    return f"{pack}::{rule}"


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one finding (`AwsSolutions-IAM4`, `AwsSolutions-IAM5[Resource::*]`, ...) on a construct."""
    if len(reason.strip()) < 20:
        raise ValueError(f"{rule}: give a real reason for acknowledging this finding")
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=acknowledgement_id(rule), reason=reason))


def acknowledge_cdk_warning(construct: IConstruct, warning: str, reason: str) -> None:
    """Acknowledge one of CDK's own warnings (`@aws-cdk/<module>:<id>`) on a construct and its children:
    unacknowledged, it fails the synth's validation like a rule pack's finding."""
    if len(reason.strip()) < 20:
        raise ValueError(f"{warning}: give a real reason for acknowledging this warning")
    cdk.Annotations.of(construct).acknowledge_warning(warning, reason)


# --- wildcard resources (AwsSolutions-IAM5) ------------------------------------------------------


def iam5_resource_finding(scope: IConstruct, resource: str) -> str:
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

    def __init__(self, construct: IConstruct, rule: Callable[[], str], reason: str) -> None:
        self.construct, self.rule, self.reason = construct, rule, reason

    def validate(self) -> list[str]:
        acknowledge(self.construct, self.rule(), self.reason)
        return []


def acknowledge_wildcard_resource(construct: IConstruct, resource: str, reason: str) -> None:
    """Acknowledge `AwsSolutions-IAM5[Resource::<resource>]` on `construct`, also when `resource`
    refers to another stack (its rendering is known only after references are resolved)."""
    construct.node.add_validation(
        _AcknowledgeOnceResolved(construct, lambda: iam5_resource_finding(construct, resource), reason)
    )


def acknowledge_topic_key_grant(function: lambda_.Function) -> None:
    """`topic.grant_publish` on a KMS-encrypted topic also grants `kms:GenerateDataKey*` (the
    GenerateDataKey variants SNS may call) on that topic's key - one key, not every key."""
    assert function.role is not None  # a Function of this app always has one (CDK's or the given role)
    acknowledge(
        function.role,
        "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
        "Publishing to the KMS-encrypted order-events topic needs kms:GenerateDataKey* on its key; the grant "
        "names that single key.",
    )


# --- Lambda runtimes (AwsSolutions-L1, Serverless-LambdaLatestVersion) ------------------------------


def latest_python_runtime() -> lambda_.Runtime:
    """The newest Python runtime this CDK version knows: what both rules compare a function against."""
    return max(
        (r for r in lambda_.Runtime.ALL if r.family == lambda_.RuntimeFamily.PYTHON),
        key=lambda r: tuple(int(p) for p in r.name.removeprefix("python").split(".")),
    )


def acknowledge_older_runtime(function: IConstruct, runtime: lambda_.Runtime, reason: str) -> None:
    """Accept, with `reason`, that `function` runs a Python runtime older than the newest one; does
    nothing when `runtime` is the newest (then neither rule fires)."""
    if runtime.name != latest_python_runtime().name:
        acknowledge(function, "AwsSolutions-L1", reason)
        acknowledge(function, "Serverless::Serverless-LambdaLatestVersion", reason)


# --- CDK's own handlers (BucketDeployment) ----------------------------------------------------------


@jsii.implements(IValidation)
class _AcknowledgeWildcardResourcesOnceResolved:
    """Acknowledges an IAM5 resource finding for every wildcard resource of `policy`'s statements, in
    the final form of its cross-stack references (known only when the tree is validated)."""

    def __init__(self, policy: IConstruct, reason: str) -> None:
        self.policy, self.reason = policy, reason

    def validate(self) -> list[str]:
        document = Stack.of(self.policy).resolve(self.policy.node.find_child("Resource").policy_document)  # type: ignore[attr-defined]
        for statement in document.get("Statement", []):
            resources = statement.get("Resource", [])
            for resource in resources if isinstance(resources, list) else [resources]:
                if "*" in json.dumps(resource):
                    acknowledge(self.policy, iam5_resource_finding(self.policy, resource), self.reason)
        return []


def acknowledge_bucket_deployment_handler(stack: Stack, reason: str) -> None:
    """The findings on aws-cdk-lib's BucketDeployment handler (one singleton function per stack and
    memory size), whose code, runtime and role CDK owns. `reason` says what the deployments copy where."""
    handlers = [child for child in stack.node.children if child.node.id.startswith("Custom::CDKBucketDeployment")]
    if not handlers:
        raise ValueError(f"{stack.node.path}: no BucketDeployment handler to acknowledge")
    why = (
        f"aws-cdk-lib's BucketDeployment handler ({reason}): CDK owns its code, runtime and role, which copies the "
        "asset zips from the bootstrap bucket and syncs them (s3:GetObject*/List*/DeleteObject*/Abort*) into the "
        "destination bucket, then invalidates the distribution; it runs once per deploy, synchronously under "
        "CloudFormation, which reports a failure (no DLQ, no tracing needed)."
    )
    for handler in handlers:
        for rule in (
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "AwsSolutions-IAM5[Action::s3:GetBucket*]",
            "AwsSolutions-IAM5[Action::s3:GetObject*]",
            "AwsSolutions-IAM5[Action::s3:List*]",
            "AwsSolutions-IAM5[Action::s3:Abort*]",
            "AwsSolutions-IAM5[Action::s3:DeleteObject*]",
            "AwsSolutions-L1",
            "Serverless-LambdaLatestVersion",
            "Serverless-LambdaDLQ",
            "Serverless-LambdaTracing",
        ):
            acknowledge(handler, rule, why)
        policy = handler.node.find_child("ServiceRole").node.find_child("DefaultPolicy")
        policy.node.add_validation(_AcknowledgeWildcardResourcesOnceResolved(policy, why))
