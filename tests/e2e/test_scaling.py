"""Target tracking scales the web tier on its own: sustained load raises the desired capacity to the
maximum, and once the load ends it returns to the minimum.

The load is real requests through the web ALB; the metric (ALB requests per target, and CPU) is what
the local cloud's supervisor measures from them, evaluated by the group's own target-tracking
policies (the local stage: 600 requests per target per minute, one datapoint per 5 s).
"""

from __future__ import annotations

import threading
import time

import pytest

from localcloud import tiers
from localcloud.identity import DEMO_USERS
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

RATE_PER_SECOND = 40  # 2 targets x 1200 requests/minute: twice the target value
LOAD_LIMIT_SECONDS = 90
SCALE_IN_LIMIT_SECONDS = 240  # 15 datapoints below the target + cooldown + draining


def test_sustained_load_scales_the_web_tier_out_to_its_maximum_and_back_in(store: Harness):
    tier = store.result.tiers["web"]
    tiers.wait_for_capacity(store.settings, tier, 120)
    group = tiers.group(store.settings, tier)
    minimum, maximum = group["MinSize"], group["MaxSize"]
    assert group["DesiredCapacity"] < maximum  # an earlier test's load may have left it above the minimum

    stop = threading.Event()
    statuses: list[int] = []

    def shopper() -> None:
        browser = store.browser()
        browser.post("/login", {"username": "alice", "password": DEMO_USERS["alice"]})
        while not stop.is_set():
            started = time.monotonic()
            statuses.append(browser.get("/cart").status)
            time.sleep(max(0.0, 4 / RATE_PER_SECOND - (time.monotonic() - started)))

    threads = [threading.Thread(target=shopper, daemon=True) for _ in range(4)]
    load_started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while time.monotonic() - load_started < LOAD_LIMIT_SECONDS:
            if tiers.group(store.settings, tier)["DesiredCapacity"] == maximum:
                break
            time.sleep(1)
        scaled_out = time.monotonic() - load_started
        assert tiers.group(store.settings, tier)["DesiredCapacity"] == maximum, f"{len(statuses)} requests"
        tiers.wait_for_capacity(store.settings, tier, 60)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert statuses.count(200) / len(statuses) >= 0.99
    rate = len(statuses) / (time.monotonic() - load_started)

    idle_since = time.monotonic()
    while time.monotonic() - idle_since < SCALE_IN_LIMIT_SECONDS:
        if tiers.group(store.settings, tier)["DesiredCapacity"] == minimum:
            break
        time.sleep(2)
    scaled_in = time.monotonic() - idle_since
    assert tiers.group(store.settings, tier)["DesiredCapacity"] == minimum
    tiers.wait_for_capacity(store.settings, tier, 90)
    print(
        f"scale out to {maximum} after {scaled_out:.0f}s at {rate:.0f} requests/s; back to {minimum} after {scaled_in:.0f}s"
    )
