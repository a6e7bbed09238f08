"""Stateful data that outlives every compute deploy: DynamoDB tables and S3 buckets.

Kept apart from the stateless tiers so that a compute stack can be destroyed and redeployed
without touching orders, idempotency records or the producer/consumer hand-off bucket.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contracts.handoff import INCOMING_PREFIX
from stacks.config import StageConfig
from stacks.stage_defaults import removal_policy

# Prefix under which producers drop hand-off objects; the consumer lists only this prefix.


class DataStack(Stack):
    """Orders, idempotency and inventory tables; static assets and hand-off buckets."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = removal_policy(config)

        def table(name: str, partition: str, sort: str | None = None, ttl: str | None = None) -> dynamodb.Table:
            return dynamodb.Table(
                self,
                name,
                partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name=sort, type=dynamodb.AttributeType.STRING) if sort else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                time_to_live_attribute=ttl,
                removal_policy=removal,
            )

        # Single-table design: pk = ORDER#<id>; sk = META | NOTIFICATION | APPROVAL | ...
        self.orders_table = table("OrdersTable", "pk", "sk", ttl="expires_at")
        # Powertools idempotency layout: partition key `id`, TTL attribute `expiration`.
        self.idempotency_table = table("IdempotencyTable", "id", ttl="expiration")
        # One item per SKU: on-hand and reserved counts, changed only by conditional updates.
        self.inventory_table = table("InventoryTable", "sku")

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=removal,
            auto_delete_objects=False,
        )

        def bucket(name: str, log_prefix: str, **extra) -> s3.Bucket:
            return s3.Bucket(
                self,
                name,
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=config.is_production,
                server_access_logs_bucket=self.access_logs_bucket,
                server_access_logs_prefix=log_prefix,
                removal_policy=removal,
                **extra,
            )

        # Static web assets live outside the instances (seed 002: "stored externally, such as on S3").
        self.assets_bucket = bucket("AssetsBucket", "assets/")
        # Producers write, the consumer lists/gets/deletes (seed 003); objects left behind expire.
        self.handoff_bucket = bucket(
            "HandoffBucket",
            "handoff/",
            lifecycle_rules=[s3.LifecycleRule(prefix=INCOMING_PREFIX, expiration=Duration.days(7))],
        )
