"""Builds every stack of one stage and wires them together through constructor arguments.

Order follows the dependency graph: stateful stacks first (data, messaging, network, sessions),
then the compute that uses them (EC2 tiers, workflow, API, processing), then the edge ACL and
observability over all of it. No stack looks another up by name: what it needs is passed in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import Stack

from stacks.api_stack import ApiStack
from stacks.config import CONTEXT_KEYS, StageConfig, load_config
from stacks.data_stack import DataStack
from stacks.domain_stack import DomainStack
from stacks.edge_stack import EdgeStack, StorefrontAlias, internet_facing_resources
from stacks.identity_stack import IdentityStack
from stacks.live_status_stack import LiveStatusStack
from stacks.media_stack import MediaStack
from stacks.messaging_stack import MessagingStack
from stacks.network_stack import NetworkStack
from stacks.observability_stack import ObservabilityStack, monitored_system_of
from stacks.processing_stack import ProcessingStack
from stacks.sessions_stack import SessionsStack
from stacks.storefront_stack import StorefrontOrigins, StorefrontStack
from stacks.tier_stacks import BackendTierStack, WebTierStack
from stacks.workflow_stack import WorkflowStack


@dataclass
class StorefrontApp:
    """Handles on the synthesized stacks, for tests and tools (diagram, bench)."""

    config: StageConfig
    stacks: dict[str, Stack] = field(default_factory=dict)


def context_of(app: cdk.App) -> dict:
    """The context keys load_config reads (the stage profiles and one override per setting) that are set."""
    values = {key: app.node.try_get_context(key) for key in CONTEXT_KEYS}
    return {key: value for key, value in values.items() if value is not None}


def build_app(app: cdk.App, config: StageConfig | None = None) -> StorefrontApp:
    config = config or load_config(context_of(app))
    env = cdk.Environment(
        account=config.account or os.environ.get("CDK_DEFAULT_ACCOUNT"),
        region=config.region or os.environ.get("CDK_DEFAULT_REGION"),
    )
    built = StorefrontApp(config=config)
    s = built.stacks

    def common(part: str) -> dict:
        return {"stack_name": config.stack_name(part), "env": env, "config": config}

    # --- stateful -------------------------------------------------------------------------------
    s["data"] = data = DataStack(app, "Data", **common("data"))
    s["messaging"] = messaging = MessagingStack(app, "Messaging", **common("messaging"))
    # The stage's CloudWatch Logs key (None unless encryptionKeys=cmk) lives in the data stack, which every
    # stack with a log group deploys after; it is handed to each of them here.
    log_key = data.log_key
    s["network"] = network = NetworkStack(app, "Network", log_key=log_key, **common("network"))
    s["sessions"] = sessions = SessionsStack(
        app,
        "Sessions",
        vpc=network.vpc,
        subnets=network.data_subnets,
        security_group=network.security_groups.cache,
        **common("sessions"),
    )

    # Customers: the Cognito user pool the web tier signs in with and the APIs' authorizers trust.
    s["identity"] = identity = IdentityStack(app, "Identity", **common("identity"))

    # The stage's name in Route 53 and its certificate: only when it sets domainName and hostedZoneId.
    domain: DomainStack | None = None
    if config.domain_name is not None:
        s["domain"] = domain = DomainStack(app, "Domain", **common("domain"))

    # --- EC2 tiers ------------------------------------------------------------------------------
    s["backend"] = backend = BackendTierStack(
        app,
        "Backend",
        vpc=network.vpc,
        instance_subnets=network.app_subnets,
        security_groups=network.security_groups,
        orders_table=data.orders_table,
        idempotency_table=data.idempotency_table,
        handoff_bucket=data.handoff_bucket,
        order_events_topic=messaging.order_events_topic,
        **common("backend"),
    )
    s["web"] = web = WebTierStack(
        app,
        "Web",
        vpc=network.vpc,
        instance_subnets=network.app_subnets,
        security_groups=network.security_groups,
        sessions=sessions,
        assets_bucket=data.assets_bucket,
        activity_queue=messaging.activity.queue,
        certificate=domain.certificate if domain else None,
        **common("web"),
    )
    # Not a reference, an ordering: web instances read `backend-url` at start-up.
    web.add_stack_dependency(backend, "web instances read the backend-url discovery parameter at boot")
    # A queue feeds an EC2 fleet: staff uploads -> picture-jobs queue -> workers -> assets bucket.
    s["media"] = MediaStack(
        app,
        "Media",
        vpc=network.vpc,
        instance_subnets=network.app_subnets,
        security_group=network.security_groups.picture_workers,
        media_bucket=data.media_bucket,
        assets_bucket=data.assets_bucket,
        picture_jobs_queue=data.picture_jobs.queue,
        **common("media"),
    )

    # --- serverless -----------------------------------------------------------------------------
    s["workflow"] = workflow = WorkflowStack(
        app,
        "Workflow",
        orders_table=data.orders_table,
        inventory_table=data.inventory_table,
        inventory_events_queue=messaging.inventory_fifo.queue,
        order_events_topic=messaging.order_events_topic,
        log_key=log_key,
        **common("workflow"),
    )
    s["api"] = api = ApiStack(
        app,
        "Api",
        orders_table=data.orders_table,
        idempotency_table=data.idempotency_table,
        order_events_topic=messaging.order_events_topic,
        checkout_state_machine=workflow.state_machine,
        delivery_updates_queue=messaging.delivery_updates.queue,
        user_pool=identity.user_pool,
        log_key=log_key,
        **common("api"),
    )
    s["processing"] = processing = ProcessingStack(
        app,
        "Processing",
        orders_table=data.orders_table,
        idempotency_table=data.idempotency_table,
        handoff_bucket=data.handoff_bucket,
        fanout_queues={name: pair.queue for name, pair in messaging.fanout.items()},
        cancel_window_queue=messaging.cancel_delay_queue.queue,
        inventory_events_queue=messaging.inventory_fifo.queue,
        delivery_updates_queue=messaging.delivery_updates.queue,
        activity_queue=messaging.activity.queue,
        activity_state_machine=workflow.activity_counters,
        log_key=log_key,
        **common("processing"),
    )

    s["live"] = live = LiveStatusStack(
        app,
        "LiveStatus",
        orders_table=data.orders_table,
        user_pool=identity.user_pool,
        user_pool_client=identity.web_client,
        log_key=log_key,
        **common("live"),
    )

    # --- over everything above: one web ACL for both public doors, one dashboard -----------------
    s["edge"] = edge = EdgeStack(
        app,
        "Edge",
        protected_resources=internet_facing_resources(web.load_balancer, api.rest_api.deployment_stage),
        log_key=log_key,
        storefront_alias=(
            StorefrontAlias(domain_name=domain.domain_name, zone=domain.zone, load_balancer=web.load_balancer)
            if domain
            else None
        ),
        **common("edge"),
    )
    # --- the pages and the CloudFront distribution in front of them and of the web tier ----------
    s["storefront"] = StorefrontStack(
        app,
        "Storefront",
        origins_of=StorefrontOrigins(
            assets_bucket=data.assets_bucket,
            web_load_balancer=web.load_balancer,
            rest_api=api.rest_api,
            rest_api_stage=api.stage_name,
            log_bucket=data.access_logs_bucket,
        ),
        web_acl_arn=edge.cdn_web_acl.attr_arn if edge.cdn_web_acl else None,
        log_key=log_key,
        **common("storefront"),
    )
    s["observability"] = ObservabilityStack(
        app,
        "Observability",
        system=monitored_system_of(
            data=data,
            messaging=messaging,
            sessions=sessions,
            backend=backend,
            web=web,
            workflow=workflow,
            api=api,
            processing=processing,
            edge=edge,
            live=live,
        ),
        **common("observability"),
    )

    for stack in s.values():
        cdk.Tags.of(stack).add("project", "loosely-coupled-storefront")
        cdk.Tags.of(stack).add("stage", config.stage)
    return built
