"""The storefront's pages behind CloudFront (seeds 002, 004): a private assets bucket read through origin
access control, the web ALB as the second origin for /api/*, the REST API's customer routes for /me/*, HTTPS-only viewers, security headers,
access logs, the web ACL where CloudFront can take one, and the pages copied by BucketDeployment."""

from __future__ import annotations

import json

import pytest

from stacks.storefront_stack import API_PATH, CUSTOMER_PATH, DIAGRAMS_PREFIX, PAGES, distribution_comment
from tests.infra.test_processing import cross_stack_target, logical_id, resources


def distribution(template: dict) -> dict:
    (found,) = resources(template, "AWS::CloudFront::Distribution").values()
    return found["Properties"]["DistributionConfig"]


def cross_stack_references(value) -> list[dict]:
    """Every import of another stack's value nested in `value` (an Fn::Join, Fn::Select, ...)."""
    if isinstance(value, dict):
        if {"Fn::ImportValue", "Fn::GetStackOutput"} & set(value):
            return [value]
        return [found for item in value.values() for found in cross_stack_references(item)]
    if isinstance(value, list):
        return [found for item in value for found in cross_stack_references(item)]
    return []


def origin_by_id(config: dict) -> dict[str, dict]:
    return {origin["Id"]: origin for origin in config["Origins"]}


@pytest.mark.parametrize("stage", ["sandbox", "production", "local"])
def test_pages_come_from_s3_through_origin_access_control_and_api_from_the_web_alb(stage, request):
    synthesized = request.getfixturevalue(stage)
    template = synthesized.templates["storefront"]
    config = distribution(template)
    origins = origin_by_id(config)
    assert len(origins) == 3

    pages = origins[config["DefaultCacheBehavior"]["TargetOriginId"]]
    assert pages["S3OriginConfig"]["OriginAccessIdentity"] == ""  # no legacy OAI: origin access control
    (oac,) = resources(template, "AWS::CloudFront::OriginAccessControl").values()
    assert logical_id(pages["OriginAccessControlId"]) in resources(template, "AWS::CloudFront::OriginAccessControl")
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    assert oac["Properties"]["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    bucket_stack, bucket_value = cross_stack_target(synthesized, pages["DomainName"])
    assert bucket_stack == "data"
    assert logical_id(bucket_value).startswith("AssetsBucket")
    assert config["DefaultRootObject"] == "index.html"

    api, customer = config["CacheBehaviors"]
    assert api["PathPattern"] == API_PATH
    web = origins[api["TargetOriginId"]]
    web_stack, web_value = cross_stack_target(synthesized, web["DomainName"])
    assert web_stack == "web" and web_value["Fn::GetAtt"][1] == "DNSName"
    expected = "http-only" if synthesized.app.config.allow_plain_http else "https-only"
    assert web["CustomOriginConfig"]["OriginProtocolPolicy"] == expected
    assert web["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
    assert set(api["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}
    assert api["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
    assert api["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # AllViewerExceptHostHeader
    assert config["Comment"] == distribution_comment(synthesized.app.config)

    # /me/* straight to the REST API's customer routes (the Cognito authorizer checks the page's token):
    # uncached, the viewer's Authorization passed on and its Host not, HTTPS to the stage.
    assert customer["PathPattern"] == CUSTOMER_PATH
    rest_api = origins[customer["TargetOriginId"]]
    assert rest_api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert rest_api["OriginPath"] == "/v1"
    assert "execute-api" in json.dumps(rest_api["DomainName"])
    # The host is taken from the API's URL, whose parts (the API's id, its stage) are the Api stack's.
    targets = [cross_stack_target(synthesized, ref) for ref in cross_stack_references(rest_api["DomainName"])]
    assert {stack for stack, _ in targets} == {"api"}
    (api_resource,) = resources(synthesized.templates["api"], "AWS::ApiGateway::RestApi")
    assert {"Ref": api_resource} in [value for _, value in targets]
    assert set(customer["AllowedMethods"]) == set(api["AllowedMethods"])
    assert customer["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
    assert customer["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # AllViewerExceptHostHeader


@pytest.mark.parametrize("stage", ["sandbox", "production", "local"])
def test_viewers_are_sent_to_https_and_get_security_headers_and_logs_are_kept(stage, request):
    synthesized = request.getfixturevalue(stage)
    template = synthesized.templates["storefront"]
    config = distribution(template)
    behaviours = [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]
    assert {b["ViewerProtocolPolicy"] for b in behaviours} == {"redirect-to-https"}
    (policy_id,) = {logical_id(b["ResponseHeadersPolicyId"]) for b in behaviours}
    policy = template["Resources"][policy_id]["Properties"]["ResponseHeadersPolicyConfig"]
    security = policy["SecurityHeadersConfig"]
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31_536_000
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["ContentTypeOptions"]["Override"] is True
    csp = security["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert ("ws://127.0.0.1:*" in csp) is (stage == "local")
    log_stack, log_bucket = cross_stack_target(synthesized, config["Logging"]["Bucket"])
    assert log_stack == "data" and logical_id(log_bucket).startswith("AccessLogsBucket")


def test_the_assets_bucket_admits_only_cloudfront_of_this_account_to_read_and_stays_private(sandbox):
    data = sandbox.templates["data"]
    (bucket_id,) = [k for k in resources(data, "AWS::S3::Bucket") if k.startswith("AssetsBucket")]
    bucket = data["Resources"][bucket_id]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in resources(data, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket_id}
    ]
    (cloudfront,) = [s for s in policy["Statement"] if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert cloudfront["Effect"] == "Allow" and cloudfront["Action"] == "s3:GetObject"
    source = json.dumps(cloudfront["Condition"]["ArnLike"]["AWS:SourceArn"])
    assert ":cloudfront::" in source and "AWS::AccountId" in source and "distribution/*" in source
    # The enforce-SSL deny stays: CloudFront's origin fetches are TLS.
    assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s) for s in policy["Statement"])


def test_a_cloudfront_web_acl_where_the_region_allows_one_and_an_acknowledged_reason_where_not(local, sandbox):
    """CloudFront takes a CLOUDFRONT-scope ACL, which exists in us-east-1 only (the local stage's region)."""
    local_acl = distribution(local.templates["storefront"])["WebACLId"]
    edge_stack, value = cross_stack_target(local, local_acl)
    assert edge_stack == "edge"
    acl = local.templates["edge"]["Resources"][logical_id(value)]["Properties"]
    assert acl["Scope"] == "CLOUDFRONT"
    acls = {
        a["Properties"]["Scope"]: a["Properties"]
        for a in resources(local.templates["edge"], "AWS::WAFv2::WebACL").values()
    }
    assert set(acls) == {"REGIONAL", "CLOUDFRONT"}
    assert acls["CLOUDFRONT"]["Rules"] == acls["REGIONAL"]["Rules"]  # the same rule set on both doors
    logged = [
        c["Properties"]["ResourceArn"]
        for c in resources(local.templates["edge"], "AWS::WAFv2::LoggingConfiguration").values()
    ]
    assert {"Fn::GetAtt": [logical_id(value), "Arn"]} in logged

    assert "WebACLId" not in distribution(sandbox.templates["storefront"])  # region known only at deploy time
    reasons = [
        v["reason"]
        for plugin in sandbox.nag_report.get("pluginReports", [])
        for v in plugin.get("suppressedViolations", [])
        if v["ruleName"] == "AwsSolutions-CFR2"
    ]
    assert len(reasons) == 1 and "us-east-1" in reasons[0]
    local_reasons = [
        v["ruleName"]
        for plugin in local.nag_report.get("pluginReports", [])
        for v in plugin.get("suppressedViolations", [])
    ]
    assert "AwsSolutions-CFR2" not in local_reasons  # the local stage has the ACL: nothing to excuse


@pytest.mark.parametrize("stage", ["sandbox", "local"])
def test_the_pages_and_the_diagrams_are_deployed_to_the_assets_bucket(stage, request):
    synthesized = request.getfixturevalue(stage)
    template = synthesized.templates["storefront"]
    deployments = resources(template, "Custom::CDKBucketDeployment")
    assert len(deployments) == 2
    prefixes = {}
    for deployment in deployments.values():
        props = deployment["Properties"]
        stack, bucket = cross_stack_target(synthesized, props["DestinationBucketName"])
        assert stack == "data" and logical_id(bucket).startswith("AssetsBucket")
        prefixes[props.get("DestinationBucketKeyPrefix", "")] = props
    assert set(prefixes) == {"", DIAGRAMS_PREFIX}
    pages = prefixes[""]
    assert pages["Exclude"] == [f"{DIAGRAMS_PREFIX}*"]  # the pages' prune leaves the diagrams alone
    assert pages["DistributionPaths"] == ["/*"]  # new pages are visible at once
    distribution_id = logical_id(pages["DistributionId"])
    assert distribution_id in resources(template, "AWS::CloudFront::Distribution")
    for name in ("index.html", "app.js", "api.js", "status.js", "styles.css"):
        assert (PAGES / name).is_file()
    assert sorted(p.name for p in (PAGES / "products").iterdir()) == [
        "SKU-KET-004.svg",
        "SKU-MUG-002.svg",
        "SKU-POT-003.svg",
        "SKU-TEA-001.svg",
    ]


def test_every_product_of_the_catalogue_has_its_picture():
    from contracts.catalog import PRODUCTS

    for product in PRODUCTS:
        picture = PAGES / product.image
        assert picture.is_file(), product.sku
        assert picture.read_text().lstrip().startswith("<svg") and "<title" in picture.read_text()
