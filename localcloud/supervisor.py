"""The control loops AWS runs and MiniStack lacks: target health checks, Auto Scaling, scaling policies.

MiniStack stores load balancers, target groups and Auto Scaling groups, but nothing acts on them:
every target reports healthy forever, a group holds mock instances that run nothing, and scaling
policies never fire. This module runs inside the emulator (installed by
`compat.install_runtime_patches()`) and does what the services would do, reading and writing
MiniStack's own records so that every public API answers the truth:

- Target health (ELB): each registered target of an instance/ip target group is probed with the
  group's own settings (path, port, interval, timeout, thresholds, matcher) by the rules in
  localcloud/health.py. DescribeTargetHealth reports `initial`/`healthy`/`unhealthy`/`draining`, and
  the ALB data plane forwards only to routable targets. A deregistered target drains for the group's
  `deregistration_delay.timeout_seconds`.
- Auto Scaling: every group whose launch template's user data starts a service
  (`python -m services.<tier>`) keeps DesiredCapacity instances. An instance is a real EC2 record
  (DescribeInstances, tags `localcloud:pid`/`localcloud:port`) and a process started as the user data
  would start it: the service bundle is fetched from the S3 object the user data names, and the
  systemd unit's Environment and ExecStart are honoured (with the local overrides in `_instance_env`).
  Instances are placed in the group's subnets, balanced across their AZs; they are registered in the
  group's target groups (MiniStack's CloudFormation handler drops TargetGroupARNs: a wrapper keeps
  them). An instance whose process has died fails its EC2 status check and is replaced at once; with
  HealthCheckType ELB, one that a target group reports unhealthy after the grace period is replaced too.
  Scale-in terminates instances the way the Default termination policy picks them.
- Scaling policies: target-tracking policies (localcloud/scaling.py) on ALBRequestCountPerTarget
  (counted by the data plane) and ASGAverageCPUUtilization (from /proc of the instances' processes),
  one datapoint per `PERIOD_SECONDS` instead of AWS's minute; cooldowns shrink by the same factor.

Every decision is logged, with the value that caused it, to `.localcloud/supervisor.log`.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud import health, scaling
from localcloud.processes import INSTANCE_BUNDLES as BUNDLES
from localcloud.processes import processes_in, stop_all

logger = logging.getLogger("localcloud.supervisor")

PERIOD_SECONDS = float(os.environ.get("LOCALCLOUD_METRIC_PERIOD_SECONDS", "5"))
TIME_FACTOR = PERIOD_SECONDS / 60.0  # local seconds per AWS second, for cooldowns and warm-ups
TICK_SECONDS = 0.5
PORT_RANGE = tuple(int(p) for p in os.environ.get("LOCALCLOUD_INSTANCE_PORTS", "8081-8120").split("-"))
# How long a Pending instance may take to listen before it counts as a failed launch.
LAUNCH_TIMEOUT_SECONDS = 60.0
LAUNCH_BACKOFF_SECONDS = 10.0
SERVICE_MODULE = re.compile(r"^ExecStart=\S*python\S*\s+-m\s+(services\.[a-z_]+)\s*$", re.MULTILINE)
UNIT_ENVIRONMENT = re.compile(r"^Environment=([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.MULTILINE)
BUNDLE_OBJECT = re.compile(r"aws s3 cp '?s3://([^/']+)/([^' ]+)'?")


@dataclass
class Instance:
    """One instance the supervisor launched: its EC2 id, placement and process."""

    instance_id: str
    group: str
    subnet_id: str
    zone: str
    port: int
    template_version: int
    launched_at: float
    process: subprocess.Popen | None = None
    lifecycle: str = "Pending"  # Pending -> InService -> Terminating -> Terminated
    health_status: str = "Healthy"
    registered: list[str] = field(default_factory=list)  # target group ARNs
    terminate_at: float | None = None  # after the targets have drained
    cpu_ticks: int | None = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Launch:
    """What the launch template's user data would run."""

    module: str
    environment: dict[str, str]
    bundle: tuple[str, str] | None  # (bucket, key) of the service bundle


def replacement_reason(
    group: dict, alive: bool, exit_code: int | None, age_seconds: float, target_states: dict[str, str]
) -> str | None:
    """Why Auto Scaling replaces an InService instance, or None: the EC2 status check (is the instance
    running at all) applies at once; with health-check type ELB, a target group's `unhealthy` verdict
    counts once the grace period since launch has passed."""
    if not alive:
        return f"EC2 status check failed: the instance stopped (exit {exit_code})"
    if group.get("HealthCheckType") != "ELB" or age_seconds < float(group.get("HealthCheckGracePeriod") or 0):
        return None
    unhealthy = [arn for arn, state in target_states.items() if state == health.UNHEALTHY]
    return f"ELB health check failed in {_tg_name(unhealthy[0])}" if unhealthy else None


def parse_user_data(text: str) -> Launch | None:
    """The service a tier's user data starts (see stacks/tier_stacks.py), or None if it starts none."""
    module = SERVICE_MODULE.search(text)
    if not module:
        return None
    bundle = BUNDLE_OBJECT.search(text)
    environment = {name: value.strip().strip('"') for name, value in UNIT_ENVIRONMENT.findall(text)}
    return Launch(module.group(1), environment, (bundle.group(1), bundle.group(2)) if bundle else None)


class Supervisor:
    def __init__(self, state_dir: Path, gateway: str, python: str, instance_env: dict[str, str]) -> None:
        self.state_dir = state_dir
        self.gateway = gateway
        self.python = python
        self.instance_env = instance_env
        self.lock = threading.RLock()
        self.health: dict[tuple[str, str, int], health.TargetHealth] = {}
        self.next_check: dict[tuple[str, str, int], float] = {}
        self.in_flight: set[tuple[str, str, int]] = set()
        self.draining: dict[tuple[str, str, int], float] = {}  # -> when the delay ends
        self.requests: dict[str, int] = {}  # target group ARN -> requests forwarded this period
        self.instances: dict[str, Instance] = {}
        self.scaling: dict[str, scaling.GroupScaling] = {}
        self.last_activity: dict[str, float] = {}
        self.launch_backoff: dict[str, float] = {}  # group -> no launch before
        self.period_started = time.monotonic()
        self.probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="health-check")
        self.launches = ThreadPoolExecutor(max_workers=2, thread_name_prefix="launch")
        self.stopping = threading.Event()
        self.bundle_lock = threading.Lock()
        self.log_path = state_dir / "supervisor.log"
        self.log = open(self.log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the emulator

    # --- logging ----------------------------------------------------------------------------

    def note(self, message: str) -> None:
        self.log.write(f"{time.strftime('%H:%M:%S')} {message}\n")

    # --- target health -----------------------------------------------------------------------

    @staticmethod
    def check_of(tg: dict) -> health.HealthCheck:
        return health.HealthCheck(
            path=tg.get("HealthCheckPath") or "/",
            port=str(tg.get("HealthCheckPort") or "traffic-port"),
            interval_seconds=int(tg.get("HealthCheckIntervalSeconds") or 30),
            timeout_seconds=int(tg.get("HealthCheckTimeoutSeconds") or 5),
            healthy_threshold=int(tg.get("HealthyThresholdCount") or 5),
            unhealthy_threshold=int(tg.get("UnhealthyThresholdCount") or 2),
            matcher=str((tg.get("Matcher") or {}).get("HttpCode") or "200"),
        )

    def target_key(self, tg_arn: str, target: dict) -> tuple[str, str, int]:
        from ministack.services import alb

        return tg_arn, str(target["Id"]), int(target.get("Port") or alb._tgs[tg_arn].get("Port") or 80)

    def state_of(self, tg_arn: str, target: dict) -> str:
        key = self.target_key(tg_arn, target)
        if key in self.draining:
            return health.DRAINING
        return self.health.setdefault(key, health.TargetHealth()).state

    def check_targets(self, now: float) -> None:
        from ministack.services import alb

        seen = set()
        for tg_arn, tg in list(alb._tgs._data.items()):
            tg_arn = tg_arn[2]
            if tg.get("TargetType", "instance") not in ("instance", "ip") or not tg.get("HealthCheckEnabled", True):
                continue
            check = self.check_of(tg)
            for target in list(alb._targets.get(tg_arn, [])):
                key = self.target_key(tg_arn, target)
                seen.add(key)
                self.health.setdefault(key, health.TargetHealth())
                if key in self.in_flight or now < self.next_check.get(key, 0):
                    continue
                self.next_check[key] = now + check.interval_seconds
                self.in_flight.add(key)
                self.probes.submit(self._probe, key, check)
        for key in [k for k in self.health if k not in seen and k not in self.in_flight]:
            self.health.pop(key, None)
            self.next_check.pop(key, None)
        for key, until in list(self.draining.items()):
            if now >= until:
                self.draining.pop(key, None)

    def _probe(self, key: tuple[str, str, int], check: health.HealthCheck) -> None:
        _tg_arn, host, traffic_port = key
        failure: str | None = None
        try:
            conn = _http_connection(host, check.port_for(traffic_port), check.timeout_seconds)
            try:
                conn.request("GET", check.path, headers={"User-Agent": "ELB-HealthChecker/2.0"})
                status = conn.getresponse().status
            finally:
                conn.close()
            if not check.accepts(status):
                failure = "status"
        except (OSError, ValueError):
            failure = "timeout"
        with self.lock:
            self.in_flight.discard(key)
            state = self.health.get(key)
            if state is None:
                return
            changed = state.observe(check, failure)
            if changed:
                self.note(f"target {key[1]}:{key[2]} of {_tg_name(key[0])} is {changed} ({state.reason or 'passing'})")

    def deregistered(self, tg_arn: str, targets: list[dict]) -> None:
        from ministack.services import alb

        delay = _tg_attribute(alb._tg_attrs.get(tg_arn, []), "deregistration_delay.timeout_seconds", 300)
        with self.lock:
            for target in targets:
                key = self.target_key(tg_arn, target)
                self.draining[key] = time.monotonic() + delay
                self.health.pop(key, None)

    def routable_targets(self, tg_arn: str) -> list[dict] | None:
        """The targets the data plane may forward to (None: not a group the supervisor judges)."""
        from ministack.services import alb

        tg = alb._tgs.get(tg_arn)
        if tg is None or tg.get("TargetType", "instance") not in ("instance", "ip"):
            return None
        with self.lock:
            self.requests[tg_arn] = self.requests.get(tg_arn, 0) + 1
            registered = list(alb._targets.get(tg_arn, []))
            states: dict[object, str] = {index: self.state_of(tg_arn, t) for index, t in enumerate(registered)}
            return [registered[int(str(index))] for index in health.routable(states)]

    # --- Auto Scaling --------------------------------------------------------------------------

    def reconcile_groups(self, now: float) -> None:
        from ministack.services import autoscaling

        names = set()
        for group in list(autoscaling._asgs._data.values()):
            names.add(group["AutoScalingGroupName"])
            launch = self.launch_of(group)
            if launch is None:
                continue
            self.reconcile(group, launch, now)
        # A deleted group's instances are terminated with it (DeleteAutoScalingGroup, ForceDelete).
        for instance in list(self.instances.values()):
            if instance.group not in names:
                self.stop_process(instance)
                self.deregister(instance)
                _set_ec2_state(instance.instance_id, "terminated")
                self.instances.pop(instance.instance_id, None)
                self.note(f"{instance.group}: group deleted, {instance.instance_id} terminated")

    def launch_of(self, group: dict) -> tuple[Launch, int] | None:
        template = self.template_data(group)
        if template is None:
            return None
        data, version = template
        try:
            text = base64.b64decode(data.get("UserData") or "").decode()
        except (ValueError, UnicodeDecodeError):
            return None
        launch = parse_user_data(text)
        return (launch, version) if launch else None

    @staticmethod
    def template_data(group: dict) -> tuple[dict, int] | None:
        from ministack.services import ec2

        spec = group.get("LaunchTemplate") or {}
        record = ec2._launch_templates.get(spec.get("LaunchTemplateId", ""))
        if record is None:
            return None
        wanted = str(spec.get("Version") or "$Default")
        number = {
            "$Latest": record.get("LatestVersionNumber"),
            "$Default": record.get("DefaultVersionNumber"),
        }.get(wanted, wanted)
        versions = record.get("Versions") or []
        version = next((v for v in versions if str(v.get("VersionNumber")) == str(number)), None)
        version = version or (versions[-1] if versions else None)
        if version is None:
            return None
        return version.get("LaunchTemplateData") or {}, int(version.get("VersionNumber") or 1)

    def reconcile(self, group: dict, launch_and_version: tuple[Launch, int], now: float) -> None:
        name = group["AutoScalingGroupName"]
        records = group.setdefault("Instances", [])
        # Instances the records hold but no process of this emulator runs (a restart restored them).
        for record in records:
            if record["InstanceId"] not in self.instances and record.get("LifecycleState") != "Terminated":
                record["LifecycleState"], record["HealthStatus"] = "Terminated", "Unhealthy"
                self.note(f"{name}: {record['InstanceId']} has no process (restored from an earlier run): replacing it")
                self.forget_restored(group, record["InstanceId"])
        mine = [i for i in self.instances.values() if i.group == name]
        for instance in mine:
            self.check_instance(group, instance, now)
        live = [i for i in mine if i.lifecycle in ("Pending", "InService")]
        desired = int(group.get("DesiredCapacity") or 0)
        if len(live) < desired and now >= self.launch_backoff.get(name, 0):
            for _ in range(desired - len(live)):
                launched = self.launch(group, launch_and_version, live, now)
                if launched is None:
                    break
                live.append(launched)
        elif len(live) > desired:
            for victim in self.scale_in_victims(live, len(live) - desired):
                self.terminate(victim, "scale in: more instances than the desired capacity", now)
        group["Instances"] = [self.record_of(i) for i in self.instances.values() if i.group == name]
        for instance_id in [i.instance_id for i in self.instances.values() if i.lifecycle == "Terminated"]:
            self.instances.pop(instance_id, None)

    def forget_restored(self, group: dict, instance_id: str) -> None:
        """An instance of an earlier emulator run: its process is gone with that run, so it is
        terminated and its target (found by its `localcloud:port` tag) leaves the target groups."""
        from ministack.services import alb, ec2

        tags = {t["Key"]: t["Value"] for t in ec2._tags.get(instance_id, [])}
        _set_ec2_state(instance_id, "terminated")
        if "localcloud:port" not in tags:
            return
        port = int(tags["localcloud:port"])
        for tg_arn in group.get("TargetGroupARNs") or []:
            alb._targets[tg_arn] = [
                t
                for t in alb._targets.get(tg_arn, [])
                if not (str(t["Id"]) == "127.0.0.1" and int(t.get("Port") or 0) == port)
            ]

    def check_instance(self, group: dict, instance: Instance, now: float) -> None:
        name = group["AutoScalingGroupName"]
        if instance.lifecycle == "Terminating":
            if instance.terminate_at is not None and now >= instance.terminate_at:
                self.stop_process(instance)
                instance.lifecycle = "Terminated"
                _set_ec2_state(instance.instance_id, "terminated")
                self.note(f"{name}: {instance.instance_id} terminated")
            return
        if instance.lifecycle == "Pending":
            if instance.process is not None and not instance.alive():
                self.terminate(instance, f"launch failed: the service exited ({instance.process.returncode})", now)
                # As Auto Scaling backs off a group whose launches keep failing; see the instance's log.
                self.launch_backoff[name] = now + LAUNCH_BACKOFF_SECONDS
            elif instance.process is not None and _port_open(instance.port):
                instance.lifecycle = "InService"
                self.register(group, instance)
                self.note(
                    f"{name}: {instance.instance_id} InService in {instance.zone} on port {instance.port} "
                    f"after {now - instance.launched_at:.1f}s"
                )
            elif now - instance.launched_at > LAUNCH_TIMEOUT_SECONDS:
                self.terminate(instance, "launch timed out", now)
            return
        states = {
            arn: self.health.get((arn, "127.0.0.1", instance.port), health.TargetHealth()).state
            for arn in instance.registered
        }
        code = instance.process.returncode if instance.process else None
        reason = replacement_reason(group, instance.alive(), code, now - instance.launched_at, states)
        if reason:
            instance.health_status = "Unhealthy"
            self.terminate(instance, reason, now)

    def launch(self, group: dict, launch_and_version: tuple[Launch, int], live: list[Instance], now: float):
        from ministack.services import ec2

        launch, version = launch_and_version
        name = group["AutoScalingGroupName"]
        subnets = [s for s in str(group.get("VPCZoneIdentifier") or "").split(",") if s]
        zones = {s: (ec2._subnets.get(s) or {}).get("AvailabilityZone", "us-east-1a") for s in subnets}
        if not subnets:
            subnets, zones = [""], {"": (group.get("AvailabilityZones") or ["us-east-1a"])[0]}
        # Balanced across AZs: the subnet whose AZ holds the fewest live instances of the group.
        load = {zone: sum(1 for i in live if i.zone == zone) for zone in zones.values()}
        subnet = min(subnets, key=lambda s: (load[zones[s]], subnets.index(s)))
        port = self.free_port()
        if port is None:
            self.note(f"{name}: no free port in {PORT_RANGE}: cannot launch")
            return None
        data = (self.template_data(group) or ({}, 0))[0]
        records = ec2._launch_instances_internal(
            image_id=data.get("ImageId", "ami-00000000"),
            instance_type=data.get("InstanceType", "t3.micro"),
            subnet_id=subnet or ec2._DEFAULT_SUBNET_ID,
            count=1,
            user_data=data.get("UserData", ""),
            sg_ids=data.get("SecurityGroupIds") or None,
            requested_private_ip="127.0.0.1",
        )
        record = records[0]
        record["Placement"]["AvailabilityZone"] = zones[subnet]
        instance = Instance(record["InstanceId"], name, subnet, zones[subnet], port, version, now)
        self.instances[instance.instance_id] = instance
        self.note(f"{name}: launching {instance.instance_id} in {instance.zone} ({subnet}) on port {port}")
        self.launches.submit(self._start, group, launch, instance)
        return instance

    def _start(self, group: dict, launch: Launch, instance: Instance) -> None:
        try:
            directory = self.bundle(launch)
            env = self._instance_env(launch, instance)
            log_path = self.state_dir / "instances" / f"{instance.instance_id}.log"
            log = open(log_path, "wb")  # noqa: SIM115
            process = subprocess.Popen(
                [self.python, "-m", launch.module],
                cwd=directory,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
        except Exception as error:  # a launch error is the group's problem, not the emulator's
            self.note(f"{instance.group}: {instance.instance_id} failed to launch: {error}")
            with self.lock:
                instance.process = None
                self.terminate(instance, "launch error", time.monotonic())
                self.launch_backoff[instance.group] = time.monotonic() + LAUNCH_BACKOFF_SECONDS
            return
        with self.lock:
            instance.process = process
            tags = [
                {"Key": "aws:autoscaling:groupName", "Value": instance.group},
                {"Key": "localcloud:pid", "Value": str(process.pid)},
                {"Key": "localcloud:port", "Value": str(instance.port)},
                # where its console output goes: whichever checkout started the emulator
                {"Key": "localcloud:log", "Value": str(log_path.resolve())},
                *(
                    {"Key": t["Key"], "Value": t["Value"]}
                    for t in group.get("Tags", [])
                    if t.get("PropagateAtLaunch") and not str(t["Key"]).startswith("aws:")
                ),
            ]
            _set_ec2_tags(instance.instance_id, tags)

    def _instance_env(self, launch: Launch, instance: Instance) -> dict[str, str]:
        """The unit's Environment with the local overrides: the instance's own address instead of
        0.0.0.0:8080, the emulator's endpoint and credentials instead of the instance profile."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **launch.environment,
            **self.instance_env,
            "SERVICE_HOST": "127.0.0.1",
            "SERVICE_PORT": str(instance.port),
            "INSTANCE_ID": instance.instance_id,
            "AVAILABILITY_ZONE": instance.zone,
        }

    def bundle(self, launch: Launch) -> Path:
        """The service bundle unpacked once per object (instances share it read-only)."""
        if launch.bundle is None:
            raise RuntimeError("the user data names no service bundle")
        bucket, key = launch.bundle
        target = self.state_dir / BUNDLES / re.sub(r"[^A-Za-z0-9._-]", "_", key)
        with self.bundle_lock:
            return self._unpacked(bucket, key, target)

    def _unpacked(self, bucket: str, key: str, target: Path) -> Path:
        if not (target / ".complete").exists():
            with urllib.request.urlopen(f"http://{self.gateway}/{bucket}/{key}", timeout=30) as response:
                payload = response.read()
            staging = target.with_suffix(".partial")
            with contextlib.suppress(FileNotFoundError):
                import shutil

                shutil.rmtree(staging)
            zipfile.ZipFile(io.BytesIO(payload)).extractall(staging)
            (staging / ".complete").write_text(key)
            with contextlib.suppress(OSError):
                staging.rename(target)
        return target

    def register(self, group: dict, instance: Instance) -> None:
        from ministack.services import alb

        for tg_arn in group.get("TargetGroupARNs") or []:
            if tg_arn not in alb._tgs:
                continue
            targets = alb._targets.setdefault(tg_arn, [])
            if not any(str(t["Id"]) == "127.0.0.1" and int(t.get("Port") or 0) == instance.port for t in targets):
                targets.append({"Id": "127.0.0.1", "Port": instance.port})
            key = (tg_arn, "127.0.0.1", instance.port)
            self.draining.pop(key, None)
            self.health[key] = health.TargetHealth()
            self.next_check[key] = 0
            instance.registered.append(tg_arn)

    def deregister(self, instance: Instance) -> float:
        """Take the instance out of its target groups; returns the longest deregistration delay."""
        from ministack.services import alb

        delay = 0.0
        for tg_arn in instance.registered:
            target = {"Id": "127.0.0.1", "Port": instance.port}
            alb._targets[tg_arn] = [
                t
                for t in alb._targets.get(tg_arn, [])
                if not (str(t["Id"]) == "127.0.0.1" and int(t.get("Port") or 0) == instance.port)
            ]
            self.deregistered(tg_arn, [target])
            delay = max(
                delay, _tg_attribute(alb._tg_attrs.get(tg_arn, []), "deregistration_delay.timeout_seconds", 300)
            )
        instance.registered = []
        return delay

    def terminate(self, instance: Instance, why: str, now: float) -> None:
        if instance.lifecycle in ("Terminating", "Terminated"):
            return
        delay = self.deregister(instance)
        instance.lifecycle = "Terminating"
        # A dead instance has nothing in flight; a live one finishes its requests while its targets drain.
        instance.terminate_at = now + (delay if instance.alive() else 0)
        _set_ec2_state(instance.instance_id, "shutting-down")
        self.note(f"{instance.group}: terminating {instance.instance_id} in {instance.zone}: {why}")
        self.last_activity[instance.group] = now

    def stop_process(self, instance: Instance) -> None:
        process = instance.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()

    @staticmethod
    def scale_in_victims(live: list[Instance], count: int) -> list[Instance]:
        """The Default termination policy: from the AZ with the most instances (all tied AZs alike), the
        instance with the oldest launch template version, then the one launched first (AWS's next tie-breaks, billing
        hour and random, have no local meaning)."""
        victims: list[Instance] = []
        pool = list(live)
        for _ in range(count):
            zones: dict[str, list[Instance]] = {}
            for i in pool:
                zones.setdefault(i.zone, []).append(i)
            most = max(len(members) for members in zones.values())
            crowded = [i for members in zones.values() if len(members) == most for i in members]  # ties: all of them
            victim = min(crowded, key=lambda i: (i.lifecycle == "InService", i.template_version, i.launched_at))
            victims.append(victim)
            pool.remove(victim)
        return victims

    def free_port(self) -> int | None:
        taken = {i.port for i in self.instances.values() if i.lifecycle != "Terminated"}
        for port in range(PORT_RANGE[0], PORT_RANGE[1] + 1):
            if port not in taken and not _port_open(port):
                return port
        return None

    @staticmethod
    def record_of(instance: Instance) -> dict[str, Any]:
        return {
            "InstanceId": instance.instance_id,
            "LifecycleState": instance.lifecycle,
            "HealthStatus": instance.health_status,
            "AvailabilityZone": instance.zone,
            "ProtectedFromScaleIn": False,
            "LaunchTemplate": {},
            "LaunchConfigurationName": "",
        }

    # --- scaling policies ------------------------------------------------------------------------

    def evaluate_policies(self, now: float) -> None:
        from ministack.services import autoscaling

        elapsed = now - self.period_started
        if elapsed < PERIOD_SECONDS:
            return
        self.period_started = now
        requests, self.requests = self.requests, {}
        policies: dict[str, list[dict]] = {}
        for record in list(autoscaling._policies._data.values()):
            if record.get("PolicyType") == "TargetTrackingScaling" and record.get("Enabled", True):
                policies.setdefault(record["AutoScalingGroupName"], []).append(record)
        for group in list(autoscaling._asgs._data.values()):
            name = group["AutoScalingGroupName"]
            mine = [i for i in self.instances.values() if i.group == name]
            if name not in policies or self.launch_of(group) is None:
                continue
            in_service = [i for i in mine if i.lifecycle == "InService"]
            readings = []
            for record in policies[name]:
                tracking = record.get("TargetTrackingConfiguration") or {}
                spec = tracking.get("PredefinedMetricSpecification") or {}
                metric = spec.get("PredefinedMetricType") or CUSTOM
                if metric == CUSTOM:
                    spec = tracking.get("CustomizedMetricSpecification") or {}
                policy = scaling.TrackingPolicy(
                    record["PolicyName"],
                    metric,
                    float(tracking.get("TargetValue") or 0),
                    bool(tracking.get("DisableScaleIn")),
                )
                readings.append((policy, self.metric(metric, spec, in_service, requests, elapsed)))
            capacity = int(group.get("DesiredCapacity") or 0)
            cooldown = float(group.get("DefaultCooldown") or 300) * TIME_FACTOR
            settled = now - self.last_activity.get(name, -1e9) >= cooldown and all(
                i.lifecycle != "Pending" for i in mine
            )
            decision = self.scaling.setdefault(name, scaling.GroupScaling()).evaluate(
                capacity, int(group.get("MinSize") or 0), int(group.get("MaxSize") or 0), readings, settled
            )
            if decision:
                group["DesiredCapacity"] = decision.desired
                self.last_activity[name] = now
                self.note(f"{name}: {decision.reason}")

    def metric(self, metric: str, spec: dict, in_service: list[Instance], requests: dict[str, int], elapsed: float):
        if metric == CUSTOM:
            return customized_metric(spec, len(in_service))
        if metric == "ASGAverageCPUUtilization":
            values = [v for v in (self.cpu_percent(i, elapsed) for i in in_service) if v is not None]
            return sum(values) / len(values) if values else None
        if metric == "ALBRequestCountPerTarget":
            label = str(spec.get("ResourceLabel") or "")
            tg_part = label.split("/", 3)[-1] if label.count("/") >= 3 else ""
            from ministack.services import alb

            tg_arn = next((a[2] for a in alb._tgs._data if tg_part and a[2].endswith(tg_part)), None)
            if tg_arn is None:
                return None
            healthy = sum(1 for t in alb._targets.get(tg_arn, []) if self.state_of(tg_arn, t) == health.HEALTHY)
            return requests.get(tg_arn, 0) * (60.0 / elapsed) / max(healthy, 1)
        return None  # not computed locally: the policy never votes

    @staticmethod
    def cpu_percent(instance: Instance, elapsed: float) -> float | None:
        if not instance.alive() or instance.process is None:
            return None
        try:
            fields = Path(f"/proc/{instance.process.pid}/stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            return None
        ticks = int(fields[11]) + int(fields[12])
        before, instance.cpu_ticks = instance.cpu_ticks, ticks
        if before is None:
            return None
        return 100.0 * (ticks - before) / os.sysconf("SC_CLK_TCK") / elapsed

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        (self.state_dir / "instances").mkdir(parents=True, exist_ok=True)
        self.note("supervisor started")
        # An earlier emulator's instances (it was killed, not stopped): their records are replaced, so
        # their processes must go too, or they keep their ports and serve from stale code.
        left = stop_all(processes_in(self.state_dir / BUNDLES))
        if left:
            self.note(f"stopped {left} instance process{'es' if left > 1 else ''} of an earlier run")
        while not self.stopping.wait(TICK_SECONDS):
            now = time.monotonic()
            try:
                with self.lock:
                    self.check_targets(now)
                    self.reconcile_groups(now)
                    self.evaluate_policies(now)
            except Exception:  # one bad record must not stop the loops
                logger.exception("supervisor tick failed")
                self.note("tick failed (see the emulator log)")

    def shutdown(self) -> None:
        self.stopping.set()
        for instance in list(self.instances.values()):
            with contextlib.suppress(Exception):
                self.stop_process(instance)


CUSTOM = "CustomizedMetricSpecification"


def customized_metric(spec: dict, in_service: int) -> float | None:
    """A customized metric or metric-math expression, from what the local cloud can measure: SQS queue
    depths (AWS/SQS ApproximateNumberOfMessagesVisible/NotVisible) and the group's in-service count
    (AWS/AutoScaling GroupInServiceInstances). AWS's documented backlog-per-instance policy is the
    expression `visible / in-service`; with no instance in service it is the backlog itself (one
    instance would carry it), so a group at 0 can scale out. None: a metric the cloud cannot measure."""
    if spec.get("MetricName"):
        return _metric_value(spec, in_service)
    values: dict[str, float] = {}
    returned = None
    for query in spec.get("Metrics") or []:
        if "MetricStat" in query:
            value = _metric_value(query["MetricStat"].get("Metric") or {}, in_service)
            if value is None:
                return None
            values[query["Id"]] = value
        elif "Expression" in query:
            values[query["Id"]] = _expression(str(query["Expression"]), values, in_service)
        if query.get("ReturnData", True) in (True, "true", "True"):
            returned = query["Id"]
    return values.get(returned) if returned else None


def _metric_value(metric: dict, in_service: int) -> float | None:
    dimensions = {d.get("Name"): d.get("Value") for d in metric.get("Dimensions") or []}
    namespace, name = metric.get("Namespace"), metric.get("MetricName")
    if namespace == "AWS/AutoScaling" and name == "GroupInServiceInstances":
        return float(in_service)
    if namespace == "AWS/SQS" and name in (
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
    ):
        from ministack.services import sqs

        url = sqs._queue_name_to_url.get(dimensions.get("QueueName"))
        queue = sqs._queues.get(url) if url else None
        if queue is None:
            return None
        now = time.time()
        messages = list(queue.get("messages") or [])
        visible = sum(1 for m in messages if m["visible_at"] <= now)
        in_flight = sum(1 for m in messages if m["visible_at"] > now and m.get("receive_count", 0) > 0)
        return float(visible if name.endswith("Visible") and not name.endswith("NotVisible") else in_flight)
    return None


def _expression(text: str, values: dict[str, float], in_service: int) -> float:
    """`a / b`, `a + b`, `a - b`, `a * b` over metric ids and numbers (what backlog policies use)."""
    import ast

    def evaluate(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return evaluate(node.body)
        if isinstance(node, ast.Name):
            return values[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp):
            left, right = evaluate(node.left), evaluate(node.right)
            if isinstance(node.op, ast.Div):
                return left / right if right else left  # no instance yet: the whole backlog
            if isinstance(node.op, ast.Add):
                return left + right
            if isinstance(node.op, ast.Sub):
                return left - right
            if isinstance(node.op, ast.Mult):
                return left * right
        raise ValueError(f"unsupported metric math: {text}")

    return evaluate(ast.parse(text, mode="eval"))


def _http_connection(host: str, port: int, timeout: float):
    import http.client

    return http.client.HTTPConnection(host, port, timeout=timeout)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _tg_attribute(attributes: list[dict], key: str, default: float) -> float:
    return float(next((a["Value"] for a in attributes if a.get("Key") == key), default))


def _tg_name(tg_arn: str) -> str:
    return tg_arn.rsplit(":", 1)[-1]


def _set_ec2_state(instance_id: str, name: str) -> None:
    from ministack.services import ec2

    record = ec2._instances.get(instance_id)
    if record is not None:
        record["State"] = {"Code": {"running": 16, "shutting-down": 32, "terminated": 48}[name], "Name": name}


def _set_ec2_tags(instance_id: str, tags: list[dict]) -> None:
    from ministack.services import ec2

    ec2._tags[instance_id] = tags
    record = ec2._instances.get(instance_id)
    if record is not None:
        record["Tags"] = tags


# --- installation --------------------------------------------------------------------------------

_supervisor: Supervisor | None = None


def install(state_dir: Path | None = None, start: bool = True) -> Supervisor:
    """Patch MiniStack's ALB and Auto Scaling to defer to the supervisor, and start its loop."""
    global _supervisor
    from ministack.services import alb, autoscaling
    from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS

    state_dir = state_dir or Path(os.environ.get("LOCALCLOUD_STATE_DIR", ".localcloud"))
    supervisor = Supervisor(
        state_dir,
        gateway=f"127.0.0.1:{os.environ.get('GATEWAY_PORT', '4566')}",
        python=os.environ.get("LOCALCLOUD_INSTANCE_PYTHON", "python3"),
        instance_env=json.loads(os.environ.get("LOCALCLOUD_INSTANCE_ENV", "{}")),
    )
    _supervisor = supervisor

    # Data plane: forward to routable targets only.
    forward = alb._forward_to_tg

    async def forward_to_routable(
        tg_arn, method, path, headers, body, query_params, raw_query_string=None, raw_path=None
    ):
        targets = supervisor.routable_targets(tg_arn)
        if targets is None:
            return await forward(tg_arn, method, path, headers, body, query_params, raw_query_string, raw_path)
        if not targets:
            return (
                503,
                {"Content-Type": "application/json"},
                json.dumps({"message": "No healthy targets in target group"}).encode(),
            )
        return await alb._proxy_http_target(
            random.choice(targets),
            alb._tgs[tg_arn],
            method,
            raw_path or path,
            headers,
            body,
            query_params,
            raw_query_string,
        )

    alb._forward_to_tg = forward_to_routable

    # DescribeTargetHealth answers the truth; DeregisterTargets drains.
    deregister = alb._ACTION_MAP["DeregisterTargets"]

    def deregister_draining(params):
        tg_arn = alb._p(params, "TargetGroupArn")
        targets = alb._parse_targets_param(params)
        answer = deregister(params)
        if tg_arn in alb._tgs:
            supervisor.deregistered(tg_arn, targets)
        return answer

    def describe_target_health(params):
        tg_arn = alb._p(params, "TargetGroupArn")
        if tg_arn not in alb._tgs:
            return alb._error("TargetGroupNotFound", f"Target group '{tg_arn}' not found.")
        wanted = {(str(t["Id"]), t.get("Port")) for t in alb._parse_targets_param(params)}
        with supervisor.lock:
            rows = [
                (supervisor.target_key(tg_arn, t), supervisor.state_of(tg_arn, t)) for t in alb._targets.get(tg_arn, [])
            ]
            rows += [(key, health.DRAINING) for key in supervisor.draining if key[0] == tg_arn]
            reasons = {key: (supervisor.health.get(key) or health.TargetHealth()).reason for key, _ in rows}
        members = []
        for key, state in rows:
            if wanted and not any(i == key[1] and (p in (None, "") or int(p) == key[2]) for i, p in wanted):
                continue
            reason = health.REASONS.get(state) if state in (health.INITIAL, health.DRAINING) else reasons.get(key)
            detail = f"<Reason>{reason}</Reason>" if reason and state != health.HEALTHY else ""
            members.append(
                f"<member><Target><Id>{key[1]}</Id><Port>{key[2]}</Port></Target>"
                f"<HealthCheckPort>{key[2]}</HealthCheckPort>"
                f"<TargetHealth><State>{state}</State>{detail}</TargetHealth></member>"
            )
        return alb._xml(
            200, "DescribeTargetHealth", f"<TargetHealthDescriptions>{''.join(members)}</TargetHealthDescriptions>"
        )

    alb._ACTION_MAP["DeregisterTargets"] = deregister_draining
    alb._ACTION_MAP["DescribeTargetHealth"] = describe_target_health

    # Auto Scaling: the supervisor keeps the capacity; API calls only set the numbers. Groups that run
    # no service (no recognisable user data) keep MiniStack's mock instances.
    reconcile = autoscaling._reconcile_instances

    def reconcile_unless_supervised(group):
        if supervisor.launch_of(group) is None:
            reconcile(group)

    autoscaling._reconcile_instances = reconcile_unless_supervised

    # CloudFormation: keep the group's target groups, which MiniStack's handler drops.
    handlers = _RESOURCE_HANDLERS["AWS::AutoScaling::AutoScalingGroup"]
    create, update = handlers["create"], handlers.get("update")

    def keep_target_groups(answer, props):
        name = answer[0]
        group = autoscaling._asgs.get(name)
        if group is not None:
            group["TargetGroupARNs"] = list(props.get("TargetGroupARNs") or [])
        return answer

    handlers["create"] = lambda logical_id, props, stack_name: keep_target_groups(
        create(logical_id, props, stack_name), props
    )
    if update is not None:
        handlers["update"] = lambda physical_id, old, new, stack_name, logical_id=None: keep_target_groups(
            update(physical_id, old, new, stack_name, logical_id), new
        )

    if start:
        threading.Thread(target=supervisor.run, name="localcloud-supervisor", daemon=True).start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)

            def stop_then(signum, frame, previous=previous):
                supervisor.shutdown()
                if callable(previous):
                    previous(signum, frame)
                else:
                    raise SystemExit(0)

            with contextlib.suppress(ValueError):  # not the main thread (tests)
                signal.signal(sig, stop_then)
    return supervisor


def shell_words(text: str) -> list[str]:
    return shlex.split(text)
