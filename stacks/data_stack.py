"""Stateful data that outlives every compute deploy: DynamoDB tables and S3 buckets.

Kept apart from the stateless tiers so that a compute stack can be destroyed and redeployed
without touching orders, idempotency records or the producer/consumer hand-off bucket.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contracts.handoff import INCOMING_PREFIX
from stacks.config import StageConfig
from stacks.constructs.log_encryption_key import LogEncryptionKey, LogEncryptionKeyProps
from stacks.stage_defaults import removal_policy

# Every bucket is versioned: an object that is overwritten or deleted stays recoverable (and a log that
# is rewritten is still evidence) until its noncurrent version expires after these many days.
NONCURRENT_DAYS = {"access-logs": 30, "assets": 30, "handoff": 7}


def standard_table(
    scope: Construct,
    construct_id: str,
    *,
    partition: str,
    sort: str | None = None,
    ttl: str | None = None,
    removal_policy: RemovalPolicy,
    stream: dynamodb.StreamViewType | None = None,
) -> dynamodb.Table:
    """Every table of the app: string keys, pay-per-request, point-in-time recovery, encrypted at rest
    (AWS managed key), an optional TTL attribute, the stage's removal policy."""
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition, type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name=sort, type=dynamodb.AttributeType.STRING) if sort else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        time_to_live_attribute=ttl,
        removal_policy=removal_policy,
        stream=stream,
    )


class DataStack(Stack):
    """Orders, idempotency and inventory tables; static assets and hand-off buckets; and `.log_key`, the
    stage's CloudWatch Logs key (None unless `encryptionKeys: cmk`). The key lives here because every
    stack with a log group already deploys after this one, and it must outlive them all (their logs
    are unreadable without it): it is handed to them through the app builder, never looked up."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = removal_policy(config)
        self.log_key: kms.IKey | None = None
        if config.encryption_keys == "cmk":
            self.log_key = LogEncryptionKey(
                self,
                "LogEncryptionKey",
                props=LogEncryptionKeyProps(
                    removal_policy=removal,
                    description=f"Encrypts the CloudWatch log groups of {config.stack_name('*')}",
                ),
            ).key

        def table(name: str, partition: str, sort: str | None = None, ttl: str | None = None) -> dynamodb.Table:
            return standard_table(self, name, partition=partition, sort=sort, ttl=ttl, removal_policy=removal)

        # Single-table design: pk = ORDER#<id>; sk = META | NOTIFICATION | APPROVAL | ...
        # The stream (old and new images) feeds the live order status (stacks/live_status_stack.py).
        self.orders_table = standard_table(
            self,
            "OrdersTable",
            partition="pk",
            sort="sk",
            ttl="expires_at",
            removal_policy=removal,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
        )
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
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(90),
                    noncurrent_version_expiration=Duration.days(NONCURRENT_DAYS["access-logs"]),
                )
            ],
            removal_policy=removal,
            auto_delete_objects=False,
        )

        def bucket(name: str, log_prefix: str, noncurrent_days: int, rules: list[s3.LifecycleRule]) -> s3.Bucket:
            # Deleted objects leave a delete marker and a noncurrent version: both go after noncurrent_days.
            cleanup = s3.LifecycleRule(
                noncurrent_version_expiration=Duration.days(noncurrent_days), expired_object_delete_marker=True
            )
            return s3.Bucket(
                self,
                name,
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                enforce_ssl=True,
                versioned=True,
                server_access_logs_bucket=self.access_logs_bucket,
                server_access_logs_prefix=log_prefix,
                lifecycle_rules=[*rules, cleanup],
                removal_policy=removal,
            )

        # Static web assets live outside the instances (seed 002: "stored externally, such as on S3").
        self.assets_bucket = bucket("AssetsBucket", "assets/", NONCURRENT_DAYS["assets"], [])
        # Producers write, the consumer lists/gets/deletes (seed 003); objects left behind expire.
        self.handoff_bucket = bucket(
            "HandoffBucket",
            "handoff/",
            NONCURRENT_DAYS["handoff"],
            [s3.LifecycleRule(prefix=INCOMING_PREFIX, expiration=Duration.days(7))],
        )
