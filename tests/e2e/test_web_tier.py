"""The tiers heal themselves: a dead instance leaves the load balancer's rotation after its health
check fails, Auto Scaling replaces it, and sessions and carts live on in Redis.

The tests only inject the fault (SIGKILL or SIGSTOP of one instance's process, as when EC2 loses or
freezes the host) and watch through public APIs: the web ALB, DescribeTargetHealth and
DescribeAutoScalingGroups. Target health and replacement are the emulator's supervisor's job
(localcloud/supervisor.py), exactly as they are AWS's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest

from localcloud import tiers
from localcloud.identity import DEMO_USERS
from localcloud.storefront import HttpClient
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

CART = {"SKU-TEA-001": 2, "SKU-MUG-002": 1}
# Three failed checks 5 s apart (the local stage's settings) plus one check's timeout and a tick.
HEALTH_CHECK_WINDOW_SECONDS = 5 * 3 + 4 + 1
OBSERVED_SECONDS = 60  # the success rate is measured over this long after the window
REPLACEMENT_SECONDS = 60


def signed_in_with_cart(store: Harness) -> HttpClient:
    browser = store.browser()
    assert browser.post("/login", {"username": "alice", "password": DEMO_USERS["alice"]}).status == 200
    browser.post("/orders")  # an earlier test's leftovers: start from an empty cart
    for sku in list(CART):
        browser.delete(f"/cart/items/{sku}")
    for sku, quantity in CART.items():
        assert browser.post("/cart/items", {"sku": sku, "quantity": quantity}).status == 201
    return browser


def cart_of(answer) -> dict[str, int]:
    return {i["sku"]: i["quantity"] for i in answer.body["items"]}


def served_by(answer) -> str:
    return answer.headers["x-served-by"].split(":")[0]


def at_capacity(store: Harness, name: str) -> tiers.Tier:
    tier = store.result.tiers[name]
    tiers.wait_for_capacity(store.settings, tier, REPLACEMENT_SECONDS)
    return tier


def test_losing_a_web_instance_costs_no_session_and_auto_scaling_replaces_it(store: Harness):
    tier = at_capacity(store, "web")
    browser = signed_in_with_cart(store)
    before = tiers.instances(store.settings, tier)
    answered_by = {served_by(browser.get("/cart")) for _ in range(30)}
    assert answered_by == {i.instance_id for i in before}  # the session is not pinned to an instance

    victim = before[0]
    killed_at = time.monotonic()
    tiers.kill(victim)

    # Within the health-check window the ALB stops sending requests to the victim...
    deadline = killed_at + HEALTH_CHECK_WINDOW_SECONDS
    victim_target = f"{victim.host}:{victim.port}"
    while time.monotonic() < deadline and tiers.target_health(store.settings, tier).get(victim_target) == "healthy":
        browser.get("/cart")
        time.sleep(0.2)
    assert tiers.target_health(store.settings, tier).get(victim_target) != "healthy"
    out_of_rotation = time.monotonic() - killed_at

    # ... and from then on the shopper notices nothing: same session, same cart, on other instances.
    answers, started = [], time.monotonic()
    while time.monotonic() - started < OBSERVED_SECONDS:
        answers.append(browser.get("/cart"))
        time.sleep(0.1)
    ok = [a for a in answers if a.status == 200 and cart_of(a) == CART]
    assert len(ok) / len(answers) >= 0.99, [a.status for a in answers if a.status != 200]
    assert victim.instance_id not in {served_by(a) for a in ok}

    # Auto Scaling has replaced the instance by itself: desired capacity in service, every target healthy.
    tiers.wait_for_capacity(store.settings, tier, REPLACEMENT_SECONDS)
    after = {i.instance_id for i in tiers.instances(store.settings, tier, ("InService",))}
    assert victim.instance_id not in after and len(after) == len(before)
    print(f"web instance {victim.instance_id}: out of rotation after {out_of_rotation:.1f}s; {len(answers)} requests")

    placed = browser.post("/orders")  # still signed in, with the same cart: the order goes through
    assert placed.status == 202, placed.body
    assert browser.get("/cart").body["items"] == []


def test_losing_a_backend_instance_loses_and_duplicates_no_order(store: Harness):
    tier = at_capacity(store, "backend")
    browser = store.browser()
    assert browser.post("/login", {"username": "alice", "password": DEMO_USERS["alice"]}).status == 200
    victim = tiers.instances(store.settings, tier)[0]

    placed: list[str] = []
    statuses: list[int] = []
    started = time.monotonic()
    killed = False
    while time.monotonic() - started < HEALTH_CHECK_WINDOW_SECONDS + OBSERVED_SECONDS / 2:
        if not killed and time.monotonic() - started > 3:
            tiers.kill(victim)
            killed = True
        assert browser.post("/cart/items", {"sku": "SKU-TEA-001", "quantity": 1}).status == 201
        answer = browser.post("/orders")
        statuses.append(answer.status)
        if answer.status == 202:
            placed.append(answer.body["order_id"])
        time.sleep(0.1)
    assert killed
    assert statuses.count(202) / len(statuses) >= 0.99, [s for s in statuses if s != 202]
    for order_id in placed:  # every accepted order is recorded, once: no order id twice, none missing
        store.wait_for_recorded(order_id)
    assert len(set(placed)) == len(placed)
    tiers.wait_for_capacity(store.settings, tier, REPLACEMENT_SECONDS)
    assert victim.instance_id not in {i.instance_id for i in tiers.instances(store.settings, tier)}


def test_a_frozen_backend_instance_fails_its_health_check_and_is_replaced(store: Harness):
    """SIGSTOP keeps the process (the EC2 status check passes) but it answers nothing: only the ELB
    health check can notice, and with health-check type ELB Auto Scaling replaces the instance."""
    tier = at_capacity(store, "backend")
    victim = tiers.instances(store.settings, tier)[0]
    assert victim.pid is not None
    frozen_at = time.monotonic()
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        target = f"{victim.host}:{victim.port}"
        store_wait = HEALTH_CHECK_WINDOW_SECONDS + 5
        while time.monotonic() - frozen_at < store_wait:
            if tiers.target_health(store.settings, tier).get(target) in ("unhealthy", "draining", None):
                break
            time.sleep(0.5)
        assert tiers.target_health(store.settings, tier).get(target) in ("unhealthy", "draining", None)
        tiers.wait_for_capacity(store.settings, tier, REPLACEMENT_SECONDS)
        assert victim.instance_id not in {i.instance_id for i in tiers.instances(store.settings, tier)}
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim.pid, signal.SIGCONT)  # if it was not replaced, let it go on
