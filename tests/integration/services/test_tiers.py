"""The tiers as real processes (two web instances, one backend) on real Redis and moto's AWS APIs:
the properties that make the storefront loosely coupled and horizontally scalable."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from localcloud.identity import DEMO_USERS
from tests.integration.services.conftest import (
    DISCOVERY_TTL_SECONDS,
    Browser,
    ServiceProcess,
    Tiers,
    free_port,
    wait_until,
)

TEA, MUG = "SKU-TEA-001", "SKU-MUG-002"


def logged_in(web: ServiceProcess, user: str = "alice", password: str = DEMO_USERS["alice"]) -> Browser:
    browser = Browser()
    reply = browser.post(f"{web.url}/login", {"username": user, "password": password})
    assert reply.status == 200, reply.body
    return browser


@pytest.fixture
def tiers(tiers: Tiers) -> Tiers:
    """Each test starts with empty observer and cancel-window queues and a running backend."""
    tiers.cloud.drain(tiers.cloud.observer_queue_url, settle_seconds=0)
    tiers.cloud.drain(tiers.cloud.cancel_queue_url, settle_seconds=0)
    assert tiers.backend.process is not None, "the session starts the backend"
    if tiers.backend.process.poll() is not None:
        tiers.backend.start()
    return tiers


def test_any_web_instance_serves_any_request_of_a_session(tiers):
    web1, web2 = tiers.web
    browser = logged_in(web1, "bob", DEMO_USERS["bob"])
    added = browser.post(f"{web1.url}/cart/items", {"sku": TEA, "quantity": 2})
    assert added.status == 201, added.body

    seen = browser.get(f"{web2.url}/cart")

    assert seen.status == 200
    assert [(i["sku"], i["quantity"]) for i in seen.body["items"]] == [(TEA, 2)]
    assert added.headers["X-Served-By"] != seen.headers["X-Served-By"]  # two instances, one session
    browser.delete(f"{web2.url}/cart/items/{TEA}")


def test_session_and_cart_survive_the_instance_that_created_them(tiers):
    web1, web2 = tiers.web
    browser = logged_in(web1)
    browser.post(f"{web1.url}/cart/items", {"sku": MUG, "quantity": 3})

    web1.kill()  # SIGKILL: no shutdown hook runs
    assert browser.get(f"{web2.url}/cart").body["items"][0]["quantity"] == 3  # the survivor serves it
    web1.start()  # what Auto Scaling does: a fresh instance in its place

    cart = browser.get(f"{web1.url}/cart")
    assert cart.status == 200, cart.body  # still logged in: the session was never on the instance
    assert [(i["sku"], i["quantity"]) for i in cart.body["items"]] == [(MUG, 3)]
    browser.delete(f"{web1.url}/cart/items/{MUG}")


def test_placing_an_order_publishes_one_order_placed_which_also_starts_the_cancel_window(tiers):
    web1, web2 = tiers.web
    browser = logged_in(web1)
    browser.post(f"{web1.url}/cart/items", {"sku": TEA, "quantity": 2})
    browser.post(f"{web2.url}/cart/items", {"sku": MUG, "quantity": 1})
    correlation_id = f"test-{uuid.uuid4()}"

    placed = browser.post(f"{web2.url}/orders", headers={"X-Correlation-Id": correlation_id})

    assert placed.status == 202, placed.body
    assert placed.body["status"] == "RECEIVED"
    order_id = placed.body["order_id"]
    assert uuid.UUID(order_id).version == 5  # derived from the web tier's Idempotency-Key (and the body)
    assert placed.headers["X-Correlation-Id"] == correlation_id

    published = tiers.cloud.published()
    assert len(published) == 1
    attributes = {k: v["StringValue"] for k, v in published[0]["MessageAttributes"].items()}
    assert attributes == {"event_type": "OrderPlaced", "channel": "web", "correlation_id": correlation_id}
    event = json.loads(published[0]["Body"])  # raw delivery: the body is the event itself
    assert event["order_id"] == order_id and event["customer_id"] == "alice"
    assert sorted((i["sku"], i["quantity"], i["unit_price"]) for i in event["items"]) == [(MUG, 1, 14.0), (TEA, 2, 8.5)]
    assert event["total"] == 31.0 and event["currency"] == "EUR" and event["correlation_id"] == correlation_id

    # The one publish is all the backend writes: the cancel window's queue gets the same OrderPlaced
    # through its subscription (filter: OrderPlaced), not through a second send.
    cancel = tiers.cloud.cancel_window()
    assert [json.loads(m["Body"]) for m in cancel] == [event]

    assert browser.get(f"{web1.url}/cart").body["items"] == []  # the ordered lines left the cart


def test_an_invalid_order_is_rejected_with_400_and_nothing_is_published(tiers):
    bad = {"customer_id": "alice", "items": [{"sku": TEA, "quantity": 101, "unit_price": 8.5}]}

    reply = Browser().post(f"{tiers.backend.url}/orders", bad)

    assert reply.status == 400
    assert "items.0.quantity" in reply.body["error"]
    assert tiers.cloud.published() == [] and tiers.cloud.cancel_window() == []


def test_backend_down_means_a_clear_503_and_the_cart_is_kept(tiers):
    web1, _ = tiers.web
    browser = logged_in(web1)
    browser.post(f"{web1.url}/cart/items", {"sku": TEA, "quantity": 1})
    tiers.backend.kill()
    try:
        reply = browser.post(f"{web1.url}/orders")
        assert reply.status == 503
        assert "unavailable" in reply.body["error"]
        assert [(i["sku"], i["quantity"]) for i in browser.get(f"{web1.url}/cart").body["items"]] == [(TEA, 1)]
        assert tiers.cloud.published() == []
    finally:
        tiers.backend.start()
    retried = browser.post(f"{web1.url}/orders")  # the same cart goes through once the backend is back
    assert retried.status == 202, retried.body
    assert len(tiers.cloud.published()) == 1


def test_a_changed_backend_url_is_followed_after_the_discovery_ttl_without_restart(tiers):
    web1, _ = tiers.web
    browser = logged_in(web1)
    browser.post(f"{web1.url}/cart/items", {"sku": TEA, "quantity": 1})
    second_backend = ServiceProcess(
        "backend",
        (port := free_port()),
        {**tiers.backend.env, "SERVICE_PORT": str(port)},
        tiers.backend.log_path.with_name("backend-2.log"),
    )
    second_backend.start()
    tiers.cloud.put_parameter("backend-url", second_backend.url)
    try:
        tiers.backend.kill()  # only the newly registered backend can answer now
        # Within the TTL the cached (dead) URL may still be used; after it, the new one must be.
        placed = wait_until(
            lambda: (r := browser.post(f"{web1.url}/orders")).status == 202 and r, 10, "order via the new backend-url"
        )
        assert placed.body["status"] == "RECEIVED"
    finally:
        tiers.cloud.put_parameter("backend-url", tiers.backend.url)
        tiers.backend.start()
        # The web instances may hold the second URL for one more TTL: keep it answering until then,
        # or the next test's first order meets a dead backend.
        time.sleep(DISCOVERY_TTL_SECONDS + 0.5)
        second_backend.stop()


def test_an_order_is_read_back_through_the_web_tier_once_recorded(tiers):
    web1, _ = tiers.web
    browser = logged_in(web1)
    browser.post(f"{web1.url}/cart/items", {"sku": MUG, "quantity": 1})
    placed = browser.post(f"{web1.url}/orders")
    assert placed.status == 202, placed.body
    order_id = placed.body["order_id"]

    pending = browser.get(f"{web1.url}/orders/{order_id}")
    assert pending.status == 404 and pending.body["status"] == "PENDING"

    # What the fulfilment consumer writes (docs/design.md, orders table).
    tiers.cloud.aws("dynamodb").put_item(
        TableName=tiers.cloud.orders_table,
        Item={
            "pk": {"S": f"ORDER#{order_id}"},
            "sk": {"S": "META"},
            "status": {"S": "RECEIVED"},
            "customer_id": {"S": "alice"},
            "total": {"N": "14.00"},
            "channel": {"S": "web"},
        },
    )
    recorded = browser.get(f"{web1.url}/orders/{order_id}")
    assert recorded.status == 200
    assert recorded.body == {
        "order_id": order_id,
        "status": "RECEIVED",
        "customer_id": "alice",
        "total": 14,
        "channel": "web",
    }

    someone_else = logged_in(web1, "bob", DEMO_USERS["bob"]).get(f"{web1.url}/orders/{order_id}")
    assert someone_else.status == 404  # another customer's order does not exist for bob
