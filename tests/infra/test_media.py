"""The media pipeline: staff uploads -> S3 event notification -> picture-jobs queue (+ DLQ) -> a worker
Auto Scaling group without a load balancer, scaled on its backlog per instance, hardened like the tiers.

The decoupling property: uploader and workers share nothing but the queue. S3 is the only sender,
the workers only consume, nothing can connect to a worker, and the fleet's size follows the queue."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Stack

from contracts.pictures import RENDERED_PREFIX, UPLOADS_PREFIX
from localcloud.supervisor import customized_metric, parse_user_data
from stacks.constructs.queue_worker_fleet import BACKLOG_EXPRESSION
from stacks.media_stack import HEALTH_PORT
from tests.infra.test_tiers import actions, only, resource_list, resources, role_statements, user_data

STAGES = ["sandbox", "production", "local"]


def logical_id(construct) -> str:
    return Stack.of(construct).resolve(construct.node.default_child.logical_id)


def queue_ids(synthesized) -> tuple[str, str]:
    jobs = synthesized.app.stacks["data"].picture_jobs
    return logical_id(jobs.queue), logical_id(jobs.dlq)


# --- uploads -> queue ---------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_an_upload_under_uploads_notifies_the_picture_jobs_queue_only(stage, request):
    synthesized = request.getfixturevalue(stage)
    data = synthesized.templates["data"]
    queue, _ = queue_ids(synthesized)
    media = logical_id(synthesized.app.stacks["data"].media_bucket)
    (notifications,) = [r for r in data["Resources"].values() if r["Type"] == "Custom::S3BucketNotifications"]
    props = notifications["Properties"]
    assert props["BucketName"] == {"Ref": media}
    config = props["NotificationConfiguration"]
    assert set(config) == {"QueueConfigurations"}  # no Lambda, no topic: the queue is the one consumer
    (target,) = config["QueueConfigurations"]
    assert target["QueueArn"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert target["Events"] == ["s3:ObjectCreated:*"]
    assert target["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": UPLOADS_PREFIX}]}}


@pytest.mark.parametrize("stage", STAGES)
def test_picture_jobs_have_a_dlq_long_polling_and_the_configured_visibility(stage, request):
    synthesized = request.getfixturevalue(stage)
    queue, dlq = queue_ids(synthesized)
    props = synthesized.templates["data"]["Resources"][queue]["Properties"]
    assert props["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]}, "maxReceiveCount": 3}
    assert props["ReceiveMessageWaitTimeSeconds"] == 20
    assert props["VisibilityTimeout"] == synthesized.app.config.picture_job_visibility_seconds
    assert props["SqsManagedSseEnabled"] is True


def test_only_s3_from_the_media_bucket_may_send_picture_jobs(sandbox):
    """The producer side of the queue is the bucket's notification: no role of any stack may send."""
    queue, _ = queue_ids(sandbox)
    media = logical_id(sandbox.app.stacks["data"].media_bucket)
    (policy,) = [
        r["Properties"]
        for r in sandbox.templates["data"]["Resources"].values()
        if r["Type"] == "AWS::SQS::QueuePolicy" and {"Ref": queue} in r["Properties"]["Queues"]
    ]
    senders = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(senders) == 1
    assert senders[0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert senders[0]["Condition"]["ArnLike"]["aws:SourceArn"] == {"Fn::GetAtt": [media, "Arn"]}
    for key in sandbox.templates:
        for found in resources(sandbox, key, "AWS::IAM::Policy").values():
            for statement in found["Properties"]["PolicyDocument"]["Statement"]:
                if "sqs:SendMessage" in actions(statement):
                    assert queue not in json.dumps(statement["Resource"]), (key, statement)


# --- the worker fleet ---------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_the_fleet_has_no_load_balancer_and_nothing_can_connect_to_it(stage, request):
    synthesized = request.getfixturevalue(stage)
    media = synthesized.templates["media"]["Resources"]
    assert not [r for r in media.values() if r["Type"].startswith("AWS::ElasticLoadBalancingV2::")]
    _, group = only(synthesized, "media", "AWS::AutoScaling::AutoScalingGroup")
    props = group["Properties"]
    assert "TargetGroupARNs" not in props and "LoadBalancerNames" not in props
    assert props["HealthCheckType"] == "EC2"
    workers = logical_id(synthesized.app.stacks["network"].security_groups.picture_workers)
    (worker_group,) = [
        r["Properties"] for k, r in synthesized.templates["network"]["Resources"].items() if k == workers
    ]
    assert "SecurityGroupIngress" not in worker_group
    network = synthesized.app.stacks["network"]
    app_subnets = [logical_id(s) for s in network.vpc.select_subnets(subnet_group_name="App").subnets]
    assert len(props["VPCZoneIdentifier"]) == len(app_subnets) >= 2


@pytest.mark.parametrize("stage", STAGES)
def test_the_fleet_scales_on_backlog_per_instance_between_the_configured_bounds(stage, request):
    """AWS's pattern: target tracking on visible messages / in-service instances, at the acceptable
    backlog per instance; group metrics on (GroupInServiceInstances is the denominator)."""
    synthesized = request.getfixturevalue(stage)
    config = synthesized.app.config
    group_id, group = only(synthesized, "media", "AWS::AutoScaling::AutoScalingGroup")
    props = group["Properties"]
    assert int(props["MinSize"]) == config.picture_workers_min_capacity in (0, 1)
    assert int(props["MaxSize"]) == config.picture_workers_max_capacity
    assert props["MetricsCollection"] == [{"Granularity": "1Minute"}]
    _, policy = only(synthesized, "media", "AWS::AutoScaling::ScalingPolicy")
    policy_props = policy["Properties"]
    assert policy_props["PolicyType"] == "TargetTrackingScaling"
    assert policy_props["AutoScalingGroupName"] == {"Ref": group_id}
    tracking = policy_props["TargetTrackingConfiguration"]
    assert tracking["TargetValue"] == config.picture_backlog_per_instance
    assert not tracking.get("DisableScaleIn")
    metrics = {m["Id"]: m for m in tracking["CustomizedMetricSpecification"]["Metrics"]}
    assert [m for m in metrics.values() if m["ReturnData"]] == [metrics["backlog_per_instance"]]
    assert metrics["backlog_per_instance"]["Expression"] == BACKLOG_EXPRESSION == "visible / in_service"
    visible = metrics["visible"]["MetricStat"]["Metric"]
    assert (visible["Namespace"], visible["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    (queue_name,) = visible["Dimensions"]
    assert queue_name["Name"] == "QueueName"
    queue, _ = queue_ids(synthesized)
    assert queue in json.dumps(queue_name["Value"])  # the picture-jobs queue (a cross-stack reference)
    in_service = metrics["in_service"]["MetricStat"]["Metric"]
    assert (in_service["Namespace"], in_service["MetricName"]) == ("AWS/AutoScaling", "GroupInServiceInstances")
    assert in_service["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": {"Ref": group_id}}]


def test_the_local_supervisor_reads_the_policy_as_the_backlog_per_instance(local):
    """The template's metric math, as the local cloud's Auto Scaling evaluates it: the queue depth is
    MiniStack's (not here), so the numerator is swapped for the group size: 4 / 4 in service."""
    _, policy = only(local, "media", "AWS::AutoScaling::ScalingPolicy")
    spec = json.loads(json.dumps(policy["Properties"]["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]))
    for query in spec["Metrics"]:
        if query["Id"] == "visible":
            query["MetricStat"]["Metric"] = {"Namespace": "AWS/AutoScaling", "MetricName": "GroupInServiceInstances"}
    assert customized_metric(spec, 4) == 1.0  # 4 "visible" / 4 in service


@pytest.mark.parametrize("stage", STAGES)
def test_worker_launch_template_is_hardened_like_the_tiers(stage, request):
    synthesized = request.getfixturevalue(stage)
    _, template = only(synthesized, "media", "AWS::EC2::LaunchTemplate")
    data = template["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 1, "HttpTokens": "required"}
    assert "KeyName" not in data
    [root] = data["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["VolumeType"] == "gp3"
    assert data["InstanceType"] == synthesized.app.config.instance_type
    _, role = only(synthesized, "media", "AWS::IAM::Role")
    assert "ManagedPolicyArns" not in role["Properties"]
    assert [p["PolicyName"] for p in role["Properties"]["Policies"]] == ["SessionManager"]
    # The tiers' launch template, built by the same code: the same hardening, key for key.
    _, web = only(synthesized, "web", "AWS::EC2::LaunchTemplate")
    web_data = web["Properties"]["LaunchTemplateData"]
    for key in ("MetadataOptions", "BlockDeviceMappings", "Monitoring", "ImageId", "InstanceType"):
        assert data[key] == web_data[key], key


def test_user_data_runs_the_picture_worker_with_health_on_loopback(sandbox):
    launch = parse_user_data(user_data(sandbox, "media"))
    assert launch is not None and launch.module == "services.pictures"
    assert launch.bundle is not None
    assert launch.environment["SERVICE_HOST"] == "127.0.0.1"
    assert launch.environment["SERVICE_PORT"] == str(HEALTH_PORT)
    assert launch.environment["DISCOVERY_PREFIX"] == sandbox.app.config.parameter_name("discovery")


def test_workers_read_uploads_write_renditions_and_consume_the_queue_nothing_more(sandbox):
    data = sandbox.app.stacks["data"]
    media, assets = logical_id(data.media_bucket), logical_id(data.assets_bucket)
    queue, _ = queue_ids(sandbox)
    granted: dict[str, set[str]] = {}
    for statement in role_statements(sandbox, "media"):
        for resource in resource_list(statement):
            rendered = json.dumps(resource)
            where = (
                "uploads"
                if media in rendered and UPLOADS_PREFIX in rendered
                else "renditions"
                if assets in rendered and RENDERED_PREFIX in rendered
                else "assets-bucket"
                if assets in rendered
                else "queue"
                if queue in rendered
                else "other"
            )
            granted.setdefault(where, set()).update(actions(statement))
    assert granted["uploads"] == {"s3:GetObject", "s3:GetObjectVersion"}
    assert granted["renditions"] == {"s3:PutObject", "s3:GetObject"}
    assert granted["assets-bucket"] == {"s3:ListBucket"}
    assert "sqs:ReceiveMessage" in granted["queue"] and "sqs:DeleteMessage" in granted["queue"]
    assert "sqs:ChangeMessageVisibility" in granted["queue"]
    assert not {a for a in granted["queue"] if a.startswith("sqs:Send")}
    # What is left: the service bundle and the discovery namespace, as for the tiers.
    assert granted["other"] == {"s3:GetObject", "ssm:GetParametersByPath", "ssm:GetParameter", "ssm:GetParameters"}


def test_the_workers_find_the_queue_and_the_assets_bucket_through_discovery(sandbox):
    prefix = sandbox.app.config.parameter_name("discovery")
    names = {p["Properties"]["Name"] for p in resources(sandbox, "media", "AWS::SSM::Parameter").values()}
    assert names == {f"{prefix}/picture-jobs-queue-url", f"{prefix}/assets-bucket", f"{prefix}/media-bucket"}
