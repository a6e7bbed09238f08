"""A load-balanced, self-healing tier: Application Load Balancer -> target group -> Auto Scaling group.

Instances are disposable: they keep no state (sessions live in Redis), get their code from S3 at
boot, are replaced when the ALB health check fails and are added or removed by target tracking.
Operators reach them through Session Manager only: no SSH key, no port 22, IMDSv2 required
(stacks/constructs/service_instances.py, shared with the queue workers).

The construct never adds a security-group rule: it is handed groups whose rules are owned elsewhere
(the network stack), and wraps them as immutable so that CDK's automatic "allow the load balancer to
reach its targets" wiring cannot create a second, unowned copy of a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack, Token, region_info
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.constructs.implied_dependency import drop_implied_dependency
from stacks.constructs.service_instances import HardenedLaunchTemplateProps, hardened_launch_template
from stacks.nag import acknowledge


@dataclass(frozen=True)
class AlbAutoScalingTierProps:
    vpc: ec2.IVpc
    instance_subnets: ec2.SubnetSelection  # private subnets in 2+ AZs
    internet_facing: bool  # True: ALB in the public subnets; False: internal ALB in instance_subnets
    load_balancer_security_group: ec2.ISecurityGroup
    instance_security_group: ec2.ISecurityGroup
    instance_type: ec2.InstanceType
    machine_image: ec2.IMachineImage
    user_data: ec2.UserData
    min_capacity: int
    max_capacity: int
    target_cpu_percent: int
    app_port: int = 8080
    health_check_path: str = "/health"
    # Two passes make a target healthy, three failures unhealthy: 45 s to notice a dead instance at 15 s.
    health_check_interval: Duration = Duration.seconds(15)
    # Boot time allowed before the ELB health check counts: dnf install + venv + service start.
    health_check_grace: Duration = Duration.minutes(5)
    # HTTPS on 443 (and 80 redirects to it) when set; otherwise plain HTTP on 80.
    certificate_arn: str | None = None
    # Second target-tracking policy on ALBRequestCountPerTarget (requests per target per minute).
    requests_per_target_per_minute: int | None = None
    root_volume_gib: int = 8
    access_log_retention: Duration = Duration.days(30)
    # An overwritten or deleted log object stays as a noncurrent version this long (the bucket is versioned).
    access_log_noncurrent_retention: Duration = Duration.days(30)
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN  # of the access-log bucket
    deletion_protection: bool = True  # of the load balancer (its DNS name is what clients know)


class AlbAutoScalingTier(Construct):
    """`.load_balancer`, `.listener`, `.target_group`, `.auto_scaling_group`, `.role`, `.access_logs_bucket`,
    `.scaling_events_topic` (Auto Scaling launch/terminate notifications, for operators to subscribe to)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: AlbAutoScalingTierProps) -> None:
        super().__init__(scope, construct_id)
        if props.min_capacity < 2:
            raise ValueError("a tier needs at least 2 instances to survive the loss of an AZ")
        lb_group = ec2.SecurityGroup.from_security_group_id(
            self,
            "LoadBalancerGroup",
            props.load_balancer_security_group.security_group_id,
            mutable=False,
            allow_all_outbound=False,
        )
        instance_group = ec2.SecurityGroup.from_security_group_id(
            self,
            "InstanceGroup",
            props.instance_security_group.security_group_id,
            mutable=False,
            allow_all_outbound=False,
        )

        # Hardened as every instance of the app: Session Manager only, IMDSv2, encrypted root.
        self.role, launch_template = hardened_launch_template(
            self,
            props=HardenedLaunchTemplateProps(
                instance_type=props.instance_type,
                machine_image=props.machine_image,
                security_group=instance_group,
                user_data=props.user_data,
                root_volume_gib=props.root_volume_gib,
            ),
        )

        # Every launch, termination and failure is published here; operators subscribe (the topic uses
        # the AWS managed SNS key, which the Auto Scaling service-linked role may use from this account).
        self.scaling_events_topic = sns.Topic(
            self,
            "ScalingEvents",
            master_key=kms.Alias.from_alias_name(self, "SnsManagedKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        self.auto_scaling_group = autoscaling.AutoScalingGroup(
            self,
            "Instances",
            vpc=props.vpc,
            vpc_subnets=props.instance_subnets,
            launch_template=launch_template,
            min_capacity=props.min_capacity,
            max_capacity=props.max_capacity,
            # An instance the load balancer marks unhealthy is replaced, not just taken out of rotation.
            health_checks=autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
                grace_period=props.health_check_grace,
            ),
            notifications=[
                autoscaling.NotificationConfiguration(
                    topic=self.scaling_events_topic, scaling_events=autoscaling.ScalingEvents.ALL
                )
            ],
            # Desired/in-service/pending counts as 1-minute metrics for dashboards and alarms.
            group_metrics=[autoscaling.GroupMetrics.all()],
        )

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            # ALB access logs support SSE-S3 only (not SSE-KMS).
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Versioned: a log that can be overwritten or deleted without trace is no evidence.
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=props.access_log_retention,
                    noncurrent_version_expiration=props.access_log_noncurrent_retention,
                )
            ],
            removal_policy=props.removal_policy,
        )
        acknowledge(
            self.access_logs_bucket,
            "AwsSolutions-S1",
            "This bucket only receives the load balancer's access logs; server access logging on a log bucket "
            "would log the log writes. Reads are limited to the account by the block-public-access settings.",
        )

        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=props.vpc,
            internet_facing=props.internet_facing,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
            if props.internet_facing
            else props.instance_subnets,
            security_group=lb_group,
            # Requests with malformed headers are dropped at the edge instead of reaching the service.
            drop_invalid_header_fields=True,
            deletion_protection=props.deletion_protection,
        )
        self._log_access_to(self.access_logs_bucket)

        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "Targets",
            vpc=props.vpc,
            port=props.app_port,
            protocol=elbv2.ApplicationProtocol.HTTP,
            targets=[self.auto_scaling_group],
            health_check=elbv2.HealthCheck(
                path=props.health_check_path,
                healthy_http_codes="200",
                interval=props.health_check_interval,
                # ELB wants the timeout below the interval; 5 s (its default) where the interval allows.
                timeout=Duration.seconds(max(2, min(5, int(props.health_check_interval.to_seconds()) - 1))),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
            # Stateless instances: in-flight requests finish quickly, so scale-in need not wait 5 minutes.
            deregistration_delay=Duration.seconds(30),
        )

        if props.certificate_arn:
            self.listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(props.certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_target_groups=[self.target_group],
                open=False,
            )
            self.load_balancer.add_redirect(source_port=80, target_port=443, open=False)
        else:
            self.listener = self.load_balancer.add_listener(
                "Http",
                port=80,
                protocol=elbv2.ApplicationProtocol.HTTP,
                default_target_groups=[self.target_group],
                open=False,
            )

        # Target tracking: capacity follows load in both directions, between min and max.
        self.auto_scaling_group.scale_on_cpu_utilization(
            "CpuTarget", target_utilization_percent=props.target_cpu_percent
        )
        if props.requests_per_target_per_minute:
            requests = self.auto_scaling_group.scale_on_request_count(
                "RequestsTarget", target_requests_per_minute=props.requests_per_target_per_minute
            )
            # Its ResourceLabel refers to the listener already (app/<lb>/<id>/targetgroup/<tg>/<id>).
            drop_implied_dependency(
                cast(CfnResource, requests.node.default_child), cast(CfnResource, self.listener.node.default_child)
            )

    def _log_access_to(self, bucket: s3.Bucket) -> None:
        """Access logs to `bucket`. CDK's `log_access_logs` picks the log-delivery principal for a known
        region; an environment-agnostic synth (no region) gets the regional ELB account from a
        deploy-time mapping instead, which covers every region that has one."""
        stack = Stack.of(self)
        if not Token.is_unresolved(stack.region):
            self.load_balancer.log_access_logs(bucket)
            return
        self.load_balancer.set_attribute("access_logs.s3.enabled", "true")
        self.load_balancer.set_attribute("access_logs.s3.bucket", bucket.bucket_name)
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"],
                principals=[iam.AccountPrincipal(stack.regional_fact(region_info.FactName.ELBV2_ACCOUNT))],
                resources=[bucket.arn_for_objects(f"AWSLogs/{stack.account}/*")],
            )
        )
        self.load_balancer.node.add_dependency(bucket.policy)
