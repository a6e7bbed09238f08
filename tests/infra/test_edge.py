"""The edge: every internet-facing entry point sits behind exactly one regional WAF web ACL with
AWS managed rule groups and a per-IP rate limit taken from the stage config, and WAF logs go to a
CloudWatch log group WAF accepts (`aws-waf-logs-` prefix)."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from scripts.diagram import Assembly, Ref
from stacks.config import StageConfig
from stacks.edge_stack import MANAGED_RULE_GROUPS, RATE_RULE_NAME, EdgeStack

STAGES = ["sandbox", "production", "local"]


def _web_acls(synthesized) -> dict[Ref, dict]:
    return {
        ref: r["Properties"] for ref, r in Assembly(synthesized.outdir).resources() if r["Type"] == "AWS::WAFv2::WebACL"
    }


def _associations(synthesized) -> list[tuple[Ref, set[Ref]]]:
    """(web ACL, resources its association points at) for every association in the app."""
    assembly = Assembly(synthesized.outdir)
    found = []
    for ref, resource in assembly.resources():
        if resource["Type"] == "AWS::WAFv2::WebACLAssociation":
            props = resource["Properties"]
            [acl] = set(assembly.refs(props["WebACLArn"], ref.stack))
            found.append((acl, set(assembly.refs(props["ResourceArn"], ref.stack))))
    return found


def _ref(synthesized, key: str, construct) -> Ref:
    stack = synthesized.app.stacks[key]
    element = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
    return Ref(stack.artifact_id, stack.get_logical_id(element))


def _managed_groups(acl: dict) -> set[str]:
    return {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for r in acl["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
    }


def _rate_limits(acl: dict) -> list[dict]:
    return [r["Statement"]["RateBasedStatement"] for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]


# --- the edge web ACL itself -----------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_edge_acl_has_the_managed_groups_and_the_configured_rate_limit(stage, request):
    synthesized = request.getfixturevalue(stage)
    template = synthesized.template("edge")
    acls = list(template.find_resources("AWS::WAFv2::WebACL").values())
    # The local stage deploys to us-east-1, where the storefront's CloudFront distribution gets its own
    # CLOUDFRONT-scope ACL with the same rules (stacks/edge_stack.py); elsewhere the region is unknown.
    expected_scopes = ["CLOUDFRONT", "REGIONAL"] if stage == "local" else ["REGIONAL"]
    assert sorted(a["Properties"]["Scope"] for a in acls) == expected_scopes
    for acl in acls:
        _check_rules(synthesized, acl["Properties"])


def _check_rules(synthesized, props: dict) -> None:
    assert props["DefaultAction"] == {"Allow": {}}
    assert (
        _managed_groups(props)
        == set(MANAGED_RULE_GROUPS)
        == {
            "AWSManagedRulesCommonRuleSet",
            "AWSManagedRulesKnownBadInputsRuleSet",
            "AWSManagedRulesAmazonIpReputationList",
        }
    )
    assert _rate_limits(props) == [{"Limit": synthesized.app.config.waf_rate_limit_per_5min, "AggregateKeyType": "IP"}]
    rate_rule = next(r for r in props["Rules"] if r["Name"] == RATE_RULE_NAME)
    assert rate_rule["Action"] == {"Block": {}}
    for rule in [props, *props["Rules"]]:
        visibility = rule["VisibilityConfig"]
        assert visibility["CloudWatchMetricsEnabled"] is True and visibility["SampledRequestsEnabled"] is True
    for rule in props["Rules"]:
        if "ManagedRuleGroupStatement" in rule["Statement"]:
            assert rule["OverrideAction"] == {"None": {}}, "managed groups must block, not just count"
    assert len({r["Priority"] for r in props["Rules"]}) == len(props["Rules"])


def test_rate_limit_follows_the_config():
    template = _edge_app(
        StageConfig(stage="sandbox", allow_plain_http=True, encryption_keys="default", waf_rate_limit_per_5min=777)
    )
    template.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {
            "Rules": Match.array_with(
                [Match.object_like({"Statement": {"RateBasedStatement": {"Limit": 777, "AggregateKeyType": "IP"}}})]
            ),
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_waf_logs_to_an_aws_waf_logs_log_group_with_credentials_redacted(stage, request):
    synthesized = request.getfixturevalue(stage)
    template = synthesized.template("edge")
    acl_ids = set(template.find_resources("AWS::WAFv2::WebACL"))
    groups = {g["Properties"]["LogGroupName"]: g for g in template.find_resources("AWS::Logs::LogGroup").values()}
    configs = list(template.find_resources("AWS::WAFv2::LoggingConfiguration").values())
    assert {c["Properties"]["ResourceArn"]["Fn::GetAtt"][0] for c in configs} == acl_ids  # every ACL logs
    assert len(groups) == len(acl_ids)
    for logging in configs:
        props = logging["Properties"]
        [destination] = props["LogDestinationConfigs"]
        rendered = json.dumps(destination)
        [name] = [n for n in groups if n in rendered]
        assert name.startswith("aws-waf-logs-")
        assert groups[name]["Properties"]["RetentionInDays"] == synthesized.app.config.log_retention_days
        assert ":*" not in rendered, "WAF wants the log group ARN without the ':*' suffix"
        redacted = {f["SingleHeader"]["Name"] for f in props["RedactedFields"]}
        assert {"authorization", "cookie", "x-api-key"} <= redacted


# --- what it protects --------------------------------------------------------------------------------


def test_internet_facing_web_alb_is_protected_by_the_edge_acl(sandbox):
    web = sandbox.app.stacks["web"]
    web_alb = _ref(sandbox, "web", web.load_balancer)
    edge_acl = _ref(sandbox, "edge", sandbox.app.stacks["edge"].web_acl)
    protecting = [acl for acl, targets in _associations(sandbox) if web_alb in targets]
    assert protecting == [edge_acl]
    if "backend" in sandbox.templates:
        backend_alb = _ref(sandbox, "backend", sandbox.app.stacks["backend"].load_balancer)
        assert not [acl for acl, targets in _associations(sandbox) if backend_alb in targets], "internal ALB"


@pytest.mark.parametrize("stage", STAGES)
def test_api_stage_is_protected_by_exactly_one_acl_with_rate_limit_and_managed_rules(stage, request):
    """One web ACL per resource: WAF keeps only the last association made, so two would fight.
    Whichever ACL protects the stage (the edge ACL, or the API stack's own), it must rate-limit per
    IP at the configured limit and run the common and known-bad-inputs managed groups."""
    synthesized = request.getfixturevalue(stage)
    api = synthesized.app.stacks["api"]
    stage_ref = _ref(synthesized, "api", api.rest_api.deployment_stage)
    protecting = [acl for acl, targets in _associations(synthesized) if stage_ref in targets]
    assert len(protecting) == 1, protecting
    acl = _web_acls(synthesized)[protecting[0]]
    assert acl["Scope"] == "REGIONAL"
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= _managed_groups(acl)
    assert _rate_limits(acl) == [{"Limit": synthesized.app.config.waf_rate_limit_per_5min, "AggregateKeyType": "IP"}]


def test_edge_stack_associates_every_resource_it_is_given():
    template = _edge_app(
        StageConfig(stage="sandbox", allow_plain_http=True, encryption_keys="default"),
        {
            "WebAlb": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/abc",
            "ApiStage": "arn:aws:apigateway:us-east-1::/restapis/abc/stages/v1",
        },
    )
    template.resource_count_is("AWS::WAFv2::WebACLAssociation", 2)
    template.has_resource_properties(
        "AWS::WAFv2::WebACLAssociation",
        {
            "ResourceArn": "arn:aws:apigateway:us-east-1::/restapis/abc/stages/v1",
            "WebACLArn": {"Fn::GetAtt": [Match.string_like_regexp("WebAcl"), "Arn"]},
        },
    )


def _edge_app(config: StageConfig, resources: dict[str, str] | None = None) -> Template:
    app = cdk.App()
    stack = EdgeStack(
        app,
        "Edge",
        config=config,
        protected_resources=resources or {},
        env=cdk.Environment(account="123456789012", region="us-east-1"),
    )
    return Template.from_stack(stack)
