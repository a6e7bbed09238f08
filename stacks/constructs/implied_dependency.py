"""Remove a `DependsOn` that a `Ref`/`GetAtt` in the same resource already implies (cfn-lint W3005).

CDK adds some dependencies as construct dependencies (a scaling policy on its listener, a custom
resource provider's function on its role, a function or state machine on its role) although the
resource also references the target. The reference alone orders the deployment; the redundant
`DependsOn` is removed once CDK has rendered construct dependencies, i.e. at validation time.
"""

from __future__ import annotations

from typing import cast

import jsii
from aws_cdk import CfnResource
from aws_cdk import aws_iam as iam
from constructs import IValidation


@jsii.implements(IValidation)
class _DropImpliedDependsOn:
    def __init__(self, source: CfnResource, implied: CfnResource) -> None:
        self.source, self.implied = source, implied

    def validate(self) -> list[str]:
        self.source.remove_resource_dependency(self.implied)
        return []


def drop_implied_dependency(source: CfnResource, implied: CfnResource) -> None:
    """`source` references `implied` (Ref/GetAtt): drop its explicit DependsOn on it."""
    source.node.add_validation(_DropImpliedDependsOn(source, implied))


def drop_implied_role_dependency(resource: CfnResource, role: iam.IRole) -> None:
    """A function (or state machine) depends on its role construct, which renders
    `DependsOn: [Role, RoleDefaultPolicy]`. The role half is implied by the `Fn::GetAtt Role.Arn` the
    resource already holds and is dropped; the policy half is real - a function must not run, and an
    event source mapping must not be created, before its permissions exist - and stays."""
    drop_implied_dependency(resource, cast(CfnResource, role.node.default_child))  # the role's AWS::IAM::Role
