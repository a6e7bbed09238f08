"""A customer managed KMS key for CloudWatch Logs, usable by CloudWatch Logs of this account and region only.

Log groups are encrypted by the service by default, with a key nobody can audit, restrict or revoke.
With this key, reading a log group's events also needs `kms:Decrypt` on the key (so an IAM policy that
grants `logs:*` is no longer enough), every use is in CloudTrail, and disabling the key makes the logs
unreadable. Its policy follows the CloudWatch Logs guide: the regional service principal may use the
key only with an encryption context naming a log group of this account and region, so no other
account's or region's log groups can be encrypted with it. Key material rotates every year.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# What CloudWatch Logs calls on a key it encrypts a log group with (the CloudWatch Logs guide's list).
LOGS_KEY_ACTIONS = ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*")


@dataclass(frozen=True)
class LogEncryptionKeyProps:
    # RETAIN: a deleted key makes every log encrypted with it unreadable, so it outlives the stack.
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    description: str = "Encrypts the CloudWatch log groups of this stage"


class LogEncryptionKey(Construct):
    """`.key`: pass it to every `logs.LogGroup(encryption_key=...)` of the stage."""

    def __init__(self, scope: Construct, construct_id: str, *, props: LogEncryptionKeyProps) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=props.description,
            enable_key_rotation=True,
            removal_policy=props.removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccountAndRegion",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=list(LOGS_KEY_ACTIONS),
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
                    }
                },
            )
        )
