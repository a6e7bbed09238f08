"""cdk-nag v3 wiring: rule packs run as CDK policy-validation plugins at synth time.

Every acknowledgement goes through `acknowledge()` so that it always names the rule, the construct
and a reason (an empty reason is refused), and so the id format quirks of cdk-nag v3 live in one place.
"""

from __future__ import annotations

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks, ServerlessChecks
from constructs import IConstruct


def apply_rule_packs(app: cdk.App) -> None:
    """AwsSolutions + Serverless packs; any unacknowledged finding makes `cdk synth` fail."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one finding (`AwsSolutions-IAM4`, `AwsSolutions-IAM5[Resource::*]`, ...) on a construct."""
    if len(reason.strip()) < 20:
        raise ValueError(f"{rule}: give a real reason for acknowledging this finding")
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
