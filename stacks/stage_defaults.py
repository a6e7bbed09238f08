"""The stage configuration turned into the values constructs take, written once for every stack.

Constructs never read the stage config: each takes its own typed props. The choices a stage makes
the same way for many resources - what stack deletion does to them, how long logs are kept, which
Lambda runtime and architecture - are translated here, so each is made in exactly one place.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from stacks.constructs.lambda_packaging import LambdaPackagingProps
from stacks.constructs.powertools_function import SharedFunctionProps

if TYPE_CHECKING:
    from stacks.config import StageConfig

# CloudWatch Logs accepts only these retention periods (days).
_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def removal_policy(config: StageConfig, *, keep: RemovalPolicy = RemovalPolicy.RETAIN) -> RemovalPolicy:
    """DESTROY where the stage lets its resources go with the stack (`destroy_on_delete`: sandbox,
    local); otherwise `keep` - RETAIN, or SNAPSHOT for a resource that can leave a final snapshot."""
    return RemovalPolicy.DESTROY if config.destroy_on_delete else keep


def log_retention(days: int) -> logs.RetentionDays:
    """A retention in days (`log_retention_days`, `flow_log_retention_days`) as the enum CDK wants;
    refuses a period CloudWatch does not offer."""
    try:
        return _RETENTION[days]
    except KeyError:
        raise ValueError(f"log retention {days} days: CloudWatch accepts only {sorted(_RETENTION)}") from None


@functools.cache
def _python_runtimes() -> dict[str, lambda_.Runtime]:
    # Built once: reading every Runtime's name and family crosses into jsii (0.5 s of a synth for 17 functions).
    return {r.name: r for r in lambda_.Runtime.ALL if r.family == lambda_.RuntimeFamily.PYTHON}


def lambda_runtime(name: str) -> lambda_.Runtime:
    """A Python runtime name (`python3.14`): CDK's constant when it knows the name, else a Python-family runtime."""
    return _python_runtimes().get(name) or lambda_.Runtime(name, lambda_.RuntimeFamily.PYTHON)


def lambda_architecture(name: str) -> lambda_.Architecture:
    """`ARM_64` or `X86_64`, as written in cdk.json."""
    return {"ARM_64": lambda_.Architecture.ARM_64, "X86_64": lambda_.Architecture.X86_64}[name]


def local_runtime_reason(runtime: lambda_.Runtime) -> str:
    """Only the local cloud may lag behind: it runs Python Lambdas with its own interpreter. A real
    stage on an older runtime keeps failing cdk-nag (AwsSolutions-L1) until it is upgraded."""
    return (
        f"The local stage runs {runtime.name} on purpose: the local cloud executes Python "
        "Lambdas with its own interpreter, and the layer is built for that version."
    )


def log_encryption_key(config: StageConfig, key: kms.IKey | None) -> kms.IKey | None:
    """The key a stack's log groups are encrypted with. Refuses a `cmk` stage's stack that was not
    handed the key (the app builder forgot it) and a key on a `default` stage, so no log group of a
    production stack can silently fall back to the service's own encryption."""
    if (config.encryption_keys == "cmk") != (key is not None):
        raise ValueError(
            f"encryptionKeys={config.encryption_keys}: the stack was "
            + ("not handed the stage's log key" if key is None else "handed a log key the stage does not use")
        )
    return key


def shared_function_props(config: StageConfig, log_key: kms.IKey | None = None) -> SharedFunctionProps:
    """What every PowertoolsFunction of a stage shares: runtime, architecture, log retention, removal
    policy, and the stage's log encryption key (None where `encryptionKeys` is `default`)."""
    runtime = lambda_runtime(config.lambda_runtime)
    return SharedFunctionProps(
        packaging=LambdaPackagingProps(
            runtime=runtime,
            architecture=lambda_architecture(config.lambda_architecture),
            removal_policy=removal_policy(config),
        ),
        log_retention=log_retention(config.log_retention_days),
        removal_policy=removal_policy(config),
        older_runtime_reason=local_runtime_reason(runtime) if config.stage == "local" else None,
        log_encryption_key=log_encryption_key(config, log_key),
    )
