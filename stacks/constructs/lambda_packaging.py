"""What every Lambda function of a stack shares: one code asset, one dependency layer, one DLQ.

The code asset is the code directory (`lambdas/`: handler paths are relative to it) with each shared
package (`contracts/`) beside the contexts as a top-level directory, so a handler can `import
contracts`. It is bundled locally by copying those trees (no Docker), and its hash is computed
before bundling from exactly the files it ships (`source_tree.content_hash`): it changes when a
shipped file of one of the trees changes, never for tests, caches or bytecode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.dependency_layer import LAMBDAS_DIR, DependencyLayer, DependencyLayerProps
from stacks.constructs.shipping import CODE_EXCLUDES
from stacks.constructs.source_tree import (
    SourceTree,
    SourceTreeBundler,
    app_shared_packages,
    common_root,
    content_hash,
    docker_copy_command,
)
from stacks.nag import acknowledge

# The Docker fallback only copies files: any image with bash, cp and find. A fixed one keeps the code
# asset (whose hash includes the bundling options) the same for every runtime and stage.
COPY_IMAGE = lambda_.Runtime.PYTHON_3_11.bundling_image


@dataclass(frozen=True)
class LambdaPackagingProps:
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    # Of the async-failure DLQ: RETAIN keeps failed events for inspection after the stack is gone.
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    # The code asset's root (handler paths are relative to it); its requirements.txt feeds the layer.
    code_dir: Path = LAMBDAS_DIR
    # Top-level packages shipped beside the code, each under its own name (`import contracts`).
    shared_packages: tuple[Path, ...] = field(default_factory=app_shared_packages)


def code_trees(code_dir: Path, shared_packages: Sequence[Path]) -> list[SourceTree]:
    """The code asset's layout: the code directory's contents at the root, each shared package beside them."""
    return [SourceTree(code_dir, "."), *(SourceTree(package, package.name) for package in shared_packages)]


def code_asset(code_dir: Path, shared_packages: Sequence[Path]) -> lambda_.Code:
    """The functions' code asset (see the module docstring)."""
    trees = code_trees(code_dir, shared_packages)
    return lambda_.Code.from_asset(
        # The trees' common parent (Docker mounts it); only the trees below are shipped and hashed.
        str(common_root(trees)),
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        asset_hash=content_hash(trees, CODE_EXCLUDES),
        bundling=cdk.BundlingOptions(
            image=COPY_IMAGE,
            # Docker fallback (never used while the local bundler succeeds): the same layout.
            command=["bash", "-c", docker_copy_command(trees, CODE_EXCLUDES)],
            local=SourceTreeBundler(trees, CODE_EXCLUDES),
        ),
    )


def _key(props: LambdaPackagingProps) -> tuple:
    return (props.runtime.name, props.architecture.name, props.removal_policy, props.code_dir, props.shared_packages)


class LambdaPackaging(Construct):
    """Per-stack singleton: the shared code asset, the dependency layer and the async-failure DLQ.

    A CDK asset-backed `Code` can be bound to one stack only, so each stack gets its own handle; the
    cloud assembly still stores one copy of each asset (same hash), and pip runs once per synth.
    """

    CONSTRUCT_ID = "LambdaPackaging"

    @classmethod
    def of(cls, scope: Construct, props: LambdaPackagingProps) -> LambdaPackaging:
        """The stack's packaging, created on first use. Every function of a stack shares it, so asking
        for it with different props is a mistake, not a second packaging."""
        stack = Stack.of(scope)
        existing = stack.node.try_find_child(cls.CONSTRUCT_ID)
        if isinstance(existing, LambdaPackaging):
            if _key(existing.props) != _key(props):
                raise ValueError(
                    f"{stack.node.path}: every function of a stack shares one LambdaPackaging; "
                    f"it was created with {existing.props}, not {props}"
                )
            return existing
        return cls(stack, cls.CONSTRUCT_ID, props=props)

    def __init__(self, scope: Construct, construct_id: str, *, props: LambdaPackagingProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        self.runtime = props.runtime
        self.architecture = props.architecture
        self.code = code_asset(props.code_dir, props.shared_packages)
        self.dependencies = DependencyLayer(
            self,
            "Dependencies",
            props=DependencyLayerProps(
                runtime=props.runtime, architecture=props.architecture, source_dir=props.code_dir
            ),
        )
        # Failed *asynchronous* invocations (EventBridge schedules, retried events) land here after
        # Lambda's own retries instead of vanishing; synchronous callers see their errors directly.
        self.async_failures = sqs.Queue(
            self,
            "AsyncInvokeFailures",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=props.removal_policy,
        )
        acknowledge(
            self.async_failures,
            "Serverless::Serverless-SQSRedrivePolicy",
            "This queue is the functions' dead-letter target: the end of the line, kept 14 days for redrive.",
        )
