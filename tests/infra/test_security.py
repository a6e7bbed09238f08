"""What a security reviewer checks in the synthesized templates (docs/security.md), one test per gap:
HTTPS only in production with a current TLS policy, log groups under a customer managed key, every
bucket versioned and logged, asynchronous invocations with chosen retries and an alarmed on-failure
queue, and the Redis AUTH secret under its own rotating key.

References are resolved across stacks with the diagram's `Assembly`, so "encrypted with the log key"
means the KmsKeyId really leads to that key, not just that some value is there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.diagram import Assembly, Ref
from stacks.config import ConfigError
from tests.infra.conftest import synthesize

STAGES = ["sandbox", "production", "local"]
ROOT = Path(__file__).resolve().parents[2]
# Current ELB policies: TLS 1.3 with TLS 1.2 as the floor (post-quantum or not); nothing older.
CURRENT_ELB_POLICIES = ("ELBSecurityPolicy-TLS13-1-2-",)
# Service principals that invoke a Lambda function asynchronously.
ASYNC_INVOKERS = {"events.amazonaws.com", "s3.amazonaws.com", "sns.amazonaws.com", "scheduler.amazonaws.com"}


def typed(assembly: Assembly, resource_type: str) -> dict[Ref, dict]:
    return {ref: r for ref, r in assembly.resources() if r["Type"] == resource_type}


def refs(assembly: Assembly, value: object, ref: Ref, resource_type: str) -> set[Ref]:
    """The resources of `resource_type` that `value` (a fragment of ref's template) refers to."""
    return {r for r in assembly.refs(value, ref.stack) if assembly.resource(r).get("Type") == resource_type}


# --- 1. HTTPS only, TLS 1.2 at least ------------------------------------------------------------


def test_production_refuses_to_synthesize_without_a_certificate():
    with pytest.raises(
        ConfigError, match=r"stages\.production\.certificateArn: Value error, the web ALB serves HTTPS only"
    ):
        synthesize("production")


@pytest.mark.parametrize("stage", STAGES)
def test_internet_facing_listeners_are_https_with_a_current_policy_or_a_redirect(stage, request):
    """Plain HTTP forwarding only where the stage's config allows it (sandbox, local); otherwise port 80
    only redirects to HTTPS, and every HTTPS listener has a TLS 1.3/1.2 policy."""
    synthesized = request.getfixturevalue(stage)
    assembly = Assembly(synthesized.outdir)
    listeners = typed(assembly, "AWS::ElasticLoadBalancingV2::Listener")
    public = {
        ref
        for ref, r in typed(assembly, "AWS::ElasticLoadBalancingV2::LoadBalancer").items()
        if r["Properties"].get("Scheme") == "internet-facing"
    }
    assert public, "the web ALB is internet-facing"
    seen_https = False
    for ref, listener in listeners.items():
        props = listener["Properties"]
        if not refs(assembly, props["LoadBalancerArn"], ref, "AWS::ElasticLoadBalancingV2::LoadBalancer") & public:
            continue  # the internal backend ALB: docs/security.md, accepted risk A1
        if props["Protocol"] == "HTTPS":
            seen_https = True
            assert props["SslPolicy"].startswith(CURRENT_ELB_POLICIES), props["SslPolicy"]
        else:
            actions = [a["Type"] for a in props["DefaultActions"]]
            if actions != ["redirect"]:
                assert synthesized.app.config.allow_plain_http, f"{ref.key} serves plain HTTP in {stage}"
            else:
                assert props["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    assert seen_https == (synthesized.app.config.certificate_arn is not None)
    if stage == "production":
        assert seen_https and not synthesized.app.config.allow_plain_http


def test_the_internal_alb_stays_http_inside_the_vpc_as_the_threat_model_accepts(production):
    """If this changes (HTTPS inside the VPC), update docs/security.md's accepted risk A1 with it."""
    listeners = production.templates["backend"]["Resources"]
    protocols = {r["Properties"]["Protocol"] for r in listeners.values() if r["Type"].endswith("::Listener")}
    assert protocols == {"HTTP"}
    text = (ROOT / "docs" / "security.md").read_text()
    assert "A1" in text and "internal ALB" in text


# --- 2. log groups under the stage's customer managed key ------------------------------------------


def _log_keys(assembly: Assembly) -> dict[Ref, dict]:
    return {
        ref: key
        for ref, key in typed(assembly, "AWS::KMS::Key").items()
        if "CloudWatch log groups" in key["Properties"].get("Description", "")
    }


def test_every_production_log_group_is_encrypted_with_the_log_key(production):
    assembly = Assembly(production.outdir)
    [key_ref] = _log_keys(assembly)
    log_groups = typed(assembly, "AWS::Logs::LogGroup")
    # 14 functions, API access logs, the state machine, flow logs, WAF, API execution logs (and any added).
    assert len(log_groups) >= 20
    unencrypted = [ref.key for ref, group in log_groups.items() if "KmsKeyId" not in group["Properties"]]
    assert unencrypted == []
    for ref, group in log_groups.items():
        assert refs(assembly, group["Properties"]["KmsKeyId"], ref, "AWS::KMS::Key") == {key_ref}, ref.key


def test_the_log_key_rotates_and_only_cloudwatch_logs_of_this_account_and_region_may_use_it(production):
    assembly = Assembly(production.outdir)
    [(key_ref, key)] = _log_keys(assembly).items()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["UpdateReplacePolicy"] == key["DeletionPolicy"] == "Retain"
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    services = [s for s in statements if "Service" in s["Principal"]]
    [logs] = services  # no other service may use the key
    assert json.dumps(logs["Principal"]["Service"]) == json.dumps(
        {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    )
    context = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert json.dumps(context) == json.dumps(
        {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":logs:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":*",
                ],
            ]
        }
    )
    # Everything else is the account's own key administration (IAM policies decide who).
    others = [s for s in statements if s is not logs]
    assert all(set(s["Principal"]) == {"AWS"} and "root" in json.dumps(s["Principal"]) for s in others)


@pytest.mark.parametrize("stage", ["sandbox", "local"])
def test_stages_without_their_own_keys_use_the_service_encryption(stage, request):
    synthesized = request.getfixturevalue(stage)
    assert synthesized.app.config.encryption_keys == "default"
    assembly = Assembly(synthesized.outdir)
    assert _log_keys(assembly) == {}
    assert all("KmsKeyId" not in g["Properties"] for g in typed(assembly, "AWS::Logs::LogGroup").values())


# --- 3. buckets: versioned, logged, noncurrent versions expire ----------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_every_bucket_is_versioned_and_every_non_log_bucket_is_logged(stage, request):
    assembly = Assembly(request.getfixturevalue(stage).outdir)
    buckets = typed(assembly, "AWS::S3::Bucket")
    assert len(buckets) >= 5  # assets, hand-off, data access logs, two ALB access-log buckets
    log_buckets: set[Ref] = set()
    for ref, bucket in buckets.items():
        logging = bucket["Properties"].get("LoggingConfiguration")
        if logging:
            log_buckets |= refs(assembly, logging["DestinationBucketName"], ref, "AWS::S3::Bucket")
    for ref, balancer in typed(assembly, "AWS::ElasticLoadBalancingV2::LoadBalancer").items():
        for attribute in balancer["Properties"]["LoadBalancerAttributes"]:
            if attribute["Key"] == "access_logs.s3.bucket":
                log_buckets |= refs(assembly, attribute["Value"], ref, "AWS::S3::Bucket")
    assert len(log_buckets) == 3, "the data access-log bucket and one per ALB"
    for ref, bucket in buckets.items():
        props = bucket["Properties"]
        assert props.get("VersioningConfiguration") == {"Status": "Enabled"}, ref.key
        rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
        assert any("NoncurrentVersionExpiration" in rule for rule in rules), (
            f"{ref.key}: noncurrent versions kept forever"
        )
        if ref not in log_buckets:
            assert "LoggingConfiguration" in props, f"{ref.key} has no access logging"


# --- 5. asynchronous invocations ------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_asynchronously_invoked_functions_choose_retries_and_age_and_have_an_alarmed_on_failure_queue(stage, request):
    synthesized = request.getfixturevalue(stage)
    assembly = Assembly(synthesized.outdir)
    invoked: set[Ref] = set()
    for ref, permission in typed(assembly, "AWS::Lambda::Permission").items():
        if permission["Properties"].get("Principal") in ASYNC_INVOKERS:
            invoked |= refs(assembly, permission["Properties"]["FunctionName"], ref, "AWS::Lambda::Function")
    assert invoked, "the hand-off schedule invokes its ingester asynchronously"
    configs = {
        function: (ref, config)
        for ref, config in typed(assembly, "AWS::Lambda::EventInvokeConfig").items()
        for function in refs(assembly, config["Properties"]["FunctionName"], ref, "AWS::Lambda::Function")
    }
    alarmed = _queues_with_a_depth_alarm(synthesized, assembly)
    for function in invoked:
        assert function in configs, f"{function.key}: AWS's default retries (2) and event age (6 h)"
        ref, config = configs[function]
        props = config["Properties"]
        assert props["MaximumRetryAttempts"] in (0, 1, 2) and 60 <= props["MaximumEventAgeInSeconds"] <= 3600
        [queue] = refs(assembly, props["DestinationConfig"]["OnFailure"]["Destination"], ref, "AWS::SQS::Queue")
        assert queue in alarmed, f"{queue.key}: an on-failure queue nobody is told about"


def _queues_with_a_depth_alarm(synthesized, assembly: Assembly) -> set[Ref]:
    observability = synthesized.app.stacks["observability"].artifact_id
    found: set[Ref] = set()
    for ref, alarm in typed(assembly, "AWS::CloudWatch::Alarm").items():
        if ref.stack != observability:
            continue
        for metric in [alarm["Properties"]] + [
            m.get("MetricStat", {}).get("Metric", {}) for m in alarm["Properties"].get("Metrics", [])
        ]:
            if metric.get("MetricName") == "ApproximateNumberOfMessagesVisible":
                for dimension in metric.get("Dimensions", []):
                    found |= refs(assembly, dimension["Value"], ref, "AWS::SQS::Queue")
    return found


# --- 6. the Redis AUTH secret ---------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_redis_auth_secret_is_under_a_rotating_customer_managed_key_in_production(stage, request):
    synthesized = request.getfixturevalue(stage)
    assembly = Assembly(synthesized.outdir)
    [(ref, secret)] = typed(assembly, "AWS::SecretsManager::Secret").items()
    if synthesized.app.config.encryption_keys == "default":
        assert "KmsKeyId" not in secret["Properties"]
        return
    [key_ref] = refs(assembly, secret["Properties"]["KmsKeyId"], ref, "AWS::KMS::Key")
    key = assembly.resource(key_ref)
    assert key_ref.stack == ref.stack and key["Properties"]["EnableKeyRotation"] is True
    # The web instances may decrypt it through Secrets Manager only; the backend may not at all.
    for tier, allowed in (("web", True), ("backend", False)):
        grants = [
            s
            for r, policy in typed(assembly, "AWS::IAM::Policy").items()
            if r.stack == synthesized.app.stacks[tier].artifact_id
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if key_ref in refs(assembly, s["Resource"], r, "AWS::KMS::Key")
        ]
        assert bool(grants) == allowed, tier
        for grant in grants:
            assert grant["Action"] == "kms:Decrypt" and "kms:ViaService" in grant["Condition"]["StringEquals"]
