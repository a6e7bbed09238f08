"""Route 53 in front (seed 001: "users coming through Route 53"): `domainName` + `hostedZoneId` add an alias
record to the web ALB and, without `certificateArn`, a DNS-validated certificate; absent, nothing."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from stacks.config import StageConfig
from stacks.domain_stack import DomainStack
from tests.infra.conftest import EXTRAS_OVERRIDES, TEST_CERTIFICATE_ARN

DOMAIN = EXTRAS_OVERRIDES["domainName"]
ZONE = EXTRAS_OVERRIDES["hostedZoneId"]
DNS_TYPES = ("AWS::Route53::RecordSet", "AWS::Route53::HostedZone", "AWS::CertificateManager::Certificate")


@pytest.mark.parametrize("stage", ["sandbox", "production", "local"])
def test_without_domain_settings_nothing_dns_related_is_synthesized(stage, request):
    synthesized = request.getfixturevalue(stage)
    assert "domain" not in synthesized.app.stacks
    for key, template in synthesized.templates.items():
        types = {r["Type"] for r in template.get("Resources", {}).values()}
        assert not types & set(DNS_TYPES), key


def test_the_domain_is_an_alias_of_the_web_alb_in_the_given_zone(sandbox_with_extras):
    records = sandbox_with_extras.template("edge").find_resources("AWS::Route53::RecordSet")
    assert len(records) == 1
    (record,) = records.values()
    props = record["Properties"]
    assert (props["Name"], props["Type"], props["HostedZoneId"]) == (f"{DOMAIN}.", "A", ZONE)
    alias = props["AliasTarget"]
    # The ALB's own DNS name and canonical zone, exported by the web stack (no hard-coded address).
    for attribute in ("DNSName", "HostedZoneId"):
        assert "lc-sandbox-web" in json.dumps(alias[attribute]), alias[attribute]  # a reference, not a literal
    assert "CanonicalHostedZoneID" in json.dumps(alias["HostedZoneId"])
    assert not sandbox_with_extras.template("domain").find_resources("AWS::Route53::HostedZone")  # imported only


def test_without_a_certificate_arn_a_dns_validated_certificate_serves_https(sandbox_with_extras):
    certificates = sandbox_with_extras.template("domain").find_resources("AWS::CertificateManager::Certificate")
    assert len(certificates) == 1
    (certificate,) = certificates.values()
    assert certificate["Properties"]["DomainName"] == DOMAIN
    assert certificate["Properties"]["ValidationMethod"] == "DNS"
    assert certificate["Properties"]["DomainValidationOptions"] == [{"DomainName": DOMAIN, "HostedZoneId": ZONE}]
    web = sandbox_with_extras.template("web")
    web.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 443, "Protocol": "HTTPS", "Certificates": [{"CertificateArn": Match.any_value()}]},
    )
    web.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 80, "DefaultActions": [Match.object_like({"Type": "redirect"})]},
    )
    # The web ALB's security group opens 443 to the internet as it does for a given certificate.
    network = sandbox_with_extras.template("network")
    network.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {"SecurityGroupIngress": Match.array_with([Match.object_like({"FromPort": 443, "CidrIp": "0.0.0.0/0"})])},
    )


def test_a_given_certificate_is_used_and_none_is_requested():
    app = cdk.App()
    config = StageConfig(
        stage="sandbox",
        encryption_keys="default",
        domain_name=DOMAIN,
        hosted_zone_id=ZONE,
        certificate_arn=TEST_CERTIFICATE_ARN,
    )
    stack = DomainStack(app, "Domain", config=config, env=cdk.Environment(account="111111111111", region="us-east-1"))
    assert stack.certificate is None
    Template.from_stack(stack).resource_count_is("AWS::CertificateManager::Certificate", 0)


def test_the_extra_settings_raise_no_unacknowledged_nag_finding(sandbox_with_extras):
    assert sandbox_with_extras.nag_violations() == []
