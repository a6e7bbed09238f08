"""Remove a `DependsOn` that a `Ref`/`GetAtt` in the same resource already implies (cfn-lint W3005).

CDK adds some dependencies as construct dependencies (a scaling policy on its listener, a custom
resource provider's function on its role) although the resource also references the target. The
reference alone orders the deployment; the redundant `DependsOn` is removed once CDK has rendered
construct dependencies, i.e. at validation time.
"""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource
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
