"""The storefront's security-group chain, in one place: internet -> web ALB -> web instances ->
internal ALB -> backend instances, and web instances -> cache (the backend keeps no sessions).

Every group is created with `allow_all_outbound=False`, and each hop is opened with
`connections.allow_to`, which writes the ingress rule on the receiver *and* the matching egress rule
on the sender. So a group can reach exactly the next hop: the web instances have no rule towards the
backend instances (only towards the internal ALB), and no group admits traffic from its own members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import jsii
from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct, IValidation

from stacks.nag import acknowledge

# The port every tier service listens on (SERVICE_PORT in the systemd unit) and the target groups use.
APP_PORT = 8080
# Redis' default port: a non-default port would only obscure it; the chain below, TLS and AUTH protect it.
REDIS_PORT = 6379
HTTP_PORT = 80
HTTPS_PORT = 443


# CDK's placeholder egress rule: it matches no packet, and its presence stops EC2 from adding the
# default allow-all egress rule to a group whose only egress rules are separate resources.
NO_TRAFFIC_EGRESS = {
    "CidrIp": "255.255.255.255/32",
    "Description": "Disallow all traffic",
    "IpProtocol": "icmp",
    "FromPort": 252,
    "ToPort": 86,
}


@jsii.implements(IValidation)
class _KeepDefaultEgressClosed:
    """CDK drops the placeholder as soon as any egress rule is added, also when that rule becomes a
    separate AWS::EC2::SecurityGroupEgress resource (every group-to-group rule does). A group whose
    egress is *only* such rules (the ALB groups) would then be created without inline egress, which
    is how CloudFormation asks for the default allow-all rule. Put the placeholder back there."""

    def __init__(self, group: ec2.SecurityGroup) -> None:
        self.group = group

    def validate(self) -> list[str]:
        resource = cast(ec2.CfnSecurityGroup, self.group.node.default_child)
        if not Stack.of(self.group).resolve(resource.security_group_egress):
            resource.add_property_override("SecurityGroupEgress", [NO_TRAFFIC_EGRESS])
        return []


@dataclass(frozen=True)
class TierSecurityGroupsProps:
    vpc: ec2.IVpc
    # True when the web ALB terminates HTTPS (a certificate is configured): it then also listens on 443.
    https: bool
    # Where instances reach AWS APIs (S3 for the service code, SSM, Secrets Manager, SNS, SQS, ...):
    # through interface endpoints guarded by `endpoints` when given, otherwise through a NAT gateway.
    endpoints: ec2.ISecurityGroup | None = None


class TierSecurityGroups(Construct):
    """The five groups of the chain: `web_alb`, `web_instances`, `internal_alb`, `backend_instances`, `cache`;
    and `picture_workers`, which is no link of it (no ingress at all)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: TierSecurityGroupsProps) -> None:
        super().__init__(scope, construct_id)

        def group(name: str, description: str) -> ec2.SecurityGroup:
            return ec2.SecurityGroup(self, name, vpc=props.vpc, description=description, allow_all_outbound=False)

        self.web_alb = group("WebAlb", "Internet-facing web ALB: HTTP(S) from anywhere, to web instances only")
        self.web_instances = group("WebInstances", "Web tier instances: app port from the web ALB only")
        self.internal_alb = group("InternalAlb", "Internal backend ALB: HTTP from web instances only")
        self.backend_instances = group(
            "BackendInstances", "Backend tier instances: app port from the internal ALB only"
        )
        self.cache = group("Cache", "Session cache: Redis from web instances only")
        # Queue workers take their work from SQS: nothing may connect to them, they reach AWS APIs only.
        self.picture_workers = group("PictureWorkers", "Picture workers: no ingress, HTTPS to AWS APIs only")

        # Internet -> web ALB. Port 80 always (the sandbox listener, or the redirect to HTTPS).
        self.web_alb.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTP_PORT), "HTTP from the internet")
        if props.https:
            self.web_alb.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "HTTPS from the internet")
        acknowledge(
            self.web_alb,
            "AwsSolutions-EC23",
            "This is the internet-facing storefront load balancer: accepting HTTP(S) from any address is its "
            "purpose. Every group behind it admits traffic only from the group in front of it.",
        )

        app_port = ec2.Port.tcp(APP_PORT)
        self.web_alb.connections.allow_to(self.web_instances, app_port, "web ALB to web instances")
        self.web_instances.connections.allow_to(
            self.internal_alb, ec2.Port.tcp(HTTP_PORT), "web instances to internal ALB"
        )
        self.internal_alb.connections.allow_to(self.backend_instances, app_port, "internal ALB to backend instances")
        redis = ec2.Port.tcp(REDIS_PORT)
        self.web_instances.connections.allow_to(self.cache, redis, "web instances to the session cache")

        for instances in (self.web_instances, self.backend_instances, self.picture_workers):
            if props.endpoints is not None:
                # Only the ingress side: the egress rule below already covers the endpoints' addresses.
                props.endpoints.add_ingress_rule(
                    instances, ec2.Port.tcp(HTTPS_PORT), "AWS API calls from tier instances"
                )
            # S3 (service code, dnf repositories) and DynamoDB are reached through gateway endpoints,
            # i.e. their public address ranges; without a NAT gateway nothing else is routable.
            instances.add_egress_rule(
                ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "HTTPS to AWS APIs (gateway endpoints or NAT)"
            )

        for security_group in (
            self.web_alb,
            self.web_instances,
            self.internal_alb,
            self.backend_instances,
            self.cache,
            self.picture_workers,
        ):
            security_group.node.add_validation(_KeepDefaultEgressClosed(security_group))

    @property
    def instance_groups(self) -> tuple[ec2.SecurityGroup, ec2.SecurityGroup]:
        return self.web_instances, self.backend_instances
