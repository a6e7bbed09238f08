"""The session cache: encrypted, authenticated, unreachable from anything but the tier instances,
highly available in production, and discoverable through SSM."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Stack

from stacks.constructs.tier_security_groups import REDIS_PORT

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
