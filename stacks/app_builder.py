"""Builds every stack of one stage and wires them together through constructor arguments.

Order follows the dependency graph: stateful stacks first (network, data, sessions, messaging),
then the stateless compute that uses them (workflow, API, processing, tiers), then observability.
No stack looks another up by name: what it needs is passed in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import Stack

from stacks.config import StageConfig, load_config
from stacks.data_stack import DataStack
from stacks.messaging_stack import MessagingStack


@dataclass
class StorefrontApp:
    """Handles on the synthesized stacks, for tests and tools (diagram, bench)."""

    config: StageConfig
    stacks: dict[str, Stack] = field(default_factory=dict)


def context_of(app: cdk.App) -> dict:
    keys = ["stage", "stages"]
    from dataclasses import fields

    from stacks.config import StageConfig as _C

    for f in fields(_C):
        parts = f.name.split("_")
        keys.append(parts[0] + "".join(p.capitalize() for p in parts[1:]))
    return {k: app.node.try_get_context(k) for k in keys if app.node.try_get_context(k) is not None}


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

    # >>> section: network, sessions, backend + web tiers (owner: compute-infra)
    # <<< section: network, sessions, backend + web tiers

    # >>> section: workflow, API, processing (owner: serverless-infra)
    # <<< section: workflow, API, processing

    # >>> section: observability (owner: operate)
    # <<< section: observability

    for stack in s.values():
        cdk.Tags.of(stack).add("project", "loosely-coupled-storefront")
        cdk.Tags.of(stack).add("stage", config.stage)
    return built
