"""Run the web and backend tiers as local processes and register them as their ALBs' targets.

On AWS each tier is an Auto Scaling group whose instances the ALB target group tracks. MiniStack's
Auto Scaling group launches nothing, so `up` plays the instances: two processes per tier, all on
127.0.0.1, each on its own port (web 8081-8082, backend 8091-8092), registered with that port as an
instance target. MiniStack keys a target by Id alone, so two ports of one host would collapse into
one target; compat's ALB_TARGET_PORT runtime patch keys them by Id and Port, as AWS does.

MiniStack's ALB has no health checks (every target reports healthy), so a dead instance keeps
receiving its share of requests until it is deregistered; `replace_dead_targets` is what the ALB
health check + Auto Scaling would do on AWS.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
from dataclasses import dataclass

from localcloud.processes import ManagedProcess, wait_until
from localcloud.settings import ROOT, Settings

INSTANCES_PER_TIER = 2
TIER_BASE_PORT = {"web": 8080, "backend": 8090}  # instance N listens on base + N
TIER_SCHEME = {"web": "internet-facing", "backend": "internal"}


@dataclass
class Instance:
    tier: str
    index: int
    host: str
    port: int

    @property
    def name(self) -> str:
        return f"{self.tier}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class Tier:
    name: str
    load_balancer_name: str
    load_balancer_dns: str
    target_group_arn: str
    port: int
    instances: list[Instance]


def _stack_load_balancers(settings: Settings) -> list[dict]:
    """Load balancers created by this app's stacks (the emulator may hold others)."""
    cfn, elbv2 = settings.client("cloudformation"), settings.client("elbv2")
    arns = set()
    for stack in cfn.describe_stacks()["Stacks"]:
        if not stack["StackName"].startswith("lc-local-"):
            continue
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack["StackName"]):
            for summary in page["StackResourceSummaries"]:
                if summary["ResourceType"] == "AWS::ElasticLoadBalancingV2::LoadBalancer":
                    arns.add(summary["PhysicalResourceId"])
    if not arns:
        return []
    return [lb for lb in elbv2.describe_load_balancers()["LoadBalancers"] if lb["LoadBalancerArn"] in arns]


def _forward_target_group(settings: Settings, lb_arn: str) -> str | None:
    elbv2 = settings.client("elbv2")
    for listener in elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]:
        for action in listener.get("DefaultActions", []):
            if action.get("TargetGroupArn"):
                return action["TargetGroupArn"]
            for group in action.get("ForwardConfig", {}).get("TargetGroups", []):
                return group["TargetGroupArn"]
    return None


def discover(settings: Settings) -> dict[str, Tier]:
    """tier name -> its load balancer and target group, from what the stacks deployed."""
    elbv2 = settings.client("elbv2")
    tiers: dict[str, Tier] = {}
    for lb in _stack_load_balancers(settings):
        tier = next((t for t, scheme in TIER_SCHEME.items() if lb.get("Scheme") == scheme), None)
        tg_arn = _forward_target_group(settings, lb["LoadBalancerArn"])
        if tier is None or tg_arn is None:
            continue
        tg = elbv2.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
        port = int(tg.get("Port") or 8080)
        instances = [
            Instance(tier, i, settings.host, TIER_BASE_PORT[tier] + i) for i in range(1, INSTANCES_PER_TIER + 1)
        ]
        tiers[tier] = Tier(tier, lb["LoadBalancerName"], lb["DNSName"], tg_arn, port, instances)
    return tiers


def healthy(instance: Instance, timeout: float = 2.0) -> bool:
    """The ALB's view: /health answers 200."""
    return _health(instance, timeout) is not None


def fully_healthy(instance: Instance, timeout: float = 2.0) -> bool:
    """200 and `"status": "ok"`: its dependencies (Redis) answer too. A process is reused only then."""
    return (_health(instance, timeout) or {}).get("status") == "ok"


def _health(instance: Instance, timeout: float) -> dict | None:
    try:
        with urllib.request.urlopen(f"{instance.url}/health", timeout=timeout) as response:
            return json.loads(response.read() or b"{}") if response.status == 200 else None
    except (OSError, ValueError):
        return None


def process_of(settings: Settings, instance: Instance) -> ManagedProcess:
    return ManagedProcess(f"{instance.name}", settings.state_dir)


def start_instance(settings: Settings, instance: Instance, replace: bool = False) -> str:
    """Start one tier process unless a fully healthy one is already serving (and `replace` is False);
    'reused' or 'started'."""
    proc = process_of(settings, instance)
    if proc.alive() and not replace and fully_healthy(instance):
        return "reused"
    proc.stop()
    env = {
        **settings.cli_env(),
        "SERVICE_HOST": instance.host,
        "SERVICE_PORT": str(instance.port),
        "DISCOVERY_PREFIX": settings.discovery_prefix,
        "ALB_GATEWAY": f"{settings.host}:{settings.port}",
        "INSTANCE_ID": instance.name,  # the X-Served-By header names the instance that answered
        "PYTHONUNBUFFERED": "1",
    }
    proc.start([sys.executable, "-m", f"services.{instance.tier}"], env=env, cwd=ROOT)
    return "started"


def wait_healthy(settings: Settings, instance: Instance, timeout: float) -> None:
    proc = process_of(settings, instance)

    wait_until(lambda: proc.require_running() and healthy(instance), timeout, f"{instance.name} /health")


def register(settings: Settings, tier: Tier, instances: list[Instance] | None = None) -> None:
    """Make the target group hold exactly `instances` (default: all of the tier's)."""
    elbv2 = settings.client("elbv2")
    wanted = {(i.host, i.port) for i in (tier.instances if instances is None else instances)}
    current = {
        (d["Target"]["Id"], int(d["Target"].get("Port", tier.port)))
        for d in elbv2.describe_target_health(TargetGroupArn=tier.target_group_arn)["TargetHealthDescriptions"]
    }
    stale = current - wanted
    if stale:
        elbv2.deregister_targets(
            TargetGroupArn=tier.target_group_arn, Targets=[{"Id": h, "Port": p} for h, p in sorted(stale)]
        )
    fresh = wanted - current
    if fresh:
        elbv2.register_targets(
            TargetGroupArn=tier.target_group_arn, Targets=[{"Id": h, "Port": p} for h, p in sorted(fresh)]
        )


def replace_dead_targets(settings: Settings, tier: Tier, timeout: float = 2.0) -> list[str]:
    """What the ALB health check does on AWS: deregister every target whose /health does not answer.
    Returns the names of the instances taken out of the target group."""
    alive = [i for i in tier.instances if healthy(i, timeout)]
    register(settings, tier, alive)
    return [i.name for i in tier.instances if i not in alive]


def kill(settings: Settings, instance: Instance) -> None:
    """An instance dies (SIGKILL: no graceful shutdown), as when EC2 loses the host."""
    proc = process_of(settings, instance)
    pid = proc.pid()
    if pid is not None:
        os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: not proc.alive(), 10, f"{instance.name} to die")


def registered_targets(settings: Settings, tier: Tier) -> list[str]:
    """`host:port` of every target in the tier's target group."""
    elbv2 = settings.client("elbv2")
    return sorted(
        f"{d['Target']['Id']}:{d['Target'].get('Port', tier.port)}"
        for d in elbv2.describe_target_health(TargetGroupArn=tier.target_group_arn)["TargetHealthDescriptions"]
    )


def bring_up(settings: Settings, say, timeout: float = 60.0, replace: bool = False) -> dict[str, Tier]:
    """Start the backend tier first (the web tier calls it), then the web tier; register both.

    `replace`: start new processes even where healthy ones run, as a new deployment replaces the
    instances (`up` asks for it when the emulator or Redis was restarted: their endpoints, the
    resources the instances discovered and the Redis AUTH token are new)."""
    tiers = discover(settings)
    for name in ("backend", "web"):
        tier = tiers.get(name)
        if tier is None:
            say(f"{name} tier: no {TIER_SCHEME[name]} load balancer deployed yet: skipped")
            continue
        outcomes = {i.name: start_instance(settings, i, replace) for i in tier.instances}
        for instance in tier.instances:
            wait_healthy(settings, instance, timeout)
        register(settings, tier)
        say(
            f"{name} tier: {', '.join(f'{i.name}@{i.host}:{i.port} ({outcomes[i.name]})' for i in tier.instances)}"
            f" registered in {tier.load_balancer_name}"
        )
    return tiers


def stop_all(settings: Settings) -> list[str]:
    stopped = []
    for tier in TIER_BASE_PORT:
        for i in range(1, INSTANCES_PER_TIER + 1):
            proc = ManagedProcess(f"{tier}-{i}", settings.state_dir)
            if proc.stop():
                stopped.append(proc.name)
    return stopped


def describe(tiers: dict[str, Tier]) -> str:
    return json.dumps({name: [i.url for i in tier.instances] for name, tier in tiers.items()})
