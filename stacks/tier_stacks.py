"""The two EC2 tiers of the storefront, each an `AlbAutoScalingTier`:

- `BackendTierStack`: internal ALB (private subnets, HTTP 80) -> backend instances on 8080. Validates
  orders and publishes `OrderPlaced`, its only write (the cancel window subscribes to the topic);
  publishes its own address and the messaging/data names as SSM discovery parameters.
- `WebTierStack`: internet-facing ALB -> web instances on 8080. Keeps sessions in the session store
  (Redis or DynamoDB, `sessionStore`) and calls the backend through the internal ALB, found through
  the `backend-url` parameter.

Neither tier knows the other's instances: the web tier knows one URL, the backend knows topic and
queue names. Both are stateless and can be redeployed without touching data or messaging stacks.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from contracts.handoff import INCOMING_PREFIX
from contracts.tables import ORDER_PREFIX, WEB_ORDERS_IDEMPOTENCY_PREFIX
from stacks.config import StageConfig
from stacks.constructs.alb_tier import AlbAutoScalingTier, AlbAutoScalingTierProps
from stacks.constructs.discovery import publish
from stacks.constructs.service_instances import (
    ServiceUserDataProps,
    grant_boot_and_discovery,
    machine_image,
    service_user_data,
)
from stacks.constructs.tier_security_groups import APP_PORT, TierSecurityGroups
from stacks.grants import grant_items
from stacks.nag import acknowledge, acknowledge_wildcard_resource
from stacks.sessions_stack import SessionsStack
from stacks.stage_defaults import removal_policy


class _TierStack(Stack):
    """What both tiers share: the service bundle, user data, the ALB tier and discovery reads."""

    SERVICE: str  # systemd unit name, also `services.<tier>`
    DESCRIPTION: str
    tier: AlbAutoScalingTier

    # Handles other stacks (edge, observability) use.
    @property
    def load_balancer(self):
        return self.tier.load_balancer

    @property
    def target_group(self):
        return self.tier.target_group

    @property
    def auto_scaling_group(self):
        return self.tier.auto_scaling_group

    def _build_tier(
        self,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        instance_subnets: ec2.SubnetSelection,
        internet_facing: bool,
        load_balancer_group: ec2.ISecurityGroup,
        instance_group: ec2.ISecurityGroup,
        min_capacity: int,
        max_capacity: int,
        sessions: SessionsStack | None = None,
        requests_per_target_per_minute: int | None = None,
        certificate_arn: str | None = None,
    ) -> AlbAutoScalingTier:
        """`sessions`: only a tier that keeps sessions gets access to the session store: the cache's TLS
        setting and its AUTH token (the security-group rule to the cache is the network stack's: web
        instances only), or the item actions on the sessions table."""
        instance_type = ec2.InstanceType(config.instance_type)
        boot = service_user_data(
            self,
            props=ServiceUserDataProps(
                service=self.SERVICE,
                description=self.DESCRIPTION,
                instance_type=instance_type,
                environment={
                    "SERVICE_HOST": "0.0.0.0",  # the ALB reaches the instance on its private address
                    "SERVICE_PORT": str(APP_PORT),
                    "DISCOVERY_PREFIX": config.parameter_name("discovery"),
                    "AWS_REGION": self.region,
                    "AWS_DEFAULT_REGION": self.region,
                    # the cache accepts TLS connections only (transit encryption)
                    **({"REDIS_TLS": "true"} if sessions is not None and sessions.store == "redis" else {}),
                    "PYTHONUNBUFFERED": "1",
                },
            ),
        )

        tier = AlbAutoScalingTier(
            self,
            "Tier",
            props=AlbAutoScalingTierProps(
                vpc=vpc,
                instance_subnets=instance_subnets,
                internet_facing=internet_facing,
                load_balancer_security_group=load_balancer_group,
                instance_security_group=instance_group,
                instance_type=instance_type,
                machine_image=machine_image(config, self),
                user_data=boot.user_data,
                min_capacity=min_capacity,
                max_capacity=max_capacity,
                target_cpu_percent=config.target_cpu_percent,
                health_check_interval=Duration.seconds(config.health_check_interval_seconds),
                health_check_grace=Duration.seconds(config.health_check_grace_seconds),
                certificate_arn=certificate_arn if internet_facing else None,
                requests_per_target_per_minute=requests_per_target_per_minute,
                access_log_retention=Duration.days(config.log_retention_days),
                removal_policy=removal_policy(config),
                deletion_protection=not config.destroy_on_delete,
            ),
        )
        role = tier.role
        grant_boot_and_discovery(role, bundle=boot.bundle, discovery_prefix=config.parameter_name("discovery"))
        if sessions is not None:
            sessions.grant_session_store(role)
        return tier


class BackendTierStack(_TierStack):
    """Internal ALB + backend Auto Scaling group; writes the backend's discovery parameters."""

    SERVICE = "storefront-backend"
    DESCRIPTION = "Storefront backend tier (orders -> SNS/SQS)"

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        instance_subnets: ec2.SubnetSelection,
        security_groups: TierSecurityGroups,
        orders_table: dynamodb.ITable,
        idempotency_table: dynamodb.ITable,
        handoff_bucket: s3.IBucket,
        order_events_topic: sns.ITopic,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.tier = self._build_tier(
            config=config,
            vpc=vpc,
            instance_subnets=instance_subnets,
            internet_facing=False,
            load_balancer_group=security_groups.internal_alb,
            instance_group=security_groups.backend_instances,
            min_capacity=config.backend_min_capacity,
            max_capacity=config.backend_max_capacity,
        )
        role = self.tier.role
        # Publish, and nothing else: the cancel window subscribes to the topic (the grant includes the
        # topic key's GenerateDataKey*/Decrypt).
        order_events_topic.grant_publish(role)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "Publishing to the KMS-encrypted order-events topic needs kms:GenerateDataKey* on its key; CDK's "
            "topic grant scopes it to that one key.",
        )
        # Reads order records (GET /orders/{id}), nothing else of the table.
        grant_items(orders_table, role, ["GetItem"], key_prefixes=[ORDER_PREFIX])
        # Idempotency-Key records of POST /orders (Powertools: put, read, complete, delete on failure), only
        # this tier's ids: never the API's or the consumers' records in the same table.
        grant_items(
            idempotency_table,
            role,
            ["GetItem", "PutItem", "UpdateItem", "DeleteItem"],
            key_prefixes=[WEB_ORDERS_IDEMPOTENCY_PREFIX],
        )
        # Hand-off producer: write-only, and only under incoming/ (no read, list, delete or overwrite ACLs).
        handoff_objects = handoff_bucket.arn_for_objects(f"{INCOMING_PREFIX}*")
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[handoff_objects]))
        acknowledge_wildcard_resource(
            role,
            handoff_objects,
            "Producers write hand-off objects under unique keys below incoming/; s3:PutObject only, nothing else.",
        )

        def discovery(name: str, value: str, description: str) -> ssm.StringParameter:
            return publish(self, config.parameter_name("discovery"), name, value, description)

        self.backend_url_parameter = discovery(
            "backend-url", f"http://{self.tier.load_balancer.load_balancer_dns_name}", "Internal backend ALB URL"
        )
        discovery("order-events-topic-arn", order_events_topic.topic_arn, "SNS topic for order events")
        discovery("orders-table", orders_table.table_name, "Orders DynamoDB table name")
        discovery("idempotency-table", idempotency_table.table_name, "Idempotency DynamoDB table name")
        discovery("handoff-bucket", handoff_bucket.bucket_name, "S3 hand-off bucket (write under incoming/)")


class WebTierStack(_TierStack):
    """Internet-facing ALB + web Auto Scaling group.

    Without `certificateArn` the ALB listens on plain HTTP: that is the sandbox-only path (no domain,
    nothing real behind it). Any stage with real users sets a certificate: HTTPS on 443, 80 redirects.
    """

    SERVICE = "storefront-web"
    # (kept as it was with Redis alone: a new text would change the user data and replace every instance)
    DESCRIPTION = "Storefront web tier (sessions in Redis, orders via the backend)"

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        instance_subnets: ec2.SubnetSelection,
        security_groups: TierSecurityGroups,
        sessions: SessionsStack,
        assets_bucket: s3.IBucket,
        activity_queue: sqs.IQueue,
        certificate: acm.ICertificate | None = None,
        **kwargs,
    ) -> None:
        """`certificate`: the Domain stack's DNS-validated one, when the stage names a domain and no
        certificateArn."""
        super().__init__(scope, construct_id, **kwargs)
        self.tier = self._build_tier(
            config=config,
            vpc=vpc,
            instance_subnets=instance_subnets,
            internet_facing=True,
            load_balancer_group=security_groups.web_alb,
            instance_group=security_groups.web_instances,
            min_capacity=config.web_min_capacity,
            max_capacity=config.web_max_capacity,
            sessions=sessions,
            requests_per_target_per_minute=config.web_requests_per_target_per_minute,
            certificate_arn=certificate.certificate_arn if certificate else config.certificate_arn,
        )
        assets = assets_bucket.arn_for_objects("*")
        self.tier.role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[assets]))
        acknowledge_wildcard_resource(
            self.tier.role,
            assets,
            "The web tier serves any static asset in the assets bucket: read-only s3:GetObject on its objects.",
        )
        # Storefront activity (services/web/activity.py): send to the activity queue, nothing else.
        activity_queue.grant_send_messages(self.tier.role)
        ssm.StringParameter(
            self,
            "ActivityQueueUrlParameter",
            parameter_name=config.parameter_name("discovery", "activity-queue-url"),
            string_value=activity_queue.queue_url,
            description="SQS queue for storefront activity events (views, searches, cart adds)",
        )
