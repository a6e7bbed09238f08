"""Game day: a bounded load through the public entry points while faults are injected one after another.

The load: `Profile.orders` orders at `Profile.rate` orders/s, half through the internet-facing web ALB
(signed-in shoppers: log in, fill the cart, POST /orders) and half through the REST API (x-api-key,
an Idempotency-Key reused on every retry). Every request is a `Sample` (when it was sent, channel,
status, latency). Every order has a key the orders table gives back: an API order's customer id is
`gd-<run>-<n>`; a web order's customer is the demo user, so its cart carries the key instead
(`signature`: the quantities of two SKUs encode n).

The faults (`FAULTS`, in this order, `Profile.gap` seconds apart): kill a web instance, kill a backend
instance, lose an Availability Zone (every instance in one AZ), restart redis-server, take a consumer
offline (its event source mapping disabled), make the payment gateway flaky (checkouts with
`flaky-<n>` tokens), send a poison message. The game day only injects and observes: the emulator's
supervisor (localcloud/supervisor.py) health-checks the targets and replaces instances by itself, as
AWS would. A fault has recovered when its own check passes and both tiers are at capacity with every
target healthy (`tiers.at_capacity`).

Afterwards: every accepted order must be in the orders table (lost = accepted, never recorded) and
none twice (duplicated = extra orders with one key); the dead-letter queues must have gained the
poison message and nothing else.

Everything below `# --- the engine` talks to the local cloud; what is above it is arithmetic over
samples and records, unit-tested alone (tests/unit/localcloud/test_gameday.py).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import urllib3

from localcloud import consumers, runtime, tiers
from localcloud.identity import DEMO_USERS
from localcloud.processes import ManagedProcess
from localcloud.settings import Settings
from localcloud.storefront import Deployed, HttpClient, Response, api_client, wait_for

BUCKET_SECONDS = 5.0
WEB_USERS = tuple(DEMO_USERS.items())  # localcloud/identity.py (the Cognito user pool); a cart per user
WEB_SKUS = ("SKU-TEA-001", "SKU-MUG-002")  # the cart's signature: their quantities encode the order's n
SIGNATURE_BASE = 100  # contracts.limits.MAX_QUANTITY: quantities 1..100 per line
API_SKU, API_PRICE = "SKU-POT-003", 49.9
API_ATTEMPTS = 6
WEB_ATTEMPTS = 3
CLIENT_ERRORS = (400, 401, 403, 404, 413, 422)  # a retry with the same request cannot fix these
POISON_VISIBILITY_SECONDS = 5  # the poison's queue while it is retried (deployed: 180 s per receive)
BACKLOG_SLACK = 20  # a consumer back online has caught up when its queue is this close to where it was

FAULTS = (
    "kill web instance",
    "kill backend instance",
    "lose an AZ",
    "restart redis-server",
    "consumer offline",
    "flaky payment gateway",
    "poison message",
)


@dataclass(frozen=True)
class Profile:
    name: str
    orders: int
    rate: float  # orders/s, both channels together
    gap: float  # seconds between one fault's recovery and the next injection
    warmup: float  # seconds of load before the first fault
    faults: tuple[str, ...] = FAULTS
    consumer_offline_seconds: float = 30.0
    redis_outage_seconds: float = 5.0
    flaky_checkouts: int = 3
    flaky_failures: int = 2  # payment token flaky-<n>: the gateway fails n times, the saga retries
    recovery_timeout: float = 180.0
    drain_timeout: float = 300.0
    api_clients: int = 3


PROFILES = {
    "full": Profile("full", orders=1000, rate=4.0, gap=15.0, warmup=15.0),
    "short": Profile(
        "short",
        orders=150,
        rate=1.0,
        gap=3.0,
        warmup=8.0,
        consumer_offline_seconds=10.0,
        redis_outage_seconds=3.0,
        flaky_checkouts=2,
        recovery_timeout=120.0,
        drain_timeout=240.0,
        api_clients=2,
    ),
}


# --- samples ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the game day started, when the request was sent
    channel: str  # web | api
    op: str  # e.g. "POST /orders"
    status: int  # HTTP status; 0 when no answer came (connection refused, timeout)
    latency: float  # seconds

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def in_window(t: float, start: float, end: float) -> bool:
    return start <= t <= end


def window_counts(samples: Iterable[Sample], start: float, end: float) -> tuple[int, int]:
    """(requests, failed requests) sent within [start, end]."""
    inside = [s for s in samples if in_window(s.t, start, end)]
    return len(inside), sum(not s.ok for s in inside)


def success_rate_outside(samples: Iterable[Sample], windows: Sequence[tuple[float, float]]) -> tuple[float, int]:
    """Share of successful requests among those sent outside every window, and how many there were
    (1.0 when there were none)."""
    outside = [s for s in samples if not any(in_window(s.t, a, b) for a, b in windows)]
    if not outside:
        return 1.0, 0
    return sum(s.ok for s in outside) / len(outside), len(outside)


@dataclass(frozen=True)
class Bucket:
    start: float
    requests: int
    failed: int
    p95_latency: float

    @property
    def success_rate(self) -> float:
        return (self.requests - self.failed) / self.requests if self.requests else 1.0


def buckets(samples: Sequence[Sample], width: float = BUCKET_SECONDS) -> list[Bucket]:
    """Requests per `width`-second bucket from 0 to the last sample: count, failures, p95 latency.
    Empty buckets are kept (requests 0), so a stalled load shows as a gap, not as a shorter run."""
    if not samples:
        return []
    count = int(max(s.t for s in samples) // width) + 1
    grouped: list[list[Sample]] = [[] for _ in range(count)]
    for sample in samples:
        grouped[int(max(sample.t, 0.0) // width)].append(sample)
    return [
        Bucket(i * width, len(group), sum(not s.ok for s in group), percentile([s.latency for s in group], 95))
        for i, group in enumerate(grouped)
    ]


# --- orders: what was intended, accepted and recorded ------------------------------------------------


def signature(n: int) -> dict[str, int]:
    """The cart of web order n: its quantities encode n (unique for n < 100 x 100)."""
    return {WEB_SKUS[0]: 1 + n % SIGNATURE_BASE, WEB_SKUS[1]: 1 + (n // SIGNATURE_BASE) % SIGNATURE_BASE}


def signature_index(items: Iterable[dict[str, Any]]) -> int | None:
    """n of the web order whose cart these items are, or None if they are no game-day cart."""
    lines: dict[str, int] = {}
    for item in items:
        sku = str(item.get("sku"))
        if sku in lines or sku not in WEB_SKUS:
            return None
        lines[sku] = int(item.get("quantity", 0))
    if set(lines) != set(WEB_SKUS) or not all(1 <= q <= SIGNATURE_BASE for q in lines.values()):
        return None
    return (lines[WEB_SKUS[0]] - 1) + SIGNATURE_BASE * (lines[WEB_SKUS[1]] - 1)


@dataclass
class Intent:
    """One order the load meant to place, and what became of it."""

    key: str  # web-<n> | gd-<run>-<n>: what finds it in the orders table
    channel: str
    first_sent: float
    order_id: str | None = None  # from the 202
    accepted_at: float | None = None


@dataclass(frozen=True)
class Recorded:
    key: str
    order_id: str


@dataclass
class Tally:
    intended: int
    accepted: int
    recorded: int
    lost: list[str]  # order ids accepted with 202 and not in the orders table
    duplicated: dict[str, int]  # key -> orders recorded for it, where more than one
    unacknowledged: list[str]  # keys recorded although no 202 reached the client

    @property
    def extra_orders(self) -> int:
        return sum(count - 1 for count in self.duplicated.values())


def tally(intents: Iterable[Intent], recorded: Iterable[Recorded]) -> Tally:
    intents = list(intents)
    recorded = list(recorded)
    ids = {r.order_id for r in recorded}
    per_key: dict[str, set[str]] = {}
    for record in recorded:
        per_key.setdefault(record.key, set()).add(record.order_id)
    accepted = [i.order_id for i in intents if i.order_id is not None]
    return Tally(
        intended=len(intents),
        accepted=len(accepted),
        recorded=len(ids),
        lost=sorted(order_id for order_id in accepted if order_id not in ids),
        duplicated={key: len(found) for key, found in sorted(per_key.items()) if len(found) > 1},
        unacknowledged=sorted(i.key for i in intents if i.order_id is None and i.key in per_key),
    )


# --- faults' outcomes and the scorecard --------------------------------------------------------------


@dataclass
class FaultOutcome:
    name: str
    detail: str
    injected_at: float
    recovered_at: float | None  # None: not recovered within the profile's recovery timeout
    ok: bool  # recovered, and the fault's own verdict (e.g. every flaky checkout SUCCEEDED)
    timeout: float = 180.0
    dlq_delta: int = 0  # messages the dead-letter queues gained between injection and recovery
    requests: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0

    @property
    def window(self) -> tuple[float, float]:
        end = self.recovered_at if self.recovered_at is not None else self.injected_at + self.timeout
        return self.injected_at, end

    @property
    def recovery_seconds(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.injected_at


def attribute(
    outcomes: Sequence[FaultOutcome], samples: Sequence[Sample], intents: Sequence[Intent], counted: Tally
) -> None:
    """Fill each outcome's requests/failed (samples sent in its window), lost (lost orders accepted in
    it) and duplicated (extra orders of keys first sent in it)."""
    by_id = {i.order_id: i for i in intents if i.order_id}
    by_key = {i.key: i for i in intents}
    for outcome in outcomes:
        start, end = outcome.window
        outcome.requests, outcome.failed = window_counts(samples, start, end)
        outcome.lost = sum(
            1
            for order_id in counted.lost
            if (a := by_id[order_id].accepted_at) is not None and in_window(a, start, end)
        )
        outcome.duplicated = sum(
            count - 1
            for key, count in counted.duplicated.items()
            if key in by_key and in_window(by_key[key].first_sent, start, end)
        )


@dataclass
class Report:
    run_id: str
    profile: Profile
    started_at: str  # UTC wall clock
    duration: float  # seconds of load and faults (not the drain)
    samples: list[Sample]
    faults: list[FaultOutcome]
    counted: Tally
    dlq_deltas: dict[str, int]  # DLQ construct path -> messages gained over the whole run
    expected_dlq: dict[str, int] = field(default_factory=dict)  # the poison message's DLQ -> 1
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.counted.lost)

    @property
    def duplicated(self) -> int:
        return self.counted.extra_orders

    @property
    def unexpected_dlq(self) -> dict[str, int]:
        paths = set(self.dlq_deltas) | set(self.expected_dlq)
        return {
            p: self.dlq_deltas.get(p, 0)
            for p in sorted(paths)
            if self.dlq_deltas.get(p, 0) != self.expected_dlq.get(p, 0)
        }

    @property
    def windows(self) -> list[tuple[float, float]]:
        return [f.window for f in self.faults]

    def success_rate_outside_faults(self) -> tuple[float, int]:
        return success_rate_outside(self.samples, self.windows)

    @property
    def passed(self) -> bool:
        """What `make gameday` fails on: an order lost or duplicated."""
        return self.lost == 0 and self.duplicated == 0


def _seconds(value: float | None) -> str:
    return "not recovered" if value is None else f"{value:.1f}"


SCORECARD_HEADER = (
    "fault",
    "injected at (s)",
    "requests",
    "failed",
    "recovered after (s)",
    "orders lost",
    "orders duplicated",
    "DLQ messages",
    "verdict",
)


def scorecard_rows(report: Report) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [
        (
            f.name,
            f"{f.injected_at:.1f}",
            str(f.requests),
            str(f.failed),
            _seconds(f.recovery_seconds),
            str(f.lost),
            str(f.duplicated),
            str(f.dlq_delta),
            ("ok" if f.ok else "FAILED") + (f": {f.detail}" if f.detail else ""),
        )
        for f in report.faults
    ]
    total_failed = sum(not s.ok for s in report.samples)
    unexpected = report.unexpected_dlq
    rows.append(
        (
            "whole run",
            "-",
            str(len(report.samples)),
            str(total_failed),
            "-",
            str(report.lost),
            str(report.duplicated),
            str(sum(report.dlq_deltas.values())),
            ("ok" if report.passed and not unexpected else "FAILED")
            + f": {report.counted.accepted} of {report.counted.intended} orders accepted, {report.counted.recorded}"
            " recorded" + (f"; unexpected DLQ messages {unexpected}" if unexpected else ""),
        )
    )
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def scorecard_markdown(report: Report) -> str:
    lines = [
        "| " + " | ".join(SCORECARD_HEADER) + " |",
        "|" + "|".join("---" if i in (0, 8) else "---:" for i in range(len(SCORECARD_HEADER))) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in scorecard_rows(report)]
    return "\n".join(lines)


def scorecard_text(report: Report, detail_width: int = 60) -> str:
    """The scorecard as aligned plain text, for the terminal."""
    rows = [SCORECARD_HEADER, *(row[:-1] + (row[-1][:detail_width],) for row in scorecard_rows(report))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SCORECARD_HEADER))]
    rate, outside = report.success_rate_outside_faults()
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.append(
        f"success rate outside the fault windows: {rate * 100:.2f} % of {outside} requests; "
        f"{len(report.counted.unacknowledged)} orders recorded although the client saw no 202"
    )
    return "\n".join(lines)


# --- the engine ---------------------------------------------------------------------------------------


class _Client(HttpClient):
    """HttpClient with a read timeout a shopper would wait, not 60 s: a hung request is a failure."""

    _pool = urllib3.PoolManager(maxsize=32, retries=False, timeout=urllib3.Timeout(connect=3, read=15))


class _Tickets:
    """Order numbers handed out to the load's threads, each due at start + n / rate."""

    def __init__(self, numbers: Iterable[int], start: float, rate: float, stop: threading.Event) -> None:
        self._numbers = iter(numbers)
        self._start, self._rate, self._stop = start, rate, stop
        self._lock = threading.Lock()

    def next(self) -> tuple[int, float] | None:
        if self._stop.is_set():
            return None
        with self._lock:
            n = next(self._numbers, None)
        return None if n is None else (n, self._start + n / self._rate)


@dataclass
class _Shopper:
    user: str
    password: str
    browser: HttpClient
    logged_in: bool = False
    cart_clean: bool = False  # known empty (after a placed order); otherwise looked at first


class Fault:
    """One fault: `inject` it, wait `hold_seconds`, `recover` what the game day itself must undo (a
    mapping disabled by the operator), then poll `recovered` (and the tiers' capacity). `cleanup`
    always runs at the end, also after an error, and leaves nothing injected behind."""

    name = ""
    hold_seconds = 0.0

    def inject(self, day: Gameday) -> str:
        raise NotImplementedError

    def recover(self, day: Gameday) -> None:
        return None

    def recovered(self, day: Gameday) -> bool:
        return True

    def verdict(self, day: Gameday) -> tuple[bool, str]:
        """After recovery: did the system do what it must (e.g. every flaky checkout SUCCEEDED)?"""
        return True, ""

    def cleanup(self, day: Gameday) -> None:
        return None


class KillInstances(Fault):
    def __init__(self, name: str, pick: Callable[[Gameday], list[tiers.Instance]]) -> None:
        self.name = name
        self.pick = pick
        self.victims: list[tiers.Instance] = []

    def inject(self, day: Gameday) -> str:
        self.victims = self.pick(day)
        if not self.victims:
            raise RuntimeError(f"{self.name}: no InService instance with a process to kill")
        for victim in self.victims:
            tiers.kill(victim)
        return "killed " + ", ".join(f"{v.instance_id} ({v.zone}, :{v.port})" for v in self.victims)

    def recovered(self, day: Gameday) -> bool:
        gone = {v.instance_id for v in self.victims}
        running = {i.instance_id for t in day.tiers.values() for i in tiers.instances(day.settings, t, ("InService",))}
        return not gone & running


def _first_instance(tier_name: str) -> Callable[[Gameday], list[tiers.Instance]]:
    def pick(day: Gameday) -> list[tiers.Instance]:
        found = [i for i in tiers.instances(day.settings, day.tiers[tier_name], ("InService",)) if i.pid]
        return found[:1]

    return pick


def _one_zone(day: Gameday) -> list[tiers.Instance]:
    """Every InService instance of both tiers in the AZ of the first web instance."""
    everyone = [i for t in day.tiers.values() for i in tiers.instances(day.settings, t, ("InService",)) if i.pid]
    web = [i for i in tiers.instances(day.settings, day.tiers["web"], ("InService",)) if i.pid]
    if not web:
        return []
    return [i for i in everyone if i.zone == web[0].zone]


class RestartRedis(Fault):
    name = "restart redis-server"

    def __init__(self, outage_seconds: float) -> None:
        self.hold_seconds = outage_seconds
        self.token: str | None = None

    def inject(self, day: Gameday) -> str:
        settings = day.settings
        self.token = runtime.redis_auth_token(settings)
        pid = ManagedProcess(runtime.REDIS, settings.state_dir).pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            how = f"SIGKILL to pid {pid}"
        else:  # not started by this checkout: ask it to exit without saving
            _redis_shutdown(settings.host, settings.redis_port, self.token)
            how = "SHUTDOWN NOSAVE"
        wait_for(lambda: not runtime.redis_ping(settings.host, settings.redis_port), 15, "redis-server to stop")
        return f"{how}; down for {self.hold_seconds:.0f} s, then restarted (sessions and carts come back from its append-only file)"

    def recover(self, day: Gameday) -> None:
        runtime.ensure_redis(day.settings, lambda message: day.say(f"  {message}"), self.token)

    def recovered(self, day: Gameday) -> bool:
        """Redis answers and every web instance's health check says its dependencies do too."""
        if not runtime.redis_ping(day.settings.host, day.settings.redis_port):
            return False
        web = tiers.instances(day.settings, day.tiers["web"], ("InService",))
        return bool(web) and all(_deep_health(i) == "ok" for i in web)

    def cleanup(self, day: Gameday) -> None:
        if not runtime.redis_ping(day.settings.host, day.settings.redis_port):
            self.recover(day)


def _redis_shutdown(host: str, port: int, password: str | None) -> None:
    commands = ([("AUTH", password)] if password else []) + [("SHUTDOWN", "NOSAVE")]
    payload = b"".join(
        f"*{len(args)}\r\n".encode() + b"".join(f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args)
        for args in commands
    )
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(payload)
        sock.recv(256)


def _deep_health(instance: tiers.Instance) -> str | None:
    try:
        answer = _Client(instance.url).get("/health")
    except (urllib3.exceptions.HTTPError, OSError):
        return None
    return (answer.body or {}).get("status") if answer.status == 200 and isinstance(answer.body, dict) else None


class ConsumerOffline(Fault):
    name = "consumer offline"

    def __init__(self, consumer: str, seconds: float) -> None:
        self.consumer = consumer
        self.hold_seconds = seconds
        self.depth_before = 0
        self.backlog = 0

    def inject(self, day: Gameday) -> str:
        self.depth_before = consumers.depth(day.sqs, consumers.queue_url(day.deployed, self.consumer))
        consumers.set_consumer(day.settings, day.deployed, self.consumer, False)
        return f"{self.consumer} event source mapping disabled for {self.hold_seconds:.0f} s"

    def recover(self, day: Gameday) -> None:
        self.backlog = consumers.depth(day.sqs, consumers.queue_url(day.deployed, self.consumer))
        consumers.set_consumer(day.settings, day.deployed, self.consumer, True)

    def recovered(self, day: Gameday) -> bool:
        """Enabled again, and the backlog built meanwhile worked off."""
        depth = consumers.depth(day.sqs, consumers.queue_url(day.deployed, self.consumer))
        return consumers.consumer_enabled(day.settings, day.deployed, self.consumer) and (
            depth <= self.depth_before + BACKLOG_SLACK
        )

    def verdict(self, day: Gameday) -> tuple[bool, str]:
        return True, f"backlog of {self.backlog} messages worked off"

    def cleanup(self, day: Gameday) -> None:
        if not consumers.consumer_enabled(day.settings, day.deployed, self.consumer):
            consumers.set_consumer(day.settings, day.deployed, self.consumer, True)


class FlakyPayment(Fault):
    name = "flaky payment gateway"

    def __init__(self, checkouts: int, failures: int) -> None:
        self.checkouts = checkouts
        self.failures = failures
        self.executions: list[str] = []

    def inject(self, day: Gameday) -> str:
        sku = f"SKU-GD-{day.run_id.upper()}"
        day.settings.client("dynamodb").put_item(
            TableName=day.deployed.physical_id("Data/InventoryTable"),
            Item={"sku": {"S": sku}, "on_hand": {"N": str(10 * self.checkouts)}, "reserved": {"N": "0"}},
        )
        order_ids = []
        for k in range(self.checkouts):
            order_id = day.place_api_order(f"{day.run_id}-pay-{k}", [{"sku": sku, "quantity": 1, "unit_price": 12.5}])
            if order_id is None:
                raise RuntimeError("flaky payment gateway: an order for the checkout was not accepted")
            order_ids.append(order_id)
        for order_id in order_ids:  # the checkout needs the order recorded by fulfilment
            wait_for(lambda o=order_id: day.api.get(f"/orders/{o}").status == 200, 90, f"order {order_id} recorded")
        token = f"flaky-{self.failures}"
        for order_id in order_ids:
            answer = day.call(
                day.api,
                "api",
                "POST /orders/{id}/checkout",
                "POST",
                f"/orders/{order_id}/checkout",
                {"payment_token": token},
            )
            if answer is None or answer.status != 202:
                raise RuntimeError(f"checkout of {order_id}: {answer.status if answer else 'no answer'}")
            self.executions.append(answer.body["execution_arn"])
        return f"{self.checkouts} checkouts with payment token {token}"

    def recovered(self, day: Gameday) -> bool:
        sfn = day.settings.client("stepfunctions")
        return all(sfn.describe_execution(executionArn=arn)["status"] != "RUNNING" for arn in self.executions)

    def verdict(self, day: Gameday) -> tuple[bool, str]:
        sfn = day.settings.client("stepfunctions")
        succeeded, retried = 0, 0
        for arn in self.executions:
            succeeded += sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED"
            events = [
                e
                for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
                for e in page["events"]
            ]
            failed = [e for e in events if e["type"] == "TaskFailed"]
            retried += (
                len([e for e in failed if e["taskFailedEventDetails"].get("error") == "PaymentGatewayUnavailable"])
                >= self.failures
            )
        total = len(self.executions)
        return (
            succeeded == retried == total,
            f"{succeeded}/{total} SUCCEEDED, {retried}/{total} after {self.failures} gateway failures",
        )


class PoisonMessage(Fault):
    name = "poison message"

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer
        self.poison_id = f"poison-{uuid.uuid4()}"
        self.visibility: str | None = None
        self.dlq_before = 0

    def dlq_path(self) -> str:
        return f"{consumers.CONSUMERS[self.consumer][1]}/Dlq"

    def inject(self, day: Gameday) -> str:
        queue = consumers.queue_url(day.deployed, self.consumer)
        self.dlq_before = consumers.depth(day.sqs, consumers.dlq_url(day.deployed, self.consumer))
        attrs = day.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])["Attributes"]
        self.visibility = attrs["VisibilityTimeout"]
        # Deployed, each of the 3 receives before the DLQ takes 6x the consumer's timeout (180 s).
        day.sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": str(POISON_VISIBILITY_SECONDS)})
        day.sqs.send_message(
            QueueUrl=queue,
            MessageBody=json.dumps({"event_type": "OrderPlaced", "order_id": self.poison_id, "items": "not a list"}),
            MessageAttributes={"event_type": {"DataType": "String", "StringValue": "OrderPlaced"}},
        )
        return (
            f"undecodable OrderPlaced sent to the {self.consumer} queue (visibility {POISON_VISIBILITY_SECONDS} s"
            f" instead of {self.visibility} s until it is in the DLQ)"
        )

    def recovered(self, day: Gameday) -> bool:
        return consumers.depth(day.sqs, consumers.dlq_url(day.deployed, self.consumer)) >= self.dlq_before + 1

    def verdict(self, day: Gameday) -> tuple[bool, str]:
        return True, f"in {self.dlq_path()}"

    def cleanup(self, day: Gameday) -> None:
        if self.visibility is not None:
            day.sqs.set_queue_attributes(
                QueueUrl=consumers.queue_url(day.deployed, self.consumer),
                Attributes={"VisibilityTimeout": self.visibility},
            )
            self.visibility = None

    def remove(self, day: Gameday) -> bool:
        """Delete the poison message from its DLQ (after it was counted); True if it was found."""
        dlq = consumers.dlq_url(day.deployed, self.consumer)
        for _ in range(5):
            messages = day.sqs.receive_message(
                QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=2, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in messages:
                if self.poison_id in message["Body"]:
                    day.sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                    return True
        return False


def build_faults(profile: Profile) -> list[Fault]:
    made: dict[str, Callable[[], Fault]] = {
        "kill web instance": lambda: KillInstances("kill web instance", _first_instance("web")),
        "kill backend instance": lambda: KillInstances("kill backend instance", _first_instance("backend")),
        "lose an AZ": lambda: KillInstances("lose an AZ", _one_zone),
        "restart redis-server": lambda: RestartRedis(profile.redis_outage_seconds),
        "consumer offline": lambda: ConsumerOffline("fulfilment", profile.consumer_offline_seconds),
        "flaky payment gateway": lambda: FlakyPayment(profile.flaky_checkouts, profile.flaky_failures),
        # The notification queue: its consumer rejects an undecodable body (partial batch failure,
        # maxReceiveCount 3), and a message of it that strays into the DLQ loses no order record.
        "poison message": lambda: PoisonMessage("notification"),
    }
    unknown = [name for name in profile.faults if name not in made]
    if unknown:
        raise ValueError(f"unknown faults {unknown}; known: {list(made)}")
    return [made[name]() for name in profile.faults]


class Gameday:
    def __init__(self, settings: Settings, profile: Profile, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.profile = profile
        self.say = say
        self.run_id = uuid.uuid4().hex[:8]
        self.deployed = Deployed(settings, settings.cdk_out)
        self.tiers = tiers.discover(settings)
        if profile.orders > SIGNATURE_BASE**2:
            raise ValueError(f"at most {SIGNATURE_BASE**2} orders: a web order's cart encodes its number")
        missing = {"web", "backend"} - set(self.tiers)
        if missing:
            raise RuntimeError(f"no {' and no '.join(sorted(missing))} tier deployed: run `make local` first")
        self.sqs = settings.client("sqs")
        plain = api_client(settings, self.deployed)
        self.api: HttpClient = _Client(plain.base_url, headers=plain.headers)
        self.web_base = f"{settings.endpoint}/_alb/{self.tiers['web'].load_balancer_name}"
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.samples: list[Sample] = []
        self.intents: dict[str, Intent] = {}

    # --- requests and orders ---------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    def call(
        self,
        client: HttpClient,
        channel: str,
        op: str,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response | None:
        sent = self.now()
        try:
            answer: Response | None = client.request(method, path, body, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError):
            answer = None
        sample = Sample(sent, channel, op, answer.status if answer else 0, self.now() - sent)
        with self._lock:
            self.samples.append(sample)
        return answer

    def _intend(self, key: str, channel: str) -> Intent:
        with self._lock:
            return self.intents.setdefault(key, Intent(key, channel, self.now()))

    def _accept(self, intent: Intent, order_id: str) -> None:
        with self._lock:
            intent.order_id, intent.accepted_at = order_id, self.now()

    def place_api_order(self, name: str, items: list[dict[str, Any]]) -> str | None:
        """One order through the API, retried with the same Idempotency-Key; its order id or None."""
        key = f"gd-{name}"
        intent = self._intend(key, "api")
        body = {"customer_id": key, "currency": "EUR", "items": items}
        headers = {"Idempotency-Key": f"gameday-{name}"}
        for attempt in range(API_ATTEMPTS):
            answer = self.call(self.api, "api", "POST /orders", "POST", "/orders", body, headers)
            if answer is not None and answer.status == 202:
                self._accept(intent, answer.body["order_id"])
                return intent.order_id
            if answer is not None and answer.status in CLIENT_ERRORS:
                return None
            time.sleep(min(2.0, 0.25 * 2**attempt))
        return None

    def place_web_order(self, shopper: _Shopper, n: int) -> None:
        """Web order n: log in when needed, make the cart exactly signature(n), POST /orders; a failed
        step is retried as a shopper would (WEB_ATTEMPTS times), in the same session where it lasts."""
        intent = self._intend(f"web-{n}", "web")
        wanted = signature(n)
        for _attempt in range(WEB_ATTEMPTS):
            if self._web_attempt(shopper, wanted, intent):
                return
            time.sleep(0.5)

    def _web_attempt(self, shopper: _Shopper, wanted: dict[str, int], intent: Intent) -> bool:
        browser = shopper.browser

        def web(op: str, method: str, path: str, body: Any = None) -> Response | None:
            answer = self.call(browser, "web", op, method, path, body)
            if answer is not None and answer.status == 401:
                shopper.logged_in = False  # the session is gone (redis-server restarted)
            return answer

        if not shopper.logged_in:
            browser.cookies.clear()
            answer = web("POST /login", "POST", "/login", {"username": shopper.user, "password": shopper.password})
            if answer is None or answer.status != 200:
                return False
            shopper.logged_in, shopper.cart_clean = True, False
        have: dict[str, int] = {}
        if not shopper.cart_clean:
            answer = web("GET /cart", "GET", "/cart")
            if answer is None or answer.status != 200:
                return False
            have = {i["sku"]: i["quantity"] for i in answer.body.get("items", [])}
            for sku, quantity in have.items():
                if wanted.get(sku) != quantity:
                    removed = web("DELETE /cart/items", "DELETE", f"/cart/items/{sku}")
                    if removed is None or removed.status != 200:
                        return False
            have = {sku: q for sku, q in have.items() if wanted.get(sku) == q}
        for sku, quantity in wanted.items():
            if have.get(sku) == quantity:
                continue
            added = web("POST /cart/items", "POST", "/cart/items", {"sku": sku, "quantity": quantity})
            if added is None or added.status != 201:
                shopper.cart_clean = False
                return False
        placed = web("POST /orders", "POST", "/orders")
        if placed is not None and placed.status == 202:
            self._accept(intent, placed.body["order_id"])
            shopper.cart_clean = True
            return True
        shopper.cart_clean = False
        return False

    # --- the load ---------------------------------------------------------------------------------

    def start_load(self) -> list[threading.Thread]:
        start = time.monotonic()
        orders, rate = self.profile.orders, self.profile.rate
        web_tickets = _Tickets(range(0, orders, 2), start, rate, self.stop)
        api_tickets = _Tickets(range(1, orders, 2), start, rate, self.stop)

        def paced(tickets: _Tickets, place: Callable[[int], object]) -> None:
            while (ticket := tickets.next()) is not None:
                n, due = ticket
                if self.stop.wait(max(0.0, due - time.monotonic())):
                    return
                place(n)

        def shopper(user: str, password: str) -> None:
            state = _Shopper(user, password, _Client(self.web_base))
            paced(web_tickets, lambda n: self.place_web_order(state, n))

        def api_client_loop() -> None:
            paced(api_tickets, lambda n: self.place_api_order(f"{self.run_id}-{n}", _api_items(n)))

        threads = [
            threading.Thread(target=shopper, args=user, name=f"web-{user[0]}", daemon=True) for user in WEB_USERS
        ]
        threads += [
            threading.Thread(target=api_client_loop, name=f"api-{i}", daemon=True)
            for i in range(self.profile.api_clients)
        ]
        for thread in threads:
            thread.start()
        return threads

    # --- faults ------------------------------------------------------------------------------------

    def at_capacity(self) -> bool:
        return all(tiers.at_capacity(self.settings, tier) for tier in self.tiers.values())

    def dlq_depths(self) -> dict[str, int]:
        return {
            path: consumers.depth(self.sqs, url) for path, url in consumers.dead_letter_queues(self.deployed).items()
        }

    def apply(self, fault: Fault) -> FaultOutcome:
        timeout = self.profile.recovery_timeout
        dlq_before = sum(self.dlq_depths().values())
        injected_at = self.now()
        self.say(f"fault: {fault.name}")
        try:
            detail = fault.inject(self)
        except Exception as error:  # a fault that could not be injected is reported, not raised
            return FaultOutcome(fault.name, f"not injected: {error}", injected_at, None, False, timeout)
        self.say(f"  {detail}")
        if fault.hold_seconds:
            self.stop.wait(fault.hold_seconds)
        recovered_at: float | None = None
        try:
            fault.recover(self)
            deadline = injected_at + timeout
            while self.now() < deadline:
                with contextlib.suppress(Exception):  # an emulator API hiccup is not a verdict
                    if fault.recovered(self) and self.at_capacity():
                        recovered_at = self.now()
                        break
                time.sleep(0.5)
            ok, verdict = fault.verdict(self) if recovered_at is not None else (False, "")
        finally:
            fault.cleanup(self)
        outcome = FaultOutcome(
            fault.name,
            "; ".join(part for part in (detail, verdict) if part),
            injected_at,
            recovered_at,
            ok and recovered_at is not None,
            timeout,
            dlq_delta=sum(self.dlq_depths().values()) - dlq_before,
        )
        self.say(f"  recovered after {_seconds(outcome.recovery_seconds)} s")
        return outcome

    # --- afterwards ----------------------------------------------------------------------------------

    def wait_recorded(self, timeout: float) -> None:
        """Until every accepted order is in the orders table (or the timeout: what is missing is lost)."""
        table = self.deployed.physical_id("Data/OrdersTable")
        dynamodb = self.settings.client("dynamodb")
        missing = {i.order_id for i in self.intents.values() if i.order_id}
        deadline = time.monotonic() + timeout
        while missing and time.monotonic() < deadline:
            for chunk in _chunks(sorted(missing), 100):
                request: dict[str, Any] | None = {
                    table: {
                        "Keys": [{"pk": {"S": f"ORDER#{o}"}, "sk": {"S": "META"}} for o in chunk],
                        "ProjectionExpression": "pk",
                        "ConsistentRead": True,
                    }
                }
                while request:
                    answer = dynamodb.batch_get_item(RequestItems=request)
                    for item in answer["Responses"].get(table, []):
                        missing.discard(item["pk"]["S"].removeprefix("ORDER#"))
                    request = answer.get("UnprocessedKeys") or None
            if missing:
                time.sleep(2)

    def recorded(self, since: datetime) -> list[Recorded]:
        """Every order of this run in the orders table: API orders by customer id, web orders by the
        demo users' carts placed since the run started."""
        from boto3.dynamodb.types import TypeDeserializer

        deserialize = TypeDeserializer().deserialize
        prefix = f"gd-{self.run_id}-"
        users = [user for user, _ in WEB_USERS]
        found: list[Recorded] = []
        paginator = self.settings.client("dynamodb").get_paginator("scan")
        pages = paginator.paginate(
            TableName=self.deployed.physical_id("Data/OrdersTable"),
            FilterExpression="#sk = :meta AND (begins_with(#customer, :prefix) OR #customer IN (:u0, :u1))",
            ExpressionAttributeNames={"#sk": "sk", "#customer": "customer_id"},
            ExpressionAttributeValues={
                ":meta": {"S": "META"},
                ":prefix": {"S": prefix},
                ":u0": {"S": users[0]},
                ":u1": {"S": users[1]},
            },
        )
        for page in pages:
            for raw in page["Items"]:
                item = {k: deserialize(v) for k, v in raw.items()}
                customer = str(item.get("customer_id", ""))
                if customer.startswith(prefix):
                    found.append(Recorded(customer, str(item["order_id"])))
                    continue
                placed = _parse_time(str(item.get("placed_at", "")))
                index = signature_index(item.get("items") or [])
                if placed is not None and placed >= since and index is not None and index % 2 == 0:
                    found.append(Recorded(f"web-{index}", str(item["order_id"])))
        return found

    def run(self) -> Report:
        profile = self.profile
        started = datetime.now(UTC)
        self.t0 = time.monotonic()
        dlq_start = self.dlq_depths()
        faults = build_faults(profile)
        outcomes: list[FaultOutcome] = []
        self.say(
            f"game day {self.run_id} ({profile.name}): {profile.orders} orders at {profile.rate:g}/s, "
            f"faults: {', '.join(profile.faults)}"
        )
        threads = self.start_load()
        try:
            self.stop.wait(profile.warmup)
            for fault in faults:
                outcomes.append(self.apply(fault))
                self.stop.wait(profile.gap)
        except BaseException:
            self.stop.set()
            raise
        finally:
            for fault in faults:
                with contextlib.suppress(Exception):
                    fault.cleanup(self)
        expected_end = profile.orders / profile.rate + 120
        for thread in threads:
            thread.join(max(1.0, expected_end - self.now()))
        self.stop.set()
        duration = self.now()
        self.say(f"load done after {duration:.0f} s; waiting for every accepted order to be recorded")
        self.wait_recorded(profile.drain_timeout)
        with self._lock:
            intents, samples = list(self.intents.values()), sorted(self.samples, key=lambda s: s.t)
        counted = tally(intents, self.recorded(started))
        dlq_end = self.dlq_depths()
        deltas = {path: dlq_end.get(path, 0) - dlq_start.get(path, 0) for path in sorted(set(dlq_end) | set(dlq_start))}
        notes = []
        poison = next((f for f in faults if isinstance(f, PoisonMessage)), None)
        expected = {poison.dlq_path(): 1} if poison is not None else {}
        if poison is not None and deltas.get(poison.dlq_path(), 0) >= 1:
            removed = poison.remove(self)
            notes.append(
                f"the poison message was {'deleted from' if removed else 'not found again in'} its DLQ after counting"
            )
        attribute(outcomes, samples, intents, counted)
        return Report(
            self.run_id,
            profile,
            started.strftime("%Y-%m-%d %H:%M UTC"),
            duration,
            samples,
            outcomes,
            counted,
            deltas,
            expected,
            notes,
        )


def _api_items(n: int) -> list[dict[str, Any]]:
    return [{"sku": API_SKU, "quantity": 1 + n % 3, "unit_price": API_PRICE}]


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run(settings: Settings, profile: Profile, say: Callable[[str], None]) -> Report:
    """One game day against the running local cloud (see the module docstring)."""
    return Gameday(settings, profile, say).run()
