"""The web and backend tiers as the emulator's public APIs show them: load balancer, target group,
Auto Scaling group and the group's instances.

The instances themselves are launched, health-checked and replaced by the supervisor inside the
emulator (localcloud/supervisor.py), as AWS would; this module only finds and watches them. An
instance is known through DescribeAutoScalingGroups and DescribeInstances (its `localcloud:pid` and
`localcloud:port` tags), never through files of the checkout that started the cloud, so a second
checkout sees the same instances. `kill` is the one fault it injects: SIGKILL, as when EC2 loses
the host.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from localcloud.processes import wait_until
from localcloud.settings import Settings

TIER_SCHEME = {"web": "internet-facing", "backend": "internal"}
# The supervisor's instance ports (LOCALCLOUD_INSTANCE_PORTS in localcloud/emulator.py).
INSTANCE_PORTS = range(8081, 8121)


@dataclass(frozen=True)
class Instance:
    instance_id: str
    zone: str
    subnet_id: str
    lifecycle: str
    health_status: str
    host: str
    port: int | None
    pid: int | None
    log_file: Path | None = None  # its console output, in the state directory of the emulator's checkout

    @property
    def name(self) -> str:
        return self.instance_id

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class Tier:
    name: str
    stack_name: str
    load_balancer_name: str
    load_balancer_dns: str
    target_group_arn: str
    group_name: str


def _stack_resources(settings: Settings) -> dict[str, dict[str, str]]:
    """stack name -> {resource type: physical id} for this app's stacks (the emulator may hold others)."""
    cfn = settings.client("cloudformation")
    found: dict[str, dict[str, str]] = {}
    for stack in cfn.describe_stacks()["Stacks"]:
        if not stack["StackName"].startswith(f"{settings.stack_prefix}-"):
            continue
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack["StackName"]):
            for summary in page["StackResourceSummaries"]:
                found.setdefault(stack["StackName"], {})[summary["ResourceType"]] = summary["PhysicalResourceId"]
    return found


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
    """tier name -> its load balancer, target group and Auto Scaling group, from the deployed stacks."""
    elbv2 = settings.client("elbv2")
    tiers: dict[str, Tier] = {}
    for stack_name, resources in _stack_resources(settings).items():
        lb_arn = resources.get("AWS::ElasticLoadBalancingV2::LoadBalancer")
        group = resources.get("AWS::AutoScaling::AutoScalingGroup")
        if not lb_arn or not group:
            continue
        lb = elbv2.describe_load_balancers(LoadBalancerArns=[lb_arn])["LoadBalancers"][0]
        tier = next((t for t, scheme in TIER_SCHEME.items() if lb.get("Scheme") == scheme), None)
        tg_arn = _forward_target_group(settings, lb_arn)
        if tier and tg_arn:
            tiers[tier] = Tier(tier, stack_name, lb["LoadBalancerName"], lb["DNSName"], tg_arn, group)
    return tiers


def group(settings: Settings, tier: Tier) -> dict:
    groups = settings.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[tier.group_name])
    return groups["AutoScalingGroups"][0]


def instances(settings: Settings, tier: Tier, lifecycle: tuple[str, ...] = ("Pending", "InService")) -> list[Instance]:
    """The group's instances in the given lifecycle states, with their process ids and ports."""
    members = [m for m in group(settings, tier).get("Instances", []) if m["LifecycleState"] in lifecycle]
    if not members:
        return []
    ids = [m["InstanceId"] for m in members]
    described = {}
    for reservation in settings.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]:
        for record in reservation["Instances"]:
            described[record["InstanceId"]] = record
    found = []
    for member in members:
        record = described.get(member["InstanceId"], {})
        tags = {t["Key"]: t["Value"] for t in record.get("Tags", [])}
        found.append(
            Instance(
                member["InstanceId"],
                member["AvailabilityZone"],
                record.get("SubnetId", ""),
                member["LifecycleState"],
                member["HealthStatus"],
                record.get("PrivateIpAddress", "127.0.0.1"),
                int(tags["localcloud:port"]) if "localcloud:port" in tags else None,
                int(tags["localcloud:pid"]) if "localcloud:pid" in tags else None,
                Path(tags["localcloud:log"]) if "localcloud:log" in tags else None,
            )
        )
    return sorted(found, key=lambda i: (i.zone, i.port or 0))


def target_health(settings: Settings, tier: Tier) -> dict[str, str]:
    """`host:port` -> initial | healthy | unhealthy | draining, as DescribeTargetHealth reports it."""
    descriptions = settings.client("elbv2").describe_target_health(TargetGroupArn=tier.target_group_arn)
    return {
        f"{d['Target']['Id']}:{d['Target'].get('Port')}": d["TargetHealth"]["State"]
        for d in descriptions["TargetHealthDescriptions"]
    }


def at_capacity(settings: Settings, tier: Tier) -> bool:
    """Desired capacity InService, and every one of those instances healthy in the target group."""
    desired = group(settings, tier)["DesiredCapacity"]
    running = instances(settings, tier, ("InService",))
    health = target_health(settings, tier)
    return len(running) == desired and all(health.get(f"{i.host}:{i.port}") == "healthy" for i in running)


def wait_for_capacity(settings: Settings, tier: Tier, timeout: float) -> float:
    """Seconds until the tier is at capacity (see `at_capacity`)."""
    started = time.monotonic()
    wait_until(lambda: at_capacity(settings, tier), timeout, f"the {tier.name} tier at capacity and healthy", 0.5)
    return time.monotonic() - started


def bring_up(settings: Settings, say, timeout: float = 90.0) -> dict[str, Tier]:
    """Wait until Auto Scaling has every tier at capacity behind healthy targets (the supervisor
    launches the instances as soon as the groups exist)."""
    tiers = discover(settings)
    for name in ("backend", "web"):
        tier = tiers.get(name)
        if tier is None:
            say(f"{name} tier: no {TIER_SCHEME[name]} load balancer deployed yet: skipped")
            continue
        waited = wait_for_capacity(settings, tier, timeout)
        described = ", ".join(f"{i.instance_id} {i.zone} :{i.port}" for i in instances(settings, tier))
        say(f"{name} tier: {described}, healthy in {tier.load_balancer_name} ({waited:.1f}s)")
    return tiers


def kill(instance: Instance) -> None:
    """An instance dies (SIGKILL: no graceful shutdown), as when EC2 loses the host."""
    if instance.pid is None:
        raise RuntimeError(f"{instance.instance_id} has no process yet")
    try:
        os.kill(instance.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_until(lambda: not _running(instance.pid), 10, f"{instance.instance_id} to die")


def _running(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def describe(settings: Settings, tiers: dict[str, Tier]) -> str:
    return json.dumps({name: [i.url for i in instances(settings, tier)] for name, tier in tiers.items()})
