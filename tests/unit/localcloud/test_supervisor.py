"""The supervisor's pure parts: what a user data script starts, scale-in victims, metric math."""

from __future__ import annotations

import pytest

from localcloud.supervisor import (
    Instance,
    Supervisor,
    _expression,
    customized_metric,
    parse_user_data,
    replacement_reason,
)

USER_DATA = """#!/bin/bash
aws s3 cp 's3://cdk-assets-000000000000-us-east-1/abc123.zip' '/var/tmp/storefront-services.zip' --region us-east-1
cat > /etc/systemd/system/storefront-web.service <<'UNIT'
[Service]
Environment=SERVICE_PORT=8080
Environment=DISCOVERY_PREFIX=/lc/local/discovery
ExecStart=/opt/storefront/venv/bin/python -m services.web
UNIT
"""


def test_user_data_names_the_module_its_environment_and_the_bundle():
    launch = parse_user_data(USER_DATA)
    assert launch is not None
    assert launch.module == "services.web"
    assert launch.environment == {"SERVICE_PORT": "8080", "DISCOVERY_PREFIX": "/lc/local/discovery"}
    assert launch.bundle == ("cdk-assets-000000000000-us-east-1", "abc123.zip")


def test_user_data_that_starts_no_service_is_not_supervised():
    assert parse_user_data("#!/bin/bash\nyum install -y httpd\n") is None


def instance(instance_id: str, zone: str, version: int = 1, launched_at: float = 0.0) -> Instance:
    return Instance(instance_id, "g", "subnet", zone, 8081, version, launched_at, lifecycle="InService")


def test_scale_in_takes_from_the_fullest_az_then_the_oldest_template_then_the_first_launched():
    live = [
        instance("a1", "us-east-1a", version=2, launched_at=1),
        instance("a2", "us-east-1a", version=1, launched_at=5),
        instance("a3", "us-east-1a", version=2, launched_at=0),
        instance("b1", "us-east-1b", version=1, launched_at=2),
    ]
    assert [v.instance_id for v in Supervisor.scale_in_victims(live, 2)] == ["a2", "a3"]
    # the AZs are even again: the next one comes from either, by the same rules
    assert [v.instance_id for v in Supervisor.scale_in_victims(live, 3)][-1] == "b1"


def test_backlog_per_instance_is_the_documented_metric_math():
    values = {"visible": 30.0, "running": 3.0}
    assert _expression("visible / running", values, 3) == 10.0
    assert _expression("visible / running + 1", values, 3) == 11.0
    with pytest.raises(ValueError):
        _expression("__import__('os')", values, 3)


def test_with_no_instance_in_service_the_backlog_is_carried_by_one():
    assert _expression("m1 / m2", {"m1": 12.0, "m2": 0.0}, 0) == 12.0


def test_a_customized_metric_on_the_group_size_is_measured_and_an_unknown_one_is_not():
    in_service = {"Namespace": "AWS/AutoScaling", "MetricName": "GroupInServiceInstances", "Dimensions": []}
    assert customized_metric(in_service, 4) == 4.0
    assert customized_metric({"Namespace": "Custom", "MetricName": "Nope"}, 4) is None
    math = {
        "Metrics": [
            {"Id": "m2", "MetricStat": {"Metric": in_service, "Stat": "Average"}, "ReturnData": False},
            {"Id": "e1", "Expression": "8 / m2", "ReturnData": True},
        ]
    }
    assert customized_metric(math, 4) == 2.0


ELB_GROUP = {"HealthCheckType": "ELB", "HealthCheckGracePeriod": 20}
TG = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/1"


def test_a_stopped_instance_fails_its_ec2_status_check_even_within_the_grace_period():
    assert replacement_reason(ELB_GROUP, False, -9, 1.0, {TG: "initial"}) == (
        "EC2 status check failed: the instance stopped (exit -9)"
    )


def test_an_unhealthy_target_counts_only_after_the_grace_period():
    assert replacement_reason(ELB_GROUP, True, None, 19.9, {TG: "unhealthy"}) is None
    assert (
        replacement_reason(ELB_GROUP, True, None, 20.0, {TG: "unhealthy"})
        == "ELB health check failed in targetgroup/web/1"
    )
    assert replacement_reason(ELB_GROUP, True, None, 60.0, {TG: "healthy"}) is None


def test_with_ec2_health_checks_only_the_target_group_verdict_is_ignored():
    assert replacement_reason({"HealthCheckType": "EC2"}, True, None, 600.0, {TG: "unhealthy"}) is None
