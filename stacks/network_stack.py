"""The VPC every tier lives in, and the security-group chain between the tiers.

Three subnet tiers per AZ: public (load balancers, NAT gateways), `App` (tier instances, interface
endpoints) and `Data` (the session cache, no route out at all). With NAT gateways the App subnets get
a default route through them; without (sandbox, local) they are isolated and reach AWS APIs only
through VPC endpoints, which is cheaper and keeps instances off the internet entirely.

The security groups are created here, not in the tier stacks, so that the whole chain can be read
(and tested) in one template, and so that tier stacks only *use* groups: no stack adds a rule to
another stack's group, which is what causes cross-stack reference cycles.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import CfnResource, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import StageConfig
from stacks.constructs.implied_dependency import drop_implied_dependency
from stacks.constructs.tier_security_groups import TierSecurityGroups, TierSecurityGroupsProps
from stacks.stage_defaults import log_encryption_key, log_retention, removal_policy

PUBLIC_SUBNETS = "Public"
APP_SUBNETS = "App"  # tier instances and interface endpoints
DATA_SUBNETS = "Data"  # the session cache: never routable from or to the internet

# AWS APIs the tiers call, reached through interface endpoints when config.vpc_endpoints.
# SSM + SSM messages + EC2 messages: Session Manager and service discovery; the rest: what the
# services, the CloudWatch agent and IAM role credentials use.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "SsmMessages": ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES,
    "Ec2Messages": ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES,
    "Sns": ec2.InterfaceVpcEndpointAwsService.SNS,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    # The web tier's sign-in (InitiateAuth) and the pool's signing keys (JWKS); AWS PrivateLink serves a
    # user pool's API only while the pool has no domain, and the Identity stack gives it none.
    "CognitoIdp": ec2.InterfaceVpcEndpointAwsService.COGNITO_IDP,
}


class NetworkStack(Stack):
    """`.vpc` and `.security_groups` (web_alb, web_instances, internal_alb, backend_instances, cache)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        log_key: kms.IKey | None = None,
        **kwargs,
    ) -> None:
        self._max_azs = config.max_azs
        super().__init__(scope, construct_id, **kwargs)
        app_subnet_type = (
            ec2.SubnetType.PRIVATE_WITH_EGRESS if config.nat_gateways > 0 else ec2.SubnetType.PRIVATE_ISOLATED
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            max_azs=config.max_azs,
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                # Public subnets hold only load balancers and NAT gateways, which get their public
                # addresses explicitly: nothing launched there receives one by default.
                ec2.SubnetConfiguration(
                    name=PUBLIC_SUBNETS, subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24, map_public_ip_on_launch=False
                ),
                ec2.SubnetConfiguration(name=APP_SUBNETS, subnet_type=app_subnet_type, cidr_mask=22),
                ec2.SubnetConfiguration(name=DATA_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
            # The default group must not be usable as a shortcut around the chain below.
            restrict_default_security_group=True,
        )
        provider = self.node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if provider is not None:  # CDK's provider function both GetAtts and DependsOn its role
            drop_implied_dependency(
                cast(CfnResource, provider.node.find_child("Handler")),
                cast(CfnResource, provider.node.find_child("Role")),
            )

        # VPC flow logs: every accepted and rejected flow, for incident response and SG debugging.
        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            retention=log_retention(config.flow_log_retention_days),
            removal_policy=removal_policy(config),
            encryption_key=log_encryption_key(config, log_key),
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        app_subnets = ec2.SubnetSelection(subnet_group_name=APP_SUBNETS)
        self.endpoints_security_group: ec2.SecurityGroup | None = None
        if config.vpc_endpoints:
            # Gateway endpoints are free and add routes to the App route tables: S3 (service code,
            # dnf repositories, hand-off bucket) and DynamoDB without a NAT gateway.
            self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[app_subnets])
            self.vpc.add_gateway_endpoint(
                "DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB, subnets=[app_subnets]
            )
            # One group for all interface endpoints, admitting HTTPS from the tier instances only
            # (CDK's default would admit the whole VPC CIDR).
            self.endpoints_security_group = ec2.SecurityGroup(
                self,
                "InterfaceEndpoints",
                vpc=self.vpc,
                description="VPC interface endpoints: HTTPS from tier instances only",
                allow_all_outbound=False,
            )
            for name, service in INTERFACE_ENDPOINTS.items():
                self.vpc.add_interface_endpoint(
                    name,
                    service=service,
                    subnets=app_subnets,
                    security_groups=[self.endpoints_security_group],
                    open=False,
                    private_dns_enabled=True,
                )

        self.security_groups = TierSecurityGroups(
            self,
            "TierSecurityGroups",
            props=TierSecurityGroupsProps(
                vpc=self.vpc,
                https=config.serves_https,
                endpoints=self.endpoints_security_group,
            ),
        )
        self.app_subnets = app_subnets
        self.data_subnets = ec2.SubnetSelection(subnet_group_name=DATA_SUBNETS)

    @property
    def availability_zones(self) -> list[str]:
        """The first `max_azs` zones, resolved by CloudFormation (Fn::GetAZs) at deploy time. CDK would
        otherwise look them up at synth time for a stack with an account and region, which needs
        credentials (and yields placeholder zones without them, as in the local stage)."""
        return [Fn.select(index, Fn.get_azs()) for index in range(self._max_azs)]
