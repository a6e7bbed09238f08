"""Service discovery by SSM parameter: a producer stack publishes where a consumer finds it.

The consumers (the tiers' instances, the picture workers) read `<discovery path>/<name>` at run time
(services/common/discovery.py), with a grant on the path only (stacks/constructs/service_instances.py),
so a producer never needs to know its consumers and no stack looks another up by name.
"""

from __future__ import annotations

from aws_cdk import aws_ssm as ssm
from constructs import Construct


def publish(scope: Construct, path: str, name: str, value: str, description: str) -> ssm.StringParameter:
    """`<path>/<name>` = `value`; its construct id follows the name (`backend-url` -> BackendUrlParameter),
    which keeps the logical ids every stack had when each wrote its own parameters."""
    return ssm.StringParameter(
        scope,
        "".join(part.capitalize() for part in name.split("-")) + "Parameter",
        parameter_name=f"{path.rstrip('/')}/{name}",
        string_value=value,
        description=description,
    )
