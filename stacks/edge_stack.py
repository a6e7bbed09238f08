"""The edge: one regional WAF web ACL in front of every internet-facing entry point.

The storefront's internet-facing ALB and the API Gateway stage share one rule set, so an attacker
blocked on one door is blocked on the other, and there is one place to tune rules. AWS managed rule
groups cover common exploits, known-bad inputs and IP addresses with a bad reputation; a rate-based
rule caps each source IP. Every request WAF evaluates is logged (with credentials redacted).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, CfnOutput, Stack, Token
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stacks.config import StageConfig
from stacks.stage_defaults import log_encryption_key, log_retention, removal_policy

# Evaluated in this order (priority = position). The IP reputation list runs before the content
# rules, so requests from known-bad addresses are not inspected further.
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
)
RATE_RULE_NAME = "RateLimitPerIp"
# Headers that carry credentials or session ids never reach the WAF logs.
REDACTED_HEADERS = ("authorization", "cookie", "x-api-key")
# The one region where a CLOUDFRONT-scope web ACL can be created.
CLOUDFRONT_ACL_REGION = "us-east-1"


@dataclass(frozen=True)
class StorefrontAlias:
    """The name users type (`domainName`), its hosted zone, and the load balancer it points at."""

    domain_name: str
    zone: route53.IHostedZone
    load_balancer: elbv2.IApplicationLoadBalancer


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )


class EdgeStack(Stack):
    """`.web_acl` protects the resources whose ARNs are given (the web ALB, the API stage)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        protected_resources: dict[str, str],
        log_key: kms.IKey | None = None,
        storefront_alias: StorefrontAlias | None = None,
        **kwargs,
    ) -> None:
        """`protected_resources` maps a short name (for logical ids) to the ARN of a regional resource.
        `storefront_alias`: the stage's domain (Domain stack) and the web ALB it names."""
        super().__init__(scope, construct_id, **kwargs)
        self.web_acl = self._web_acl(config, "WebAcl", "REGIONAL", config.stack_name("edge"))
        for name, arn in protected_resources.items():
            wafv2.CfnWebACLAssociation(self, f"{name}Association", resource_arn=arn, web_acl_arn=self.web_acl.attr_arn)
        self.log_group = self._logging(config, log_key, self.web_acl, "WafLogs", "WafLogging", "edge")
        CfnOutput(self, "WebAclArn", value=self.web_acl.attr_arn)
        # CloudFront takes only a CLOUDFRONT-scope web ACL, and that exists in us-east-1 only. Where this
        # stack deploys there, the storefront's distribution gets one with the same rules; elsewhere (or
        # where the region is only known at deploy time) it has none: its /api/* requests still pass the
        # regional ACL on the web ALB, the static pages are filtered by nothing (README, honest gaps).
        self.cdn_web_acl: wafv2.CfnWebACL | None = None
        if not Token.is_unresolved(self.region) and self.region == CLOUDFRONT_ACL_REGION:
            self.cdn_web_acl = self._web_acl(config, "CdnWebAcl", "CLOUDFRONT", config.stack_name("cdn"))
            self._logging(config, log_key, self.cdn_web_acl, "CdnWafLogs", "CdnWafLogging", "cdn")
            CfnOutput(self, "CdnWebAclArn", value=self.cdn_web_acl.attr_arn)
        if storefront_alias is not None:
            self._alias(storefront_alias)

    def _web_acl(self, config: StageConfig, construct_id: str, scope: str, name: str) -> wafv2.CfnWebACL:
        return wafv2.CfnWebACL(
            self,
            construct_id,
            name=name,
            description="Storefront edge: managed rule groups plus a per-IP rate limit",
            scope=scope,
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(name),
            rules=[self._rate_rule(config.waf_rate_limit_per_5min)]
            + [self._managed_rule(priority, name) for priority, name in enumerate(MANAGED_RULE_GROUPS, start=1)],
        )

    def _alias(self, alias: StorefrontAlias) -> None:
        """Route 53 answers for the storefront's name with the web ALB's addresses (an alias record: no
        charge for the queries, and it follows the ALB's changing IPs)."""
        record = route53.ARecord(
            self,
            "StorefrontAlias",
            zone=alias.zone,
            record_name=f"{alias.domain_name}.",  # fully qualified: the zone may be the domain's parent
            target=route53.RecordTarget.from_alias(targets.LoadBalancerTarget(alias.load_balancer)),
            comment="Storefront: users come through Route 53 to the web ALB",
        )
        CfnOutput(self, "StorefrontUrl", value=f"https://{alias.domain_name}/")
        self.storefront_record = record

    @staticmethod
    def _rate_rule(limit: int) -> wafv2.CfnWebACL.RuleProperty:
        """Blocks a source IP for as long as it sends more than `limit` requests in any 5 minutes."""
        return wafv2.CfnWebACL.RuleProperty(
            name=RATE_RULE_NAME,
            priority=0,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(limit=limit, aggregate_key_type="IP")
            ),
            visibility_config=_visibility(RATE_RULE_NAME),
        )

    @staticmethod
    def _managed_rule(priority: int, name: str) -> wafv2.CfnWebACL.RuleProperty:
        return wafv2.CfnWebACL.RuleProperty(
            name=name,
            priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),  # the group's own actions apply
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS", name=name
                )
            ),
            visibility_config=_visibility(name),
        )

    def _logging(
        self,
        config: StageConfig,
        log_key: kms.IKey | None,
        acl: wafv2.CfnWebACL,
        group_id: str,
        config_id: str,
        part: str,
    ) -> logs.LogGroup:
        # WAF delivers only to log groups whose name starts with `aws-waf-logs-`.
        log_group_name = f"aws-waf-logs-{config.stack_name(part)}"
        log_group = logs.LogGroup(
            self,
            group_id,
            log_group_name=log_group_name,
            retention=log_retention(config.log_retention_days),
            removal_policy=removal_policy(config),
            encryption_key=log_encryption_key(config, log_key),
        )
        # The logging configuration wants the log group ARN without the trailing `:*` of its Arn attribute.
        log_group_arn = self.format_arn(
            service="logs", resource="log-group", resource_name=log_group_name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        logging_config = wafv2.CfnLoggingConfiguration(
            self,
            config_id,
            resource_arn=acl.attr_arn,
            log_destination_configs=[log_group_arn],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": header})
                for header in REDACTED_HEADERS
            ],
        )
        logging_config.node.add_dependency(log_group)
        return log_group


def internet_facing_resources(
    web_load_balancer: elbv2.IApplicationLoadBalancer, api_stage: apigw.Stage
) -> dict[str, str]:
    """ARNs the edge web ACL protects: the web tier's internet-facing ALB and the API stage.

    A resource takes one web ACL (a second association silently replaces the first), so the API stack
    has none of its own and this one protects both."""
    return {"WebAlb": web_load_balancer.load_balancer_arn, "ApiStage": api_stage.stage_arn}
