"""The session cache: encrypted, authenticated, unreachable from anything but the tier instances,
highly available in production, and discoverable through SSM."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Stack

from stacks.constructs.tier_security_groups import REDIS_PORT
from tests.infra.conftest import synthesize

STAGES = ["sandbox", "production", "local"]


def _only(template: dict, resource_type: str) -> tuple[str, dict]:
    found = [(k, v) for k, v in template["Resources"].items() if v["Type"] == resource_type]
    assert len(found) == 1, resource_type
    return found[0]


def _network_id(synthesized, construct) -> str:
    return Stack.of(construct).resolve(construct.node.default_child.logical_id)


def _output_names(value) -> list[str]:
    """Cross-stack references (weak references: Fn::GetStackOutput) as their output names."""
    text = json.dumps(value)
    return [part.split('"')[0] for part in text.split('"OutputName": "')[1:]]


@pytest.mark.parametrize("stage", STAGES)
def test_cache_encrypts_in_transit_and_at_rest_and_requires_auth(stage, request):
    synthesized = request.getfixturevalue(stage)
    _, group = _only(synthesized.templates["sessions"], "AWS::ElastiCache::ReplicationGroup")
    props = group["Properties"]
    assert props["TransitEncryptionEnabled"] is True
    assert props["AtRestEncryptionEnabled"] is True
    assert props["Engine"] == "redis" and props["Port"] == REDIS_PORT


@pytest.mark.parametrize("stage", STAGES)
def test_auth_token_is_a_secrets_manager_dynamic_reference_never_plain_text(stage, request):
    synthesized = request.getfixturevalue(stage)
    template = synthesized.templates["sessions"]
    secret_id, secret = _only(template, "AWS::SecretsManager::Secret")
    token = template["Resources"][_only(template, "AWS::ElastiCache::ReplicationGroup")[0]]["Properties"]["AuthToken"]
    # {{resolve:secretsmanager:<secret ARN>:SecretString:::}}: CloudFormation fetches it at deploy time.
    assert token == {"Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": secret_id}, ":SecretString:::}}"]]}
    generator = secret["Properties"]["GenerateSecretString"]
    assert generator["PasswordLength"] >= 16 and generator["ExcludePunctuation"] is True  # no @ " / in an AUTH token
    assert "SecretString" not in secret["Properties"]
    assert not [p for p in template.get("Parameters", {}) if "auth" in p.lower() or "token" in p.lower()]


@pytest.mark.parametrize(
    "stage,failover,multi_az,nodes",
    [("sandbox", True, False, 2), ("production", True, True, 3), ("local", True, False, 2)],
)
def test_failover_and_multi_az_follow_the_stage(stage, failover, multi_az, nodes, request):
    synthesized = request.getfixturevalue(stage)
    config = synthesized.app.config
    _, group = _only(synthesized.templates["sessions"], "AWS::ElastiCache::ReplicationGroup")
    props = group["Properties"]
    assert config.cache_multi_az is multi_az
    assert props["AutomaticFailoverEnabled"] is failover
    assert props["MultiAZEnabled"] is multi_az
    assert props["NumCacheClusters"] == nodes == 1 + config.cache_replicas


def test_production_cache_keeps_a_final_snapshot_and_daily_backups(production, sandbox):
    _, group = _only(production.templates["sessions"], "AWS::ElastiCache::ReplicationGroup")
    assert group["DeletionPolicy"] == "Snapshot"
    assert group["Properties"]["SnapshotRetentionLimit"] >= 1
    _, disposable = _only(sandbox.templates["sessions"], "AWS::ElastiCache::ReplicationGroup")
    assert disposable["DeletionPolicy"] == "Delete"


@pytest.mark.parametrize("stage", STAGES)
def test_cache_sits_in_data_subnets_behind_the_cache_group(stage, request):
    synthesized = request.getfixturevalue(stage)
    network = synthesized.app.stacks["network"]
    data_subnets = {
        Stack.of(network).resolve(s.node.default_child.logical_id)
        for s in network.vpc.select_subnets(subnet_group_name="Data").subnets
    }
    template = synthesized.templates["sessions"]
    _, subnet_group = _only(template, "AWS::ElastiCache::SubnetGroup")
    referenced = _output_names(subnet_group["Properties"]["SubnetIds"])
    assert len(referenced) == len(data_subnets) >= 2
    assert all(any(subnet in name for subnet in data_subnets) for name in referenced)
    _, group = _only(template, "AWS::ElastiCache::ReplicationGroup")
    cache_group = _network_id(synthesized, network.security_groups.cache)
    [security_group] = _output_names(group["Properties"]["SecurityGroupIds"])
    assert cache_group in security_group


@pytest.mark.parametrize("stage", STAGES)
def test_discovery_parameters_publish_endpoint_and_secret_arn(stage, request):
    synthesized = request.getfixturevalue(stage)
    config = synthesized.app.config
    template = synthesized.templates["sessions"]
    parameters = {
        r["Properties"]["Name"]: r["Properties"]["Value"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter"
    }
    group_id, _ = _only(template, "AWS::ElastiCache::ReplicationGroup")
    secret_id, _ = _only(template, "AWS::SecretsManager::Secret")
    assert parameters[config.parameter_name("discovery", "redis-endpoint")] == {
        "Fn::Join": [
            ":",
            [{"Fn::GetAtt": [group_id, "PrimaryEndPoint.Address"]}, {"Fn::GetAtt": [group_id, "PrimaryEndPoint.Port"]}],
        ]
    }
    # The ARN, not the value: readers fetch the token from Secrets Manager with their own grant.
    assert parameters[config.parameter_name("discovery", "redis-auth-secret-arn")] == {"Ref": secret_id}
    assert parameters[config.parameter_name("discovery", "session-store")] == "redis"
    assert config.parameter_name("discovery", "sessions-table") not in parameters


# --- sessionStore: dynamodb ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def dynamodb_sandbox():
    """The sandbox profile with `-c sessionStore=dynamodb`: the one extra synth of this module."""
    return synthesize("sandbox", sessionStore="dynamodb")


def _statements_of_role(synthesized, key: str) -> list[dict]:
    template = synthesized.templates[key]
    [role_id] = [k for k, v in template["Resources"].items() if v["Type"] == "AWS::IAM::Role"]
    return [
        statement
        for policy in template["Resources"].values()
        if policy["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict) -> list[str]:
    return [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]


def test_the_default_store_is_redis_in_every_stage(sandbox, production, local):
    for synthesized in (sandbox, production, local):
        assert synthesized.app.config.session_store == "redis"
        assert synthesized.app.stacks["sessions"].table is None


def test_dynamodb_store_is_a_pay_per_request_encrypted_table_with_ttl_and_pitr(dynamodb_sandbox):
    assert dynamodb_sandbox.nag_violations() == []
    table_id, table = _only(dynamodb_sandbox.templates["sessions"], "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    # The stage's removal policy, as for the data stack's tables (sandbox: destroyed with the stack).
    [orders] = [
        r for r in dynamodb_sandbox.templates["data"]["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"
    ][:1]
    assert table["DeletionPolicy"] == orders["DeletionPolicy"] == "Delete"
    config = dynamodb_sandbox.app.config
    parameters = {
        r["Properties"]["Name"]: r["Properties"]["Value"]
        for r in dynamodb_sandbox.templates["sessions"]["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter"
    }
    assert parameters == {
        config.parameter_name("discovery", "session-store"): "dynamodb",
        config.parameter_name("discovery", "sessions-table"): {"Ref": table_id},
    }


def test_with_dynamodb_there_is_no_cache_cluster_and_no_auth_token(dynamodb_sandbox):
    every_type = {r["Type"] for t in dynamodb_sandbox.templates.values() for r in t["Resources"].values()}
    assert not {t for t in every_type if t.startswith("AWS::ElastiCache::")}
    assert "AWS::SecretsManager::Secret" not in every_type
    dashboard = json.dumps(dynamodb_sandbox.templates["observability"])
    assert "AWS/ElastiCache" not in dashboard
    assert "ConsumedReadCapacityUnits" in dashboard or "AWS/DynamoDB" in dashboard
    user_data = json.dumps(
        [r for r in dynamodb_sandbox.templates["web"]["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    )
    assert "REDIS_TLS" not in user_data


def test_with_dynamodb_the_web_role_gets_exactly_the_item_actions_on_its_own_items(dynamodb_sandbox):
    table_id = _network_id(dynamodb_sandbox, dynamodb_sandbox.app.stacks["sessions"].table)
    web = _statements_of_role(dynamodb_sandbox, "web")
    touching = [s for s in web if any(table_id in name for name in _output_names(s["Resource"]))]
    assert len(touching) == 1
    [statement] = touching
    assert sorted(_actions(statement)) == [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["session:*", "cart:*", "checkout:*"]}
    }
    granted = {a for s in web for a in _actions(s)}
    assert not {a for a in granted if a.startswith("secretsmanager:")}  # no AUTH token to read
    assert {a for a in granted if a.startswith("dynamodb:")} == set(_actions(statement))
    backend = _statements_of_role(dynamodb_sandbox, "backend")
    assert not [s for s in backend if any(table_id in name for name in _output_names(s["Resource"]))]
