"""State survives a restart of the local cloud (`make local-down` then `make local`): MiniStack saves
every service's records on a graceful stop and restores them at start, redis-server keeps an
append-only file. Orders placed before are still readable, messages waiting in a queue are processed
once after it, and a signed-in shopper stays signed in with the same cart.

The restart is the fault the test injects; everything after it is the cloud's own doing (the
supervisor replaces the instances of the earlier run, the consumers' pollers resume).
"""

from __future__ import annotations

import pytest

from localcloud import cli, runtime
from localcloud.identity import DEMO_USERS
from localcloud.processes import ManagedProcess
from localcloud.storefront import wait_for
from tests.e2e.harness import FANOUT, Harness

pytestmark = pytest.mark.e2e

ITEMS = [{"sku": "SKU-RESTART", "quantity": 1, "unit_price": 7}]
WAITING = 3


def _say(message: str) -> None:
    print(f"[restart] {message}", flush=True)


def test_orders_queued_messages_and_sessions_survive_a_restart(store: Harness):
    assert ManagedProcess(runtime.EMULATOR, store.settings.state_dir).alive(), (
        "this checkout did not start the running local cloud, so it cannot restart it: run the e2e tests "
        "from the checkout that ran `make local`, or stop that cloud first"
    )
    browser = store.browser()
    assert browser.post("/login", {"username": "alice", "password": DEMO_USERS["alice"]}).status == 200
    assert browser.post("/cart/items", {"sku": "SKU-TEA-001", "quantity": 3}).status == 201
    before = store.recorded_order(ITEMS)
    counted_before = int(store.analytics("OrderPlaced").get("event_count", 0))

    with store.consumers_offline(*FANOUT):
        waiting = []
        for _ in range(WAITING):
            status, body = store.place_order(ITEMS)
            assert status == 202, body
            waiting.append(body["order_id"])
        wait_for(
            lambda: all(store.depth(store.queue_url(c)) == WAITING for c in FANOUT), 30, "the orders waiting in queues"
        )
        cli.down(store.settings, _say)
        store.result = cli.up(store.settings, _say)
    assert store.result.servers == {"ministack": "started", "redis": "started"}

    # Orders placed before the restart are still there, through the public API.
    answer = store.api.get(f"/orders/{before}")
    assert answer.status == 200 and answer.body["order_id"] == before
    # The messages that waited through the restart are processed, each exactly once.
    recorded = wait_for(
        lambda: (n := sum(store.order_items(o).keys() >= {"META", "NOTIFICATION"} for o in waiting)) == WAITING and n,
        120,
        f"{WAITING} waiting orders recorded and notified after the restart",
    )
    assert recorded == WAITING
    store.wait_until_drained()
    assert int(store.analytics("OrderPlaced").get("event_count", 0)) - counted_before == WAITING
    # The shopper is still signed in, with the same cart, served by instances of the new run.
    cart = browser.get("/cart")
    assert cart.status == 200, cart.body
    assert {i["sku"]: i["quantity"] for i in cart.body["items"]} == {"SKU-TEA-001": 3}
