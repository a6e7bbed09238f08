"""The EC2 tiers: hardened, self-healing, scaling instances behind their ALBs; least-privilege roles;
the HTTPS path when a certificate is configured; user data that installs and supervises the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pytest
from aws_cdk import DockerImage, Stack
from aws_cdk import aws_ec2 as ec2

from localcloud.supervisor import parse_user_data
from stacks.constructs.platform_pip import manylinux_platform, pip_download_command
from stacks.constructs.service_bundle import PACKAGE_DIR, ServiceBundler
from stacks.constructs.tier_security_groups import APP_PORT
from tests.infra.conftest import TEST_CERTIFICATE_ARN, synthesize

STAGES = ["sandbox", "production", "local"]
TIERS = ["web", "backend"]
CERTIFICATE_ARN = TEST_CERTIFICATE_ARN
# The local bundlers never read the Docker image CDK hands them (their point is to need none).
NO_IMAGE = cast(DockerImage, None)


@pytest.fixture(scope="module")
def with_certificate():
    """The sandbox profile with a certificate: the one extra synth this suite needs."""
    return synthesize("sandbox", certificateArn=CERTIFICATE_ARN)


def resources(synthesized, key: str, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in synthesized.templates[key]["Resources"].items() if v["Type"] == resource_type}


def only(synthesized, key: str, resource_type: str) -> tuple[str, dict]:
    found = resources(synthesized, key, resource_type)
    assert len(found) == 1, f"{key}: {resource_type} x{len(found)}"
    return next(iter(found.items()))


def logical_id(construct) -> str:
    return Stack.of(construct).resolve(construct.node.default_child.logical_id)


def output_names(value) -> list[str]:
    """Cross-stack references (Fn::GetStackOutput) inside `value`, as their output names."""
    return [part.split('"')[0] for part in json.dumps(value).split('"OutputName": "')[1:]]


def user_data(synthesized, key: str) -> str:
    _, template = only(synthesized, key, "AWS::EC2::LaunchTemplate")
    script = template["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    if isinstance(script, str):  # account and region known: nothing left for CloudFormation to fill in
        return script
    return "".join(p if isinstance(p, str) else json.dumps(p) for p in script["Fn::Join"][1])


def role_statements(synthesized, key: str) -> list[dict]:
    role_id, _ = only(synthesized, key, "AWS::IAM::Role")
    statements = []
    for policy in resources(synthesized, key, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def resource_list(statement: dict) -> list:
    return statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]


def actions(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


# --- instances ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("tier", TIERS)
def test_launch_template_requires_imdsv2_encrypts_root_and_has_no_ssh_key(stage, tier, request):
    synthesized = request.getfixturevalue(stage)
    _, template = only(synthesized, tier, "AWS::EC2::LaunchTemplate")
    data = template["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert "KeyName" not in data
    [root] = data["BlockDeviceMappings"]
    assert root["Ebs"]["Encrypted"] is True and root["Ebs"]["VolumeType"] == "gp3"
    assert data["InstanceType"] == synthesized.app.config.instance_type


@pytest.mark.parametrize("tier", TIERS)
def test_session_manager_is_the_only_way_in_and_grants_nothing_else(tier, sandbox):
    _, role = only(sandbox, tier, "AWS::IAM::Role")
    props = role["Properties"]
    assert props["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    # No AWS managed policy: AmazonSSMManagedInstanceCore would also allow ssm:GetParameter(s) on "*".
    assert "ManagedPolicyArns" not in props
    [inline] = props["Policies"]
    granted = {a for s in inline["PolicyDocument"]["Statement"] for a in actions(s)}
    assert granted == {
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
        "ssm:UpdateInstanceInformation",
    }
    # Port 22 is not open anywhere (the security-group chain is asserted in test_network).
    assert '"FromPort": 22' not in json.dumps(sandbox.templates["network"])


@pytest.mark.parametrize("tier", TIERS)
def test_parameter_reads_are_confined_to_the_discovery_path(tier, sandbox):
    prefix = sandbox.app.config.parameter_name("discovery")
    _, role = only(sandbox, tier, "AWS::IAM::Role")
    statements = role_statements(sandbox, tier) + role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    reads = [s for s in statements if any(a.startswith("ssm:GetParameter") for a in actions(s))]
    assert len(reads) == 1
    assert [r["Fn::Join"][1][-1] for r in resource_list(reads[0])] == [f":parameter{prefix}", f":parameter{prefix}/*"]


def test_amazon_linux_2023_comes_from_the_public_ssm_parameter_for_the_instance_architecture(sandbox):
    _, template = only(sandbox, "web", "AWS::EC2::LaunchTemplate")
    parameter = template["Properties"]["LaunchTemplateData"]["ImageId"]["Ref"]
    default = sandbox.templates["web"]["Parameters"][parameter]["Default"]
    assert default.startswith("/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-")
    assert default.endswith("-arm64")  # t4g: Graviton


@pytest.mark.parametrize("tier", TIERS)
def test_local_stage_uses_the_configured_ami_without_any_lookup(tier, local):
    _, template = only(local, tier, "AWS::EC2::LaunchTemplate")
    assert template["Properties"]["LaunchTemplateData"]["ImageId"] == local.app.config.ami_id
    assert not [p for p in local.templates[tier].get("Parameters", {}) if p.startswith("SsmParameterValue")]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("tier", TIERS)
def test_auto_scaling_group_spans_app_subnets_and_heals_on_elb_health(stage, tier, request):
    synthesized = request.getfixturevalue(stage)
    config = synthesized.app.config
    network = synthesized.app.stacks["network"]
    app_subnets = [logical_id(s) for s in network.vpc.select_subnets(subnet_group_name="App").subnets]
    _, group = only(synthesized, tier, "AWS::AutoScaling::AutoScalingGroup")
    props = group["Properties"]
    minimum = config.web_min_capacity if tier == "web" else config.backend_min_capacity
    maximum = config.web_max_capacity if tier == "web" else config.backend_max_capacity
    assert int(props["MinSize"]) == minimum >= 2 and int(props["MaxSize"]) == maximum
    zones = output_names(props["VPCZoneIdentifier"])
    assert len(zones) == config.max_azs >= 2
    assert sorted(next(s for s in app_subnets if s in name) for name in zones) == sorted(app_subnets)
    assert props["HealthCheckType"] == "ELB" and props["HealthCheckGracePeriod"] > 0
    assert {n["TopicARN"]["Ref"] for n in props["NotificationConfigurations"]} == set(
        resources(synthesized, tier, "AWS::SNS::Topic")
    )


@pytest.mark.parametrize(
    "tier,metrics",
    [("web", {"ASGAverageCPUUtilization", "ALBRequestCountPerTarget"}), ("backend", {"ASGAverageCPUUtilization"})],
)
def test_target_tracking_scaling(tier, metrics, sandbox):
    policies = resources(sandbox, tier, "AWS::AutoScaling::ScalingPolicy").values()
    tracking = {
        p["Properties"]["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]: p[
            "Properties"
        ]["TargetTrackingConfiguration"]["TargetValue"]
        for p in policies
        if p["Properties"]["PolicyType"] == "TargetTrackingScaling"
    }
    assert set(tracking) == metrics
    assert tracking["ASGAverageCPUUtilization"] == sandbox.app.config.target_cpu_percent


@pytest.mark.parametrize("tier", TIERS)
def test_target_group_health_checks_the_service(tier, sandbox):
    _, group = only(sandbox, tier, "AWS::ElasticLoadBalancingV2::TargetGroup")
    props = group["Properties"]
    assert props["HealthCheckPath"] == "/health"
    assert props["Port"] == APP_PORT and props["Protocol"] == "HTTP"
    assert props["Matcher"] == {"HttpCode": "200"}


@pytest.mark.parametrize(("stage", "interval", "timeout", "grace"), [("sandbox", 15, 5, 300), ("local", 5, 4, 20)])
@pytest.mark.parametrize("tier", TIERS)
def test_health_check_timing_comes_from_the_stage_and_the_timeout_stays_below_the_interval(
    stage, interval, timeout, grace, tier, request
):
    synthesized = request.getfixturevalue(stage)
    _, group = only(synthesized, tier, "AWS::ElasticLoadBalancingV2::TargetGroup")
    props = group["Properties"]
    assert (props["HealthCheckIntervalSeconds"], props.get("HealthCheckTimeoutSeconds")) == (interval, timeout)
    assert (props["HealthyThresholdCount"], props["UnhealthyThresholdCount"]) == (2, 3)
    _, asg = only(synthesized, tier, "AWS::AutoScaling::AutoScalingGroup")
    assert asg["Properties"]["HealthCheckGracePeriod"] == grace


@pytest.mark.parametrize("tier", TIERS)
def test_the_local_supervisor_runs_what_the_user_data_starts(tier, local):
    """localcloud/supervisor.py launches an instance from the launch template's user data: the module
    the systemd unit starts, the unit's environment and the service bundle object it downloads."""
    launch = parse_user_data(user_data(local, tier))
    assert launch is not None
    assert launch.module == f"services.{tier}"
    assert launch.environment["DISCOVERY_PREFIX"] == local.app.config.parameter_name("discovery")
    assert launch.environment["SERVICE_PORT"] == str(APP_PORT)
    assert launch.bundle is not None
    bucket, key = launch.bundle
    assert bucket.startswith("cdk-") and key.endswith(".zip")


# --- load balancers --------------------------------------------------------------------------------


def _listeners(synthesized, tier) -> dict[int, dict]:
    return {
        lsn["Properties"]["Port"]: lsn["Properties"]
        for lsn in resources(synthesized, tier, "AWS::ElasticLoadBalancingV2::Listener").values()
    }


def test_backend_alb_is_internal_in_app_subnets_and_forwards_http(sandbox):
    _, balancer = only(sandbox, "backend", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert balancer["Properties"]["Scheme"] == "internal"
    assert all("AppSubnet" in name for name in output_names(balancer["Properties"]["Subnets"]))
    listeners = _listeners(sandbox, "backend")
    assert list(listeners) == [80]
    assert listeners[80]["Protocol"] == "HTTP" and listeners[80]["DefaultActions"][0]["Type"] == "forward"


def test_sandbox_web_alb_is_internet_facing_with_the_http_only_listener(sandbox):
    assert sandbox.app.config.certificate_arn is None
    _, balancer = only(sandbox, "web", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert balancer["Properties"]["Scheme"] == "internet-facing"
    assert all("PublicSubnet" in name for name in output_names(balancer["Properties"]["Subnets"]))
    listeners = _listeners(sandbox, "web")
    assert list(listeners) == [80] and listeners[80]["Protocol"] == "HTTP"


def test_certificate_turns_on_https_and_redirects_http(with_certificate):
    assert with_certificate.nag_violations() == []
    listeners = _listeners(with_certificate, "web")
    assert sorted(listeners) == [80, 443]
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"] == [{"CertificateArn": CERTIFICATE_ARN}]
    assert https["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert https["DefaultActions"][0]["Type"] == "forward"
    [redirect] = listeners[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"] == {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"}
    # The internal hop stays HTTP inside the VPC; the web ALB's group now also admits 443.
    assert list(_listeners(with_certificate, "backend")) == [80]
    web_alb = logical_id(with_certificate.app.stacks["network"].security_groups.web_alb)
    ingress = with_certificate.templates["network"]["Resources"][web_alb]["Properties"]["SecurityGroupIngress"]
    assert sorted(rule["FromPort"] for rule in ingress) == [80, 443]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("tier", TIERS)
def test_alb_drops_invalid_headers_and_logs_to_a_locked_down_bucket(stage, tier, request):
    synthesized = request.getfixturevalue(stage)
    config = synthesized.app.config
    _, balancer = only(synthesized, tier, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    attributes = {a["Key"]: a["Value"] for a in balancer["Properties"]["LoadBalancerAttributes"]}
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["deletion_protection.enabled"] == str(not config.destroy_on_delete).lower()
    bucket_id, bucket = only(synthesized, tier, "AWS::S3::Bucket")
    assert attributes["access_logs.s3.bucket"] == {"Ref": bucket_id}
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == config.log_retention_days
    _, policy = only(synthesized, tier, "AWS::S3::BucketPolicy")
    assert {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}.items() <= next(
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"
    ).items()


# --- least privilege -------------------------------------------------------------------------------


def test_backend_may_only_put_objects_under_incoming_in_the_handoff_bucket(sandbox):
    handoff = logical_id(sandbox.app.stacks["data"].handoff_bucket)
    touching = [
        s for s in role_statements(sandbox, "backend") if any(handoff in n for n in output_names(s["Resource"]))
    ]
    assert len(touching) == 1
    [statement] = touching
    assert actions(statement) == ["s3:PutObject"]
    assert statement["Resource"]["Fn::Join"][1][-1] == "/incoming/*"


def test_backend_role_grants_exactly_its_producer_calls(sandbox):
    config = sandbox.app.config
    statements = role_statements(sandbox, "backend")
    granted = {a for s in statements for a in actions(s)}
    assert {"sns:Publish", "dynamodb:GetItem", "ssm:GetParametersByPath", "s3:PutObject"} <= granted
    # The backend keeps no sessions: no cache AUTH token (and no security-group path to the cache).
    assert not {a for a in granted if a.startswith("secretsmanager:")}
    # Publishes one event and sends nothing: the cancel window subscribes to the topic (no dual write).
    assert not {a for a in granted if a.startswith("sqs:")}
    data = sandbox.app.stacks["data"]
    tables = {
        name: [s for s in statements if any(logical_id(table) in n for n in output_names(s["Resource"]))]
        for name, table in (("orders", data.orders_table), ("idempotency", data.idempotency_table))
    }
    assert sum(len(t) for t in tables.values()) == len(
        [s for s in statements if any(a.startswith("dynamodb:") for a in actions(s))]
    )
    # Order records only (the GET route), by leading key; reads orders, never writes them (the
    # fulfilment consumer owns order records).
    [orders] = tables["orders"]
    assert actions(orders) == ["dynamodb:GetItem"]
    assert orders["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ORDER#*"]}}
    # Its own Idempotency-Key records (Powertools' calls), never the API's or the consumers'.
    [idempotency] = tables["idempotency"]
    assert actions(idempotency) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    assert idempotency["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["web-orders#*"]}}
    ssm = [s for s in statements if any(a.startswith("ssm:") for a in actions(s))]
    assert len(ssm) == 1
    paths = [r["Fn::Join"][1][-1] for r in ssm[0]["Resource"]]
    assert paths == [
        f":parameter{config.parameter_name('discovery')}",
        f":parameter{config.parameter_name('discovery')}/*",
    ]


def test_web_role_reads_discovery_secret_and_assets_and_sends_only_activity(sandbox):
    statements = role_statements(sandbox, "web")
    granted = {a for s in statements for a in actions(s)}
    assert not {a for a in granted if a.split(":")[0] in {"sns", "dynamodb", "kms"}}
    # Storefront activity (flow 7): send to the activity queue, and nothing else of SQS.
    [activity_send] = [s for s in statements if any(a.startswith("sqs:") for a in actions(s))]
    assert set(actions(activity_send)) == {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    activity_queue = logical_id(sandbox.app.stacks["messaging"].activity.queue)
    assert any(activity_queue in n for n in output_names(activity_send["Resource"]))
    assert "s3:PutObject" not in granted
    assets = logical_id(sandbox.app.stacks["data"].assets_bucket)
    [asset_read] = [s for s in statements if any(assets in n for n in output_names(s["Resource"]))]
    assert actions(asset_read) == ["s3:GetObject"]
    secret = logical_id(sandbox.app.stacks["sessions"].auth_secret)
    [secret_read] = [s for s in statements if any(secret in n for n in output_names(s["Resource"]))]
    assert set(actions(secret_read)) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}


@pytest.mark.parametrize("tier", TIERS)
def test_instances_read_exactly_their_own_service_bundle(tier, sandbox):
    bootstrap = [(s, r) for s in role_statements(sandbox, tier) for r in resource_list(s) if "cdk-" in json.dumps(r)]
    assert len(bootstrap) == 1
    [(statement, resource)] = bootstrap
    assert actions(statement) == ["s3:GetObject"]
    assert resource["Fn::Join"][1][-1].endswith(".zip")  # one object key, no wildcard


# --- user data and discovery -----------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("tier", TIERS)
def test_user_data_installs_the_bundle_and_supervises_the_service_with_systemd(stage, tier, request):
    synthesized = request.getfixturevalue(stage)
    script = user_data(synthesized, tier)
    unit = f"storefront-{tier}"
    assert "dnf install -y -q python3.11" in script
    assert "unzip -q /var/tmp/storefront-services.zip -d /opt/storefront" in script
    assert "python3.11 -m venv /opt/storefront/venv" in script
    assert "pip install --no-index --find-links /opt/storefront/wheels" in script  # no PyPI needed at boot
    assert f"cat > /etc/systemd/system/{unit}.service <<'UNIT'" in script
    for line in (
        "Restart=always",
        f"ExecStart=/opt/storefront/venv/bin/python -m services.{tier}",
        f"Environment=SERVICE_PORT={APP_PORT}",
        f"Environment=DISCOVERY_PREFIX={synthesized.app.config.parameter_name('discovery')}",
        'Environment=AWS_REGION={"Ref": "AWS::Region"}'
        if synthesized.app.config.region is None
        else f"Environment=AWS_REGION={synthesized.app.config.region}",
        "User=storefront",
    ):
        assert f"\n{line}\n" in script, line
    # Only the tier that keeps sessions talks to the cache (TLS only).
    assert ("\nEnvironment=REDIS_TLS=true\n" in script) is (tier == "web")
    assert script.rstrip().endswith(f"systemctl enable --now {unit}.service")


def test_backend_publishes_its_discovery_parameters(sandbox):
    config = sandbox.app.config
    balancer_id, _ = only(sandbox, "backend", "AWS::ElasticLoadBalancingV2::LoadBalancer")
    parameters = {
        p["Properties"]["Name"].removeprefix(config.parameter_name("discovery") + "/"): p["Properties"]["Value"]
        for p in resources(sandbox, "backend", "AWS::SSM::Parameter").values()
    }
    assert set(parameters) == {
        "backend-url",
        "order-events-topic-arn",
        "orders-table",
        "idempotency-table",
        "handoff-bucket",
    }
    assert parameters["backend-url"] == {"Fn::Join": ["", ["http://", {"Fn::GetAtt": [balancer_id, "DNSName"]}]]}
    data, messaging = sandbox.app.stacks["data"], sandbox.app.stacks["messaging"]
    for name, construct in (
        ("orders-table", data.orders_table),
        ("idempotency-table", data.idempotency_table),
        ("handoff-bucket", data.handoff_bucket),
        ("order-events-topic-arn", messaging.order_events_topic),
    ):
        assert any(logical_id(construct) in n for n in output_names(parameters[name])), name


# --- the service bundle ----------------------------------------------------------------------------


def test_wheels_are_downloaded_for_the_instance_platform_not_the_build_machine():
    assert manylinux_platform(ec2.InstanceType("t4g.micro").architecture) == "manylinux2014_aarch64"
    assert manylinux_platform(ec2.InstanceType("t3.micro").architecture) == "manylinux2014_x86_64"
    command = pip_download_command(Path("r.txt"), Path("out"), platform="manylinux2014_aarch64", version="3.11")
    assert command[1:4] == ["-m", "pip", "download"]
    for flag in ("--platform manylinux2014_aarch64", "--python-version 3.11", "--implementation cp", "--dest out"):
        assert flag in " ".join(command)
    assert "--only-binary=:all:" in command


def test_bundler_ships_the_services_without_tests_or_bytecode(tmp_path):
    source = tmp_path / "services"
    for path in (
        "web/__main__.py",
        "web/tests/test_app.py",
        "web/__pycache__/app.cpython-311.pyc",
        "tests/conftest.py",
    ):
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text("")
    (source / "requirements.txt").write_text("# no third-party packages: pip has nothing to fetch\n")
    contracts = tmp_path / "contracts"
    for path in ("__init__.py", "__pycache__/__init__.cpython-311.pyc"):
        (contracts / path).parent.mkdir(parents=True, exist_ok=True)
        (contracts / path).write_text("")
    output = tmp_path / "bundle"
    output.mkdir()
    bundler = ServiceBundler(source, platform="manylinux2014_x86_64", shared_packages=(contracts,))
    assert bundler.try_bundle(str(output), image=NO_IMAGE) is True
    shipped = sorted(str(p.relative_to(output)) for p in output.rglob("*") if p.is_file())
    assert shipped == ["contracts/__init__.py", f"{PACKAGE_DIR}/requirements.txt", f"{PACKAGE_DIR}/web/__main__.py"]


def test_bundler_refuses_a_missing_requirements_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="requirements"):
        ServiceBundler(tmp_path, platform="manylinux2014_x86_64", shared_packages=()).try_bundle(
            str(tmp_path / "out"), image=NO_IMAGE
        )
