"""The storefront's pages and the CloudFront distribution that serves them (seeds 002 and 004).

The static files (`storefront/`: HTML, CSS, ES modules, product pictures) and the architecture diagrams
go to the assets bucket with CDK's BucketDeployment; CloudFront reads them through origin access control
(the bucket stays private), sends `/api/*` to the web ALB and `/me/*` to the REST API's customer routes
(the Cognito authorizer's; the page sends the shopper's ID token), so the pages and their JSON calls
are one origin (no CORS) and the browser reaches the API without the web tier in between. Its own stack because it changes with every release of the pages, while the bucket
(Data), the ALB (Web) and the web ACL (Edge) outlive it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import CfnOutput, CfnResource, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from stacks.config import StageConfig
from stacks.nag import acknowledge, acknowledge_bucket_deployment_handler, acknowledge_cdk_warning
from stacks.stage_defaults import log_encryption_key, log_retention, removal_policy

ROOT = Path(__file__).resolve().parents[1]
PAGES = ROOT / "storefront"
DIAGRAMS = ROOT / "docs" / "diagrams"
API_PATH = "/api/*"  # the web tier answers every route under /api too (services/web/app.py)
CUSTOMER_PATH = "/me/*"  # the REST API's customer routes (stacks/api_stack.py), Cognito-authorized
DIAGRAMS_PREFIX = "diagrams/"
# The local cloud's viewer endpoint finds the distribution by this comment (localcloud/cdn.py).
COMMENT_SUFFIX = "storefront"


def distribution_comment(config: StageConfig) -> str:
    return config.stack_name(COMMENT_SUFFIX)


@dataclass(frozen=True)
class StorefrontOrigins:
    """Where the distribution's origins are: the assets bucket, the web tier's load balancer and the REST
    API (its deployment stage is the origin path)."""

    assets_bucket: s3.IBucket
    web_load_balancer: elbv2.IApplicationLoadBalancer
    rest_api: apigw.RestApiBase
    rest_api_stage: str  # its deployment stage's name, the origin path (a literal: no import of the name)
    log_bucket: s3.IBucket


def content_security_policy(config: StageConfig) -> str:
    """Only this origin's scripts, styles and pictures; sockets to wss: (the live order status). The local
    cloud's WebSocket API is plain ws on the loopback address."""
    sockets = "wss:" + (" ws://127.0.0.1:*" if config.stage == "local" else "")
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {sockets}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )


class StorefrontStack(Stack):
    """`.distribution` (its domain name is the storefront's address) and `.pages` (the BucketDeployment)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        origins_of: StorefrontOrigins,
        web_acl_arn: str | None = None,
        log_key: kms.IKey | None = None,
        **kwargs,
    ) -> None:
        """`web_acl_arn`: a CLOUDFRONT-scope web ACL (Edge stack), None where the stage has none."""
        super().__init__(scope, construct_id, **kwargs)
        # Referenced by attributes, not as the Data stack's construct: the OAC origin would otherwise add
        # a statement naming this distribution to the Data stack's bucket policy, and Data would depend
        # on this stack (a cycle). The Data stack's policy admits CloudFront instead (`assets_read_by_cloudfront`).
        bucket = s3.Bucket.from_bucket_attributes(
            self,
            "AssetsBucket",
            bucket_arn=origins_of.assets_bucket.bucket_arn,
            bucket_name=origins_of.assets_bucket.bucket_name,
            bucket_regional_domain_name=origins_of.assets_bucket.bucket_regional_domain_name,
        )
        headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="Storefront: HSTS, CSP, no sniffing, no framing, no referrer leaks",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365), include_subdomains=True, override=True
                ),
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(config), override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN, override=True
                ),
            ),
        )
        # The ALB speaks HTTPS where the stage has a certificate (its name is then the origin's, so
        # CloudFront can check it); plain HTTP only where the stage allows it (sandbox, local).
        web_origin = origins.HttpOrigin(
            config.domain_name or origins_of.web_load_balancer.load_balancer_dns_name,
            protocol_policy=(
                cloudfront.OriginProtocolPolicy.HTTP_ONLY
                if config.allow_plain_http
                else cloudfront.OriginProtocolPolicy.HTTPS_ONLY
            ),
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=distribution_comment(config),
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=headers,
                compress=True,
            ),
            additional_behaviors={
                API_PATH: cloudfront.BehaviorOptions(
                    origin=web_origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    # Sessions and carts: nothing under /api is cached; cookies, query and headers pass.
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                    response_headers_policy=headers,
                ),
                CUSTOMER_PATH: cloudfront.BehaviorOptions(
                    origin=origins.RestApiOrigin(origins_of.rest_api, origin_path=f"/{origins_of.rest_api_stage}"),
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    # A customer's own orders: never cached; the Authorization header (the ID token the
                    # Cognito authorizer checks) reaches API Gateway, whose Host it must not be.
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                    response_headers_policy=headers,
                ),
            },
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            web_acl_id=web_acl_arn,
            enable_logging=True,
            log_bucket=origins_of.log_bucket,
            log_file_prefix="cloudfront/",
        )
        # The deployment handler's log group, with the stage's retention and log key (CDK's own has neither).
        deploy_logs = logs.LogGroup(
            self,
            "DeploymentLogs",
            retention=log_retention(config.log_retention_days),
            removal_policy=removal_policy(config),
            encryption_key=log_encryption_key(config, log_key),
        )
        self.pages = s3deploy.BucketDeployment(
            self,
            "Pages",
            # package.json only tells Node (the pages' unit tests) that these files are ES modules.
            sources=[s3deploy.Source.asset(str(PAGES), exclude=["package.json"])],
            destination_bucket=bucket,
            exclude=[f"{DIAGRAMS_PREFIX}*"],  # the diagrams' own deployment owns that prefix
            distribution=self.distribution,  # invalidated after each deploy of new pages
            distribution_paths=["/*"],
            memory_limit=256,
            log_group=deploy_logs,
        )
        self.diagrams = s3deploy.BucketDeployment(
            self,
            "Diagrams",
            sources=[s3deploy.Source.asset(str(DIAGRAMS))],
            destination_bucket=bucket,
            destination_key_prefix=DIAGRAMS_PREFIX,
            memory_limit=256,
            log_group=deploy_logs,
        )
        CfnOutput(self, "StorefrontUrl", value=f"https://{self.distribution.distribution_domain_name}/")
        CfnOutput(self, "DistributionId", value=self.distribution.distribution_id)
        acknowledge_cdk_warning(
            self.distribution,
            "@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
            "The assets bucket's policy (Data stack, assets_read_by_cloudfront) admits CloudFront's origin access "
            "control for this account's distributions; naming this one there would make Data depend on this stack.",
        )
        acknowledge_bucket_deployment_handler(self, "the storefront's pages and the diagrams into the assets bucket")
        self._lint_cdk_handler()
        self._acknowledge(config, has_web_acl=web_acl_arn is not None)

    def _lint_cdk_handler(self) -> None:
        """cfn-lint W3005 on CDK's BucketDeployment handler: CDK renders both a DependsOn on its role and a
        GetAtt of it (CDK's output, not ours); the finding is silenced on that one resource only."""
        for child in self.node.children:
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                function = child.node.default_child
                assert isinstance(function, CfnResource)
                function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})

    def _acknowledge(self, config: StageConfig, *, has_web_acl: bool) -> None:
        distribution = self.distribution
        if not has_web_acl:
            acknowledge(
                distribution,
                "AwsSolutions-CFR2",
                "CloudFront takes only a CLOUDFRONT-scope web ACL, created in us-east-1 only; this stage deploys to "
                "another region (or one known only at deploy time), so the Edge stack makes none. The /api/* "
                "requests still pass the regional web ACL on the web ALB; the static pages are not filtered.",
            )
        acknowledge(
            distribution,
            "AwsSolutions-CFR1",
            "A public storefront for every country: no geo restriction (a business decision, not a technical one).",
        )
        acknowledge(
            distribution,
            "AwsSolutions-CFR4",
            "The distribution has no custom domain (domainName names the web ALB), so viewers get CloudFront's "
            "default certificate, whose security policy CloudFront fixes; HSTS and redirect-to-https still apply.",
        )
        if config.allow_plain_http:
            acknowledge(
                distribution,
                "AwsSolutions-CFR5",
                "This stage's web ALB serves plain HTTP (allowPlainHttp: sandbox, local), so CloudFront reaches it "
                "over HTTP; a stage with a certificate uses HTTPS-only to the origin, TLS 1.2.",
            )
