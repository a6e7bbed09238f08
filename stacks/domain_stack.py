"""The storefront's name (seed 001: "users coming through Route 53"): the stage's hosted zone and, unless
the stage gives its own `certificateArn`, a DNS-validated ACM certificate for `domainName`.

Synthesized only when the stage sets `domainName` and `hostedZoneId`. It deploys before the web tier,
whose HTTPS listener uses the certificate; the alias record that sends the name to the web ALB is the
Edge stack's (it deploys after the ALB exists). The zone is imported, never created: a domain's zone
outlives any one stage.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_route53 as route53
from constructs import Construct

from stacks.config import StageConfig


class DomainStack(Stack):
    """`.zone` (imported), `.certificate` (None when the stage gives certificateArn)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        assert config.domain_name is not None and config.hosted_zone_id is not None  # built only then
        self.domain_name = config.domain_name
        # The zone may be the domain's parent (shop.example.com in example.com): record names are written
        # fully qualified, so the zone name given here is only a label.
        self.zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "Zone", hosted_zone_id=config.hosted_zone_id, zone_name=config.domain_name
        )
        self.certificate: acm.ICertificate | None = None
        if config.certificate_arn is None:
            self.certificate = acm.Certificate(
                self,
                "Certificate",
                domain_name=config.domain_name,
                validation=acm.CertificateValidation.from_dns(self.zone),  # renews itself while the CNAME stays
            )
            CfnOutput(self, "CertificateArn", value=self.certificate.certificate_arn)
