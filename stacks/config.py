"""One typed configuration object per environment, read from CDK context.

`cdk synth -c stage=sandbox|production|local` picks a profile from the `stages` map in cdk.json;
any single field can be overridden with `-c <field>=<value>` (for example `-c alarmEmail=ops@example.com`).
No account id, region or AMI id is written in code: they come from context or the CLI's environment.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping

STAGES = ("sandbox", "production", "local")


@dataclass(frozen=True)
class StageConfig:
    """Everything that differs between environments. Field names are the cdk.json keys in snake_case."""

    stage: str
    # Prefix of every stack name and of the SSM service-discovery namespace (/<prefix>/...).
    prefix: str = "lc"
    account: str | None = None  # None: the CLI's CDK_DEFAULT_ACCOUNT
    region: str | None = None  # None: the CLI's CDK_DEFAULT_REGION

    # --- network -----------------------------------------------------------------------------
    vpc_cidr: str = "10.40.0.0/16"
    max_azs: int = 2
    nat_gateways: int = 0  # 0: private subnets reach AWS APIs through VPC endpoints only
    vpc_endpoints: bool = True
    flow_log_retention_days: int = 30

    # --- compute tiers --------------------------------------------------------------------------
    instance_type: str = "t4g.micro"
    # None: the latest Amazon Linux 2023 AMI from the public SSM parameter (real AWS only).
    ami_id: str | None = None
    web_min_capacity: int = 2
    web_max_capacity: int = 4
    backend_min_capacity: int = 2
    backend_max_capacity: int = 4
    target_cpu_percent: int = 50
    certificate_arn: str | None = None  # None: HTTP listener (sandbox only); set it for HTTPS

    # --- sessions (ElastiCache) --------------------------------------------------------------------
    cache_node_type: str = "cache.t4g.micro"
    cache_replicas: int = 1  # replicas per shard; >=1 is needed for automatic failover
    cache_multi_az: bool = False

    # --- API -----------------------------------------------------------------------------------
    api_endpoint_type: str = "REGIONAL"  # or EDGE
    api_rate_limit: int = 50  # steady-state requests/s per stage
    api_burst_limit: int = 100
    api_quota_per_day: int = 100_000

    # --- Lambda --------------------------------------------------------------------------------
    # The local cloud runs Python Lambdas with its own interpreter (3.11), so the `local` profile
    # builds the dependency layer for that interpreter; real stages use the newest runtime CDK offers.
    lambda_runtime: str = "python3.14"
    lambda_architecture: str = "ARM_64"
    consumer_max_concurrency: int = 5  # protects DynamoDB and downstreams from a backlog burst

    # --- workflow -------------------------------------------------------------------------------
    approval_timeout_seconds: int = 3600
    cancel_grace_seconds: int = 60  # delay queue: the order-cancel grace period

    # --- operations ------------------------------------------------------------------------------
    alarm_email: str | None = None
    log_retention_days: int = 30
    queue_age_slo_seconds: int = 300
    waf_rate_limit_per_5min: int = 2000
    destroy_on_delete: bool = True  # sandbox/local: data stores go with the stack; production retains

    @property
    def is_production(self) -> bool:
        return self.stage == "production"

    def stack_name(self, part: str) -> str:
        return f"{self.prefix}-{self.stage}-{part}"

    def parameter_name(self, *parts: str) -> str:
        """SSM parameter path for service discovery, e.g. /lc/sandbox/discovery/backend-url."""
        return "/" + "/".join((self.prefix, self.stage, *parts))


def _snake(key: str) -> str:
    out = []
    for ch in key:
        if ch.isupper():
            out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def _coerce(value: Any, current: Any, name: str) -> Any:
    """Context values given with -c arrive as strings; convert them to the field's type."""
    if not isinstance(value, str):
        return value
    if isinstance(current, bool):
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
        raise ValueError(f"{name}: expected true/false, got {value!r}")
    if isinstance(current, int):
        return int(value)
    if value.lower() in ("none", "null", ""):
        return None
    return value


def load_config(context: Mapping[str, Any]) -> StageConfig:
    """Build the StageConfig for `context['stage']` from the cdk.json `stages` map plus overrides.

    `context` is anything with .get (the CDK node's try_get_context wrapped in a dict works too).
    """
    stage = context.get("stage") or "sandbox"
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    stages = context.get("stages") or {}
    if isinstance(stages, str):
        stages = json.loads(stages)
    values: dict[str, Any] = {"stage": stage}
    fields = {f.name: f for f in dataclasses.fields(StageConfig)}
    for key, value in (stages.get(stage) or {}).items():
        name = _snake(key)
        if name not in fields:
            raise ValueError(f"cdk.json stages.{stage}.{key}: no such setting")
        values[name] = value
    defaults = StageConfig(stage=stage)
    for name in fields:
        camel = "".join(p if i == 0 else p.capitalize() for i, p in enumerate(name.split("_")))
        override = context.get(camel)
        if override is not None and name != "stage":
            values[name] = _coerce(override, getattr(defaults, name), camel)
    config = StageConfig(**values)
    if config.is_production and config.destroy_on_delete:
        raise ValueError("production must not destroy data stores on stack deletion")
    if config.web_min_capacity < 2 or config.backend_min_capacity < 2:
        raise ValueError("each tier needs at least 2 instances across AZs")
    return config
