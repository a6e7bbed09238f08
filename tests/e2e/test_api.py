"""The API front door: validation at the gateway, idempotent order creation (docs/design.md flow 2)."""

from __future__ import annotations

import time

import pytest

from localcloud.storefront import HttpClient, idempotency_key, wait_for
from tests.e2e.harness import FANOUT, Harness

pytestmark = pytest.mark.e2e

VALID = {"customer_id": "e2e-api", "currency": "EUR", "items": [{"sku": "SKU-API", "quantity": 2, "unit_price": 9.5}]}
INVALID_BODIES = {
    "no items": {"customer_id": "e2e-api", "items": []},
    "quantity 0": {"customer_id": "e2e-api", "items": [{"sku": "SKU-API", "quantity": 0, "unit_price": 1}]},
    "no customer": {"items": VALID["items"]},
    "price is text": {"customer_id": "e2e-api", "items": [{"sku": "SKU-API", "quantity": 1, "unit_price": "free"}]},
    "not JSON": "{not json",
}


def test_bad_input_is_answered_400_with_a_message_and_nothing_is_published(store: Harness):
    watched = (*FANOUT, "order_finaliser")
    with store.consumers_offline(*watched):  # anything published or sent would wait in these queues
        # The cancel-window queue may still hold retries of earlier orders: it must not grow.
        cancel_window_before = store.depth(store.queue_url("order_finaliser"))
        answers = {
            name: store.api.post("/orders", body, headers={"Idempotency-Key": idempotency_key()})
            for name, body in INVALID_BODIES.items()
        }
        answers["no Idempotency-Key"] = store.api.post("/orders", VALID)
        assert {name: a.status for name, a in answers.items()} == {name: 400 for name in answers}
        assert all(isinstance(a.body, dict) and a.body.get("message") for a in answers.values()), answers
        time.sleep(3)  # longer than the cancel-window delay (2 s) and a fan-out delivery
        assert {c: store.depth(store.queue_url(c)) for c in FANOUT} == {c: 0 for c in FANOUT}
        assert store.depth(store.queue_url("order_finaliser")) <= cancel_window_before


def test_a_repeated_idempotency_key_creates_one_order(store: Harness):
    key = idempotency_key()
    with store.consumers_offline(*FANOUT):
        first = store.api.post("/orders", VALID, headers={"Idempotency-Key": key})
        second = store.api.post("/orders", VALID, headers={"Idempotency-Key": key})
        assert (first.status, second.status) == (202, 202)
        assert second.body["order_id"] == first.body["order_id"]
        time.sleep(1)
        assert {c: store.depth(store.queue_url(c)) for c in FANOUT} == {c: 1 for c in FANOUT}  # one event
    order = wait_for(lambda: store.order(first.body["order_id"]), 60, "the order record")
    assert order["customer_id"] == VALID["customer_id"]


def test_staff_routes_take_a_sigv4_signature_and_refuse_the_api_key(cloud: Harness):
    """Seed 002: "leverage signature version 4 to authorize access to APIs". The back office signs as its
    role (botocore SigV4Auth); the partners' API key opens no staff route, and no route is anonymous.
    MiniStack (without AUTH=true) checks that a signature is present, not that it is valid."""
    signed = cloud.back_office.get("/approvals")
    assert signed.status == 200 and isinstance(signed.body["approvals"], list), signed.body
    assert "authorization" in {h.lower() for h in cloud.back_office.sign("GET", cloud.api.base_url, b"", {})}
    decision = {"decision": "approve", "reason": "e2e"}
    unsigned = {
        "GET with the API key": cloud.api.get("/approvals"),
        "POST with the API key": cloud.api.post("/approvals/o-unsigned", decision),
        "GET anonymous": HttpClient(cloud.api.base_url).get("/approvals"),
        "POST anonymous": HttpClient(cloud.api.base_url).post("/approvals/o-unsigned", decision),
    }
    assert {what: a.status for what, a in unsigned.items()} == {what: 403 for what in unsigned}
    assert {a.body["message"] for a in unsigned.values()} == {"Missing Authentication Token"}
    # A signed decision reaches the handler (an unknown order: 404), so the signature is what opens it.
    assert cloud.back_office.post("/approvals/o-unsigned", decision).status == 404
    # The back office's signature is no API key: the partners' routes stay closed to it.
    placed = cloud.back_office.post("/orders", VALID, headers={"Idempotency-Key": idempotency_key()})
    assert placed.status == 403, placed.body
