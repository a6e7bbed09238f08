"""Stateless web tier: sessions and carts live in Redis, so losing an instance loses nothing."""

from __future__ import annotations

import pytest

from localcloud import tiers
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

REQUESTS_AFTER_LOSS = 30
CART = {"SKU-TEA-001": 2, "SKU-MUG-002": 1}


@pytest.fixture
def web_tier(store: Harness):
    tier = store.result.tiers["web"]
    yield tier
    # Auto Scaling's part: a replacement instance comes up and is registered again.
    tiers.bring_up(store.settings, lambda message: None)
    assert tiers.registered_targets(store.settings, tier) == sorted(f"{i.host}:{i.port}" for i in tier.instances)


def test_session_and_cart_survive_losing_a_web_instance(store: Harness, web_tier):
    browser = store.browser()
    assert browser.post("/login", {"username": "alice", "password": "wonderland"}).status == 200
    for sku, quantity in CART.items():
        assert browser.post("/cart/items", {"sku": sku, "quantity": quantity}).status == 201
    served_by = {browser.get("/cart").headers["x-served-by"].split(":")[0] for _ in range(20)}
    assert served_by == {"web-1", "web-2"}  # the session is not pinned to an instance

    victim = web_tier.instances[0]
    tiers.kill(store.settings, victim)
    assert tiers.replace_dead_targets(store.settings, web_tier) == [victim.name]  # the ALB health check

    answers = [browser.get("/cart") for _ in range(REQUESTS_AFTER_LOSS)]
    assert [a.status for a in answers] == [200] * REQUESTS_AFTER_LOSS
    assert {a.headers["x-served-by"].split(":")[0] for a in answers} == {"web-2"}
    assert all({i["sku"]: i["quantity"] for i in a.body["items"]} == CART for a in answers)
    # Still logged in on the surviving instance, with the same cart: the order goes through.
    placed = browser.post("/orders")
    assert placed.status == 202, placed.body
    assert browser.get("/cart").body["items"] == []
