"""Stateful data that outlives every compute deploy: DynamoDB tables and S3 buckets.

Kept apart from the stateless tiers so that a compute stack can be destroyed and redeployed
without touching orders, idempotency records, the producer/consumer hand-off bucket, staff uploads
or the picture jobs waiting for a worker.

The picture-jobs queue lives beside the media bucket because the bucket's event notification and the
queue's policy name each other: split over two stacks they would depend on each other. The worker
fleet that consumes the queue is the media stack's, so it can be redeployed without losing a job.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from contracts.handoff import INCOMING_PREFIX
from contracts.pictures import UPLOADS_PREFIX
from stacks.config import StageConfig
from stacks.constructs.implied_dependency import drop_implied_dependency, drop_implied_role_dependency
from stacks.constructs.log_encryption_key import LogEncryptionKey, LogEncryptionKeyProps
from stacks.constructs.queue_with_dlq import QueueWithDlq, QueueWithDlqProps
from stacks.nag import acknowledge
from stacks.stage_defaults import removal_policy

# Every bucket is versioned: an object that is overwritten or deleted stays recoverable (and a log that
# is rewritten is still evidence) until its noncurrent version expires after these many days.
# The construct id CDK gives its bucket-notifications handler (one per stack).
NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"
NONCURRENT_DAYS = {"access-logs": 30, "assets": 30, "handoff": 7, "media": 30}


def assets_read_by_cloudfront(stack: Stack, bucket: s3.IBucket) -> iam.PolicyStatement:
    """CloudFront's origin access control may read the pages, for a distribution of this account only.

    The storefront's distribution (stacks/storefront_stack.py) is deployed after this stack, so its id
    cannot be named here without a cycle: the condition admits this account's distributions instead.
    The objects are public web pages; nothing else in the account can read them through CloudFront
    without a distribution of its own, which only this account can create."""
    return iam.PolicyStatement(
        sid="CloudFrontOriginAccessControlReads",
        principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
        actions=["s3:GetObject"],
        resources=[bucket.arn_for_objects("*")],
        conditions={
            "ArnLike": {
                "AWS:SourceArn": stack.format_arn(
                    service="cloudfront", region="", resource="distribution", resource_name="*"
                )
            }
        },
    )


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
    """Orders, idempotency and inventory tables; static assets, hand-off and media buckets; the
    picture-jobs queue the media bucket notifies (`.picture_jobs`, with its DLQ); and `.log_key`, the
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
        self.assets_bucket.add_to_resource_policy(assets_read_by_cloudfront(self, self.assets_bucket))
        # Producers write, the consumer lists/gets/deletes (seed 003); objects left behind expire.
        self.handoff_bucket = bucket(
            "HandoffBucket",
            "handoff/",
            NONCURRENT_DAYS["handoff"],
            [s3.LifecycleRule(prefix=INCOMING_PREFIX, expiration=Duration.days(7))],
        )

        # Staff upload product pictures under uploads/; each created object is one picture job (seed 002's
        # image-processing scenario): S3 event notification -> SQS, consumed by the media stack's workers.
        self.media_bucket = bucket("MediaBucket", "media/", NONCURRENT_DAYS["media"], [])
        visibility = Duration.seconds(config.picture_job_visibility_seconds)
        self.picture_jobs = QueueWithDlq(
            self,
            "PictureJobs",
            props=QueueWithDlqProps(consumer_timeout=visibility, visibility_timeout=visibility, removal_policy=removal),
        )
        self.media_bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.picture_jobs.queue),
            s3.NotificationKeyFilter(prefix=UPLOADS_PREFIX),
        )
        # CDK's singleton handler of Custom::S3BucketNotifications (it writes the bucket's notification
        # configuration at deploy time; CloudFormation invokes it, nothing else can).
        handler = self.node.find_child(NOTIFICATIONS_HANDLER_ID)
        # Both reference what CDK also makes them depend on (cfn-lint W3005): the reference orders them.
        notifications = cast(CfnResource, self.media_bucket.node.find_child("Notifications").node.default_child)
        drop_implied_dependency(notifications, cast(CfnResource, self.picture_jobs.queue.node.default_child))
        drop_implied_role_dependency(
            cast(CfnResource, handler.node.default_child), cast(iam.IRole, handler.node.find_child("Role"))
        )
        acknowledge(
            handler.node.find_child("Role"),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's bucket-notifications custom-resource handler comes with AWSLambdaBasicExecutionRole (its own "
            "log stream only); it runs at deploy time, invoked by CloudFormation alone.",
        )
