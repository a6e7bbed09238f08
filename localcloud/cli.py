"""`python -m localcloud up|down|status`.

up:     MiniStack (reused when already running), synth + bootstrap + deploy of every stack with
        `-c stage=local`, a resource-by-resource check of each stack, redis-server with the Sessions
        stack's AUTH token, a wait until Auto Scaling has every tier at capacity behind healthy
        targets (the emulator's supervisor launches and heals the instances), then the storefront
        scenario and a short report.
down:   stops what `up` started (pid files under .localcloud/; the instances stop with the emulator);
        servers it reused are left alone.
status: what is running, which stacks are deployed, each group's capacity and each target's health.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass, field

from localcloud import deploy, identity, runtime, storefront, tiers
from localcloud.processes import INSTANCE_BUNDLES, ManagedProcess, processes_in, stop_all
from localcloud.settings import ROOT, Settings


class Progress:
    """Timestamped progress lines on stdout (flushed: `make` shows them as they happen)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.marks: dict[str, float] = {}

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def mark(self, name: str, since: float) -> None:
        self.marks[name] = time.monotonic() - since


@dataclass
class UpResult:
    settings: Settings
    servers: dict[str, str] = field(default_factory=dict)  # name -> started|reused
    stacks: list[deploy.StackReport] = field(default_factory=list)
    tiers: dict[str, tiers.Tier] = field(default_factory=dict)


def up(settings: Settings, say, with_tiers: bool = True) -> UpResult:
    """Everything but the scenario: what the e2e fixture reuses."""
    result = UpResult(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    result.servers["ministack"] = runtime.ensure_emulator(settings, say)
    say("synthesizing and deploying every stack with -c stage=local")
    assembly = deploy.deploy(settings, say)
    result.stacks = deploy.verify(settings, assembly)
    incomplete = [s for s in result.stacks if s.status not in deploy.DONE or s.missing]
    for stack in result.stacks:
        say(f"  {stack.name}: {stack.status}, {stack.deployed_resources}/{stack.template_resources} resources")
    if incomplete:
        raise RuntimeError(
            "stacks not complete: " + "; ".join(f"{s.name} {s.status} missing {s.missing}" for s in incomplete)
        )
    deployed_at = time.time()
    identity.ensure_demo_users(settings, say)
    # After the deploy: the redis-server enforces the AUTH token the Sessions stack generated.
    result.servers["redis"] = runtime.ensure_redis(settings, say, runtime.redis_auth_token(settings))
    if with_tiers:
        result.tiers = tiers.bring_up(settings, say)
        say(f"storefront: {storefront.check_storefront(settings)}")
    # The emulator warms a worker for every function while the deploy and the tiers start; `up` is
    # done when they are warm, so the first orders meet warm functions, as they would on AWS.
    waited = runtime.wait_for_warm_functions(settings, deployed_at, say)
    say(f"every Lambda function has a warm worker ({waited:.1f}s after the tiers were up)")
    return result


def down(settings: Settings, say, reset: bool = False) -> None:
    """Stop gracefully: MiniStack saves its state on SIGTERM (30 s allowed), redis-server its
    append-only file; the next `up` restores both. `reset` also deletes the saved state."""
    stopped = []
    for name, grace in ((runtime.EMULATOR, 30.0), (runtime.REDIS, 10.0)):
        if ManagedProcess(name, settings.state_dir).stop(timeout=grace):
            stopped.append(name)
    if runtime.EMULATOR in stopped:
        runtime.clear_scratch(settings)
    # Instances outlive an emulator that died without stopping them (killed, crashed): they would keep
    # their ports (8081-8120) until none is left for the next run's instances.
    orphans = stop_all(processes_in(settings.state_dir / INSTANCE_BUNDLES))
    if orphans:
        stopped.append(f"{orphans} instance process{'es' if orphans > 1 else ''} its emulator left behind")
    say(f"stopped: {', '.join(stopped) or 'nothing (no process of ours was running)'}")
    if reset:
        for directory in (*runtime.emulator_state_dirs(settings), runtime.redis_data_dir(settings)):
            shutil.rmtree(directory, ignore_errors=True)
        (settings.state_dir / "cdk.out.inputs").unlink(missing_ok=True)
        say("saved state deleted: the next `up` starts from an empty cloud")


def status(settings: Settings, say) -> int:
    health = runtime.emulator_health(settings)
    say(f"MiniStack at {settings.endpoint}: {'up ' + health.get('version', '') if health else 'down'}")
    say(
        f"redis at {settings.host}:{settings.redis_port}: {'up' if runtime.redis_ping(settings.host, settings.redis_port) else 'down'}"
    )
    for name in ("ministack", "redis"):
        proc = ManagedProcess(name, settings.state_dir)
        if proc.recorded():
            say(f"  {name}: {'running pid ' + str(proc.pid()) if proc.alive() else 'not running (stale pid file)'}")
    if health:
        for stack in settings.client("cloudformation").describe_stacks()["Stacks"]:
            say(f"  stack {stack['StackName']}: {stack['StackStatus']}")
        for _name, tier in sorted(tiers.discover(settings).items()):
            for line in tier_status(settings, tier):
                say(line)
        try:
            say(f"storefront: {storefront.check_storefront(settings)}")
        except RuntimeError as error:
            say(f"storefront: {settings.storefront_url} ({error})")
    return 0


def tier_status(settings: Settings, tier: tiers.Tier) -> list[str]:
    """A group's capacity and each instance with its target's health, from the emulator's APIs."""
    described = tiers.group(settings, tier)
    health = tiers.target_health(settings, tier)
    members = tiers.instances(settings, tier, ("Pending", "InService", "Terminating"))
    in_service = sum(1 for i in members if i.lifecycle == "InService")
    lines = [
        f"  {tier.name} tier ({tier.group_name}): desired {described['DesiredCapacity']}, in service {in_service}"
        f" (min {described['MinSize']}, max {described['MaxSize']})"
    ]
    for i in members:
        lines.append(
            f"    {i.instance_id} {i.zone} {i.lifecycle}/{i.health_status} port {i.port} pid {i.pid}: "
            f"target {health.get(f'{i.host}:{i.port}', 'not registered')}"
        )
    for target, state in sorted(health.items()):
        if not any(f"{i.host}:{i.port}" == target for i in members):
            lines.append(f"    target {target}: {state}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--no-scenario", action="store_true", help="deploy and start the tiers only")
    parser.add_argument("--reset", action="store_true", help="down: also delete the saved state")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    say = Progress()
    if args.command == "down":
        down(settings, say, reset=args.reset)
        return 0
    if args.command == "status":
        return status(settings, say)
    try:
        deploy_started = time.monotonic()
        result = up(settings, say)
        say.mark("deploy", deploy_started)
        outcome = None
        if not args.no_scenario:
            from localcloud import scenario

            scenario_started = time.monotonic()
            outcome = scenario.run(settings, result, say)
            say.mark("scenario", scenario_started)
        print(report(result, outcome, say), flush=True)
    except Exception as error:
        say(f"FAILED: {error}")
        say(f"logs: {settings.state_dir.relative_to(ROOT)}/*.log; stop with `make local-down`")
        return 1
    return 0


def report(result: UpResult, outcome, say: Progress) -> str:
    stacks = result.stacks
    lines = [
        "",
        "local cloud report",
        f"  stacks:      {len(stacks)} deployed, all complete, {sum(s.deployed_resources for s in stacks)} resources",
        "  servers:     " + ", ".join(f"{k} {v}" for k, v in result.servers.items()),
        f"  time:        deploy {say.marks.get('deploy', 0):.1f}s"
        + (f", scenario {say.marks['scenario']:.1f}s" if "scenario" in say.marks else "")
        + f", total {say.elapsed():.1f}s",
    ]
    if outcome is not None:
        lines += outcome.report_lines()
    lines.append(
        f"  storefront:  {result.settings.storefront_url}  (open it in a browser: pages from S3 through CloudFront, "
        "/api/* to the web ALB; demo users in the README)"
    )
    lines.append(f"  MiniStack:   {result.settings.endpoint}  (AWS_ENDPOINT_URL for the AWS CLI and SDKs)")
    notes = {"web": f"internet-facing; demo login alice / {identity.DEMO_USERS['alice']}", "backend": "internal"}
    for name in ("web", "backend"):
        tier = result.tiers.get(name)
        if tier:
            lines.append(
                f"  {name + ' ALB:':12} {result.settings.endpoint}/_alb/{tier.load_balancer_name}/  ({notes[name]})"
            )
    if outcome is not None and outcome.api_url:
        lines.append(f"  {'API:':12} {outcome.api_url}/  (header x-api-key: {outcome.api_key})")
    lines.append(f"  {'stop with:':12} make local-down")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
