"""Product pictures: the worker fleet that renders staff uploads into the storefront's sizes.

    staff -> media bucket uploads/ --S3 event notification--> picture-jobs queue (+ DLQ)   [data stack]
          -> worker Auto Scaling group (EC2, long polling, no load balancer)               [this stack]
          -> assets bucket pictures/<sku>/<name>/<size>.jpg                                [data stack]

Nothing in this stack holds state: the uploads, the waiting jobs and the renditions live in the data
stack, so the fleet can be redeployed or destroyed without losing a picture. Uploader, queue and
workers know each other only through the notification and the queue: staff never wait for a
render, and a fleet at zero instances just lets the jobs wait. The fleet scales on its backlog per
instance (stacks/constructs/queue_worker_fleet.py). The workers find the queue and the assets
bucket through SSM discovery parameters written here.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from contracts.pictures import RENDERED_PREFIX, UPLOADS_PREFIX
from stacks.config import StageConfig
from stacks.constructs.discovery import publish
from stacks.constructs.queue_worker_fleet import QueueWorkerFleet, QueueWorkerFleetProps
from stacks.constructs.service_instances import (
    ServiceUserDataProps,
    grant_boot_and_discovery,
    machine_image,
    service_user_data,
)
from stacks.nag import acknowledge_wildcard_resource

# The worker's /health listener (no load balancer reaches it; loopback only on EC2).
HEALTH_PORT = 8080


class MediaStack(Stack):
    """`.fleet` (the picture workers) and the discovery parameters they read."""

    SERVICE = "storefront-pictures"
    DESCRIPTION = "Storefront picture worker (uploads -> renditions)"

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        vpc: ec2.IVpc,
        instance_subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        media_bucket: s3.IBucket,
        assets_bucket: s3.IBucket,
        picture_jobs_queue: sqs.IQueue,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        instance_type = ec2.InstanceType(config.instance_type)
        discovery_prefix = config.parameter_name("discovery")
        boot = service_user_data(
            self,
            props=ServiceUserDataProps(
                service=self.SERVICE,
                description=self.DESCRIPTION,
                instance_type=instance_type,
                environment={
                    "SERVICE_HOST": "127.0.0.1",  # /health is for the instance itself: nothing connects to it
                    "SERVICE_PORT": str(HEALTH_PORT),
                    "DISCOVERY_PREFIX": discovery_prefix,
                    "AWS_REGION": self.region,
                    "AWS_DEFAULT_REGION": self.region,
                    "PYTHONUNBUFFERED": "1",
                },
            ),
        )
        self.fleet = QueueWorkerFleet(
            self,
            "Workers",
            props=QueueWorkerFleetProps(
                vpc=vpc,
                instance_subnets=instance_subnets,
                security_group=security_group,
                instance_type=instance_type,
                machine_image=machine_image(config, self),
                user_data=boot.user_data,
                queue=picture_jobs_queue,
                min_capacity=config.picture_workers_min_capacity,
                max_capacity=config.picture_workers_max_capacity,
                backlog_per_instance=config.picture_backlog_per_instance,
            ),
        )
        role = self.fleet.role
        grant_boot_and_discovery(role, bundle=boot.bundle, discovery_prefix=discovery_prefix)

        # Reads originals under uploads/ only (the version the event names), never writes there.
        uploads = media_bucket.arn_for_objects(f"{UPLOADS_PREFIX}*")
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[uploads])
        )
        acknowledge_wildcard_resource(
            role, uploads, "Workers read any original staff upload under uploads/: read-only, that prefix only."
        )
        # Writes and checks renditions under pictures/ only. ListBucket makes a HEAD of a rendition not
        # written yet answer 404 instead of 403 (how a redelivered job finds what is already done).
        renditions = assets_bucket.arn_for_objects(f"{RENDERED_PREFIX}*")
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:GetObject"], resources=[renditions])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[assets_bucket.bucket_arn])
        )
        acknowledge_wildcard_resource(
            role,
            renditions,
            "Workers write and read back the renditions under pictures/ of the assets bucket, nothing else there.",
        )

        def discovery(name: str, value: str, description: str) -> ssm.StringParameter:
            return publish(self, config.parameter_name("discovery"), name, value, description)

        discovery("picture-jobs-queue-url", picture_jobs_queue.queue_url, "SQS queue of picture jobs (S3 events)")
        discovery("assets-bucket", assets_bucket.bucket_name, "S3 assets bucket (renditions under pictures/)")
        discovery("media-bucket", media_bucket.bucket_name, "S3 media bucket (staff upload under uploads/)")
