"""Observability: one dashboard, alarms on everything that can silently pile up or fail, one topic.

Alarms are matched to the resources they watch by resolving their metric dimensions (cross-stack
references included) back to resources of the synthesized app, so "every DLQ has an alarm" is
checked against the DLQs that actually exist, not against a list kept in the test.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template

from scripts.diagram import Assembly, Ref, build_graph, is_cdk_internal
from stacks.config import StageConfig
from stacks.observability_stack import (
    BUSINESS_METRICS,
    MonitoredSystem,
    ObservabilityStack,
    WatchedQueue,
)

STAGES = ["sandbox", "production", "local"]


def _observability(synthesized) -> tuple[str, dict]:
    stack = synthesized.app.stacks["observability"]
    return stack.artifact_id, synthesized.templates["observability"]


def _alarms(synthesized) -> dict[str, dict]:
    _, template = _observability(synthesized)
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def _metric_stats(alarm: dict) -> list[dict]:
    """The plain metrics an alarm evaluates (directly or inside metric math)."""
    if "MetricName" in alarm:
        return [
            {
                "Namespace": alarm["Namespace"],
                "MetricName": alarm["MetricName"],
                "Dimensions": alarm.get("Dimensions", []),
            }
        ]
    return [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]


def _watched(synthesized, namespace: str, metric_name: str, dimension: str) -> dict[Ref, list[dict]]:
    """Resource -> alarms on `namespace/metric_name` whose `dimension` refers to that resource."""
    assembly = Assembly(synthesized.outdir)
    artifact, _ = _observability(synthesized)
    found: dict[Ref, list[dict]] = {}
    for alarm in _alarms(synthesized).values():
        for metric in _metric_stats(alarm):
            if metric["Namespace"] != namespace or metric["MetricName"] != metric_name:
                continue
            for dim in metric.get("Dimensions", []):
                if dim["Name"] == dimension:
                    for ref in assembly.refs(dim["Value"], artifact):
                        found.setdefault(ref, []).append(alarm)
    return found


def _dead_letter_queues(synthesized) -> set[Ref]:
    """Every queue the app uses as a dead-letter target: SQS redrive, SNS subscription redrive,
    Lambda async-failure DLQs and EventBridge target DLQs."""
    assembly = Assembly(synthesized.outdir)
    dlqs: set[Ref] = set()
    for ref, resource in assembly.resources():
        props = resource.get("Properties", {})
        sources = [props.get("RedrivePolicy"), props.get("DeadLetterConfig")]
        sources += [t.get("DeadLetterConfig") for t in props.get("Targets", []) if isinstance(t, dict)]
        for source in filter(None, sources):
            dlqs |= {
                r for r in assembly.refs(source, ref.stack) if assembly.resource(r).get("Type") == "AWS::SQS::Queue"
            }
    return dlqs


# --- the alarm topic -----------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use_and_ssl_only(stage, request):
    template = request.getfixturevalue(stage).template("observability")
    topics = template.find_resources("AWS::SNS::Topic")
    assert len(topics) == 1, "exactly one alarm topic"
    [(topic_id, topic)] = topics.items()
    key_ref = topic["Properties"]["KmsMasterKeyId"]
    key_id = key_ref["Fn::GetAtt"][0] if "Fn::GetAtt" in key_ref else key_ref["Ref"]
    key = template.to_json()["Resources"][key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    cloudwatch_statements = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert cloudwatch_statements and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch_statements[0]["Action"])
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [{"Ref": topic_id}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Action": "sns:Publish",
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                            }
                        ),
                    ]
                )
            },
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_every_alarm_notifies_the_one_alarm_topic_and_says_what_to_do(stage, request):
    synthesized = request.getfixturevalue(stage)
    template = synthesized.template("observability")
    [topic_id] = template.find_resources("AWS::SNS::Topic")
    alarms = _alarms(synthesized)
    assert len(alarms) >= 20
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], name
        assert alarm["ActionsEnabled"] is True, name
        assert len(alarm.get("AlarmDescription", "")) >= 60, f"{name}: the description must say what to do"
    # No alarm anywhere else in the app notifies a different (or no) destination.
    for key, other in synthesized.templates.items():
        if key != "observability":
            assert not [r for r in other["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"], key


def test_email_subscription_only_when_an_address_is_configured(sandbox):
    assert sandbox.app.config.alarm_email is None
    sandbox.template("observability").resource_count_is("AWS::SNS::Subscription", 0)
    template = _small_app(
        StageConfig(stage="sandbox", allow_plain_http=True, encryption_keys="default", alarm_email="ops@example.com")
    )
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})


# --- alarms per kind of resource -------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_every_dead_letter_queue_alarms_on_its_first_message(stage, request):
    synthesized = request.getfixturevalue(stage)
    dlqs = _dead_letter_queues(synthesized)
    assert len(dlqs) >= 8, "fan-out, FIFO, delay, subscription and async-invoke DLQs"
    watched = _watched(synthesized, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName")
    for dlq in dlqs:
        alarms = [
            a
            for a in watched.get(dlq, [])
            if a["Threshold"] == 1 and a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        ]
        assert alarms, f"no depth >= 1 alarm on DLQ {dlq.key}"
        assert alarms[0]["EvaluationPeriods"] == 1, "one message is enough: no waiting for more periods"


@pytest.mark.parametrize("stage", STAGES)
def test_every_work_queue_alarms_when_its_oldest_message_breaks_the_slo(stage, request):
    synthesized = request.getfixturevalue(stage)
    assembly = Assembly(synthesized.outdir)
    dlqs = _dead_letter_queues(synthesized)
    work_queues = {
        ref
        for ref, r in assembly.resources()
        if r["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in r.get("Properties", {}) and ref not in dlqs
    }
    assert len(work_queues) >= 5
    watched = _watched(synthesized, "AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName")
    for queue in work_queues:
        thresholds = {a["Threshold"] for a in watched.get(queue, [])}
        assert thresholds == {synthesized.app.config.queue_age_slo_seconds}, queue.key


def test_queue_age_threshold_follows_the_config():
    template = _small_app(
        StageConfig(stage="sandbox", allow_plain_http=True, encryption_keys="default", queue_age_slo_seconds=123)
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Threshold": 123,
            "Metrics": Match.array_with(
                [
                    Match.object_like(
                        {
                            "MetricStat": Match.object_like(
                                {"Metric": Match.object_like({"MetricName": "ApproximateAgeOfOldestMessage"})}
                            )
                        }
                    )
                ]
            ),
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_every_lambda_function_alarms_on_errors_and_throttles(stage, request):
    synthesized = request.getfixturevalue(stage)
    assembly = Assembly(synthesized.outdir)
    functions = {
        ref for ref, r in assembly.resources() if r["Type"] == "AWS::Lambda::Function" and not is_cdk_internal(ref, r)
    }
    assert len(functions) >= 10
    for metric in ("Errors", "Throttles"):
        watched = _watched(synthesized, "AWS/Lambda", metric, "FunctionName")
        assert functions - set(watched) == set(), f"functions without a {metric} alarm"


@pytest.mark.parametrize("stage", STAGES)
def test_failed_and_timed_out_checkouts_alarm(stage, request):
    synthesized = request.getfixturevalue(stage)
    workflow = synthesized.app.stacks["workflow"]
    machine = Ref(workflow.artifact_id, workflow.get_logical_id(workflow.state_machine.node.default_child))
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut"):
        alarms = _watched(synthesized, "AWS/States", metric, "StateMachineArn").get(machine, [])
        assert [
            a for a in alarms if a["Threshold"] == 1 and a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        ], metric
    # A compensated checkout fails too (Fail state CheckoutCancelled): the failed-executions alarm must say
    # so and tell the two cases apart, or every declined card reads as broken compensation.
    [failed] = _watched(synthesized, "AWS/States", "ExecutionsFailed", "StateMachineArn")[machine]
    description = failed["AlarmDescription"]
    assert "CheckoutCancelled" in description and "compensated" in description
    assert "execution history" in description and "any other error" in description
    assert workflow.node.try_find_child("CheckoutCancelled") is not None  # the Fail state the text names


def test_api_5xx_rate_alarm_is_a_percentage_of_requests(sandbox):
    api = sandbox.app.stacks["api"]
    rest_api = Ref(api.artifact_id, api.get_logical_id(api.rest_api.node.default_child))
    alarms = [a for a in _alarms(sandbox).values() if any(m["MetricName"] == "5XXError" for m in _metric_stats(a))]
    assert len(alarms) == 1
    [alarm] = alarms
    expression = next(m for m in alarm["Metrics"] if "Expression" in m)
    assert "* 100" in expression["Expression"]
    stat = next(m for m in alarm["Metrics"] if "MetricStat" in m)["MetricStat"]
    assert stat["Stat"] == "Average", "the Average of 5XXError is the fraction of failed requests"
    assert alarm["Threshold"] == 5
    api_name = next(d for d in stat["Metric"]["Dimensions"] if d["Name"] == "ApiName")
    # The dimension is the REST API's name, which the API stack sets from the stage config.
    assert api_name["Value"] == sandbox.app.config.stack_name("api") or rest_api in set(
        Assembly(sandbox.outdir).refs(api_name["Value"], sandbox.app.stacks["observability"].artifact_id)
    )


@pytest.mark.parametrize("tier", ["web", "backend"])
def test_each_tier_alarms_on_unhealthy_hosts_and_5xx(sandbox, tier):
    stack = sandbox.app.stacks[tier]
    target_group = Ref(stack.artifact_id, stack.get_logical_id(stack.target_group.node.default_child))
    unhealthy = _watched(sandbox, "AWS/ApplicationELB", "UnHealthyHostCount", "TargetGroup").get(target_group, [])
    assert [a for a in unhealthy if a["Threshold"] == 1 and a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"]
    balancer = Ref(stack.artifact_id, stack.get_logical_id(stack.load_balancer.node.default_child))
    for metric in ("HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count"):
        assert _watched(sandbox, "AWS/ApplicationELB", metric, "LoadBalancer").get(balancer), metric


# --- the dashboard ---------------------------------------------------------------------------------


def test_one_dashboard_with_a_widget_for_every_category(sandbox):
    dashboards = [
        r
        for t in sandbox.templates.values()
        for r in t["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    assert len(dashboards) == 1, "one dashboard for the whole system"
    body = json.dumps(dashboards[0]["Properties"]["DashboardBody"])
    expected = {
        "API Gateway": ["AWS/ApiGateway", "4XXError", "5XXError", "Latency"],
        "Lambda": ["AWS/Lambda", "Errors", "Throttles", "Duration"],
        "SQS": ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"],
        "SNS": ["NumberOfNotificationsFailed"],
        "Step Functions": ["ExecutionsFailed", "ExecutionsTimedOut"],
        "DynamoDB": ["ReadThrottleEvents", "WriteThrottleEvents"],
        "business metrics": [*BUSINESS_METRICS, "Storefront"],
    }
    if "web" in sandbox.templates:
        expected["ALB"] = ["RequestCount", "HTTPCode_ELB_5XX_Count", "TargetResponseTime", "HealthyHostCount"]
        expected["ASG"] = ["GroupDesiredCapacity", "GroupInServiceInstances"]
    if "sessions" in sandbox.templates:
        expected["ElastiCache"] = [
            "AWS/ElastiCache",
            "CPUUtilization",
            "FreeableMemory",
            "CurrConnections",
            "Evictions",
        ]
    for category, needles in expected.items():
        missing = [n for n in needles if n not in body]
        assert missing == [], f"{category}: no widget for {missing}"


# --- scaling -------------------------------------------------------------------------------------


def test_every_auto_scaling_group_that_consumes_a_queue_scales_on_its_backlog_per_instance(sandbox):
    """Backlog-per-instance scaling is needed where an ASG consumes a queue (the picture workers; the
    other queues have Lambda consumers): such a group must track that queue's visible messages per
    in-service instance, or a backlog would wait for a CPU alarm that never comes."""
    graph = build_graph(sandbox.outdir)
    consuming = [
        (s, t)
        for (s, t), edge in graph.edges.items()
        if graph.nodes[s].resource_type == "AWS::AutoScaling::AutoScalingGroup"
        and graph.nodes[t].resource_type == "AWS::SQS::Queue"
        and "consume" in edge.labels
    ]
    assert len(consuming) == 1, consuming  # the picture workers
    artifact_of = {stack.artifact_id: key for key, stack in sandbox.app.stacks.items()}
    for group, queue in consuming:
        artifact, group_id = group.split(".", 1)
        queue_id = queue.split(".", 1)[1]
        policies = [
            p["Properties"]
            for p in sandbox.templates[artifact_of[artifact]]["Resources"].values()
            if p["Type"] == "AWS::AutoScaling::ScalingPolicy"
            and p["Properties"].get("AutoScalingGroupName") == {"Ref": group_id}
        ]
        tracked = [
            metric["MetricStat"]["Metric"]
            for policy in policies
            for metric in policy["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
            if "MetricStat" in metric
        ]
        queue_depth = [m for m in tracked if m["MetricName"] == "ApproximateNumberOfMessagesVisible"]
        assert queue_depth and queue_id in json.dumps(queue_depth[0]["Dimensions"]), group
        assert any(m["MetricName"] == "GroupInServiceInstances" for m in tracked), group


def test_web_tier_scales_on_cpu_and_request_count(sandbox):
    policies = sandbox.template("web").find_resources(
        "AWS::AutoScaling::ScalingPolicy", {"Properties": {"PolicyType": "TargetTrackingScaling"}}
    )
    metrics = {
        p["Properties"]["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]
        for p in policies.values()
    }
    assert {"ASGAverageCPUUtilization", "ALBRequestCountPerTarget"} <= metrics


# --- access logs (built by the ALB and API owners; asserted here because operations rely on them) --


def test_api_stage_writes_access_logs(sandbox):
    sandbox.template("api").has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.string_like_regexp("requestId")},
        },
    )


@pytest.mark.parametrize("tier", ["web", "backend"])
def test_load_balancers_write_access_logs(sandbox, tier):
    sandbox.template(tier).has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with([{"Key": "access_logs.s3.enabled", "Value": "true"}]),
        },
    )


# --- helpers -------------------------------------------------------------------------------------


def _small_app(config: StageConfig) -> Template:
    """The observability stack over one queue pair: fast, and lets a test vary the config."""
    app = cdk.App()
    source = cdk.Stack(app, "Source")
    dlq = sqs.Queue(source, "Dlq", enforce_ssl=True)
    queue = sqs.Queue(
        source,
        "Queue",
        enforce_ssl=True,
        visibility_timeout=Duration.seconds(30),
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=3),
    )
    stack = ObservabilityStack(
        app, "Observability", config=config, system=MonitoredSystem(queues=[WatchedQueue("orders", queue, dlq)])
    )
    return Template.from_stack(stack)
