"""Losing a backend instance mid-order costs the customer nothing and never places an order twice: the
backend honours `Idempotency-Key` (Powertools idempotency on moto's DynamoDB), and the web tier sends
one and retries once through a stand-in for the internal ALB that fails the way an ALB does when its
target dies. Real redis-server, moto server, the backend as a process (conftest.py)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from localcloud.identity import DEMO_USERS
from services.common.discovery import Discovery
from services.common.settings import ServiceSettings
from services.web import checkout
from services.web.app import create_app as create_web
from tests.integration.services.conftest import Browser, RedisServer, Tiers

TEA, MUG = "SKU-TEA-001", "SKU-MUG-002"
ORDER = {"customer_id": "alice", "items": [{"sku": TEA, "quantity": 2, "unit_price": 8.5}]}


@pytest.fixture
def tiers(tiers: Tiers) -> Tiers:
    """Empty observer queue and a running backend, whatever the test before did."""
    tiers.cloud.drain(tiers.cloud.observer_queue_url, settle_seconds=0)
    assert tiers.backend.process is not None, "the session starts the backend"
    if tiers.backend.process.poll() is not None:
        tiers.backend.start()
    return tiers


def published_order_ids(tiers: Tiers) -> list[str]:
    return [json.loads(m["Body"])["order_id"] for m in tiers.cloud.published()]


def post_order(tiers: Tiers, body: dict, key: str | None) -> Any:
    return Browser().post(f"{tiers.backend.url}/orders", body, headers={"Idempotency-Key": key} if key else None)


# --- the backend honours the key --------------------------------------------------------------------


def test_a_repeated_keyed_post_answers_the_first_order_and_publishes_once(tiers):
    key = f"test-{uuid.uuid4()}"

    first, again = post_order(tiers, ORDER, key), post_order(tiers, ORDER, key)

    assert (first.status, again.status) == (202, 202), (first.body, again.body)
    assert again.body == first.body == {"order_id": first.body["order_id"], "status": "RECEIVED"}
    assert published_order_ids(tiers) == [first.body["order_id"]]


def test_the_same_key_with_another_order_is_a_422_and_publishes_nothing(tiers):
    key = f"test-{uuid.uuid4()}"
    placed = post_order(tiers, ORDER, key)
    other = {**ORDER, "items": [{"sku": MUG, "quantity": 1, "unit_price": 6.0}]}

    refused = post_order(tiers, other, key)

    assert refused.status == 422
    assert "Idempotency-Key was already used with a different order" in refused.body["error"]
    assert published_order_ids(tiers) == [placed.body["order_id"]]


def test_concurrent_requests_with_one_key_publish_one_order(tiers):
    key, replies = f"test-{uuid.uuid4()}", []
    start = threading.Barrier(6)

    def submit() -> None:
        start.wait()
        replies.append(post_order(tiers, ORDER, key))

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    published = published_order_ids(tiers)
    assert len(published) == 1
    # Each either got the order (the first, or its stored answer) or was told it is in progress.
    assert {r.status for r in replies} <= {202, 409}, [r.body for r in replies]
    assert {r.body["order_id"] for r in replies if r.status == 202} <= set(published)
    assert all("still being placed" in r.body["error"] for r in replies if r.status == 409)


def test_an_invalid_key_is_a_400_and_publishes_nothing(tiers):
    too_long = post_order(tiers, ORDER, "k" * 129)
    assert too_long.status == 400 and "Idempotency-Key" in too_long.body["error"]
    empty = Browser().post(f"{tiers.backend.url}/orders", ORDER, headers={"Idempotency-Key": ""})
    assert empty.status == 400
    assert published_order_ids(tiers) == []


def test_without_a_key_every_request_is_a_new_order(tiers):
    """The backend stays usable without a key (its docstring says why); such requests are not deduplicated."""
    first, second = post_order(tiers, ORDER, None), post_order(tiers, ORDER, None)

    assert first.status == second.status == 202
    assert first.body["order_id"] != second.body["order_id"]
    assert sorted(published_order_ids(tiers)) == sorted([first.body["order_id"], second.body["order_id"]])


# --- the web tier retries through a failing ALB ------------------------------------------------------

# What the stand-in ALB does with each POST, in order (then it forwards):
#   "502"         the target was gone: the ALB answers 502 and the backend never sees the request;
#   "place+502"   the target placed the order and died before answering: forwarded, answer lost, 502.
Action = str


@dataclass
class FlakyAlb:
    backend_url: str
    actions: list[Action] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        self.keys.append(handler.headers.get("Idempotency-Key"))
        action = self.actions.pop(0) if self.actions else "forward"
        status, answer = 502, b"<html>502 Bad Gateway</html>"  # an ALB's error page is HTML
        if action != "502":
            forwarded = {k: v for k, v in handler.headers.items() if k.lower() not in {"host", "content-length"}}
            request = urllib.request.Request(
                self.backend_url + handler.path, data=body, method="POST", headers=forwarded
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    backend_status, backend_answer = response.status, response.read()
            except urllib.error.HTTPError as error:
                backend_status, backend_answer = error.code, error.read()
            if action == "forward":
                status, answer = backend_status, backend_answer
        handler.send_response(status)
        handler.send_header("Content-Type", "text/html" if status == 502 else "application/json")
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)


@pytest.fixture
def alb(tiers) -> Iterator[FlakyAlb]:
    flaky = FlakyAlb(tiers.backend.url)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            flaky.handle(self)

        def log_message(self, *args) -> None:
            pass

    flaky.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=flaky.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield flaky
    flaky.server.shutdown()
    flaky.server.server_close()


@pytest.fixture
def web(monkeypatch, aws, moto_endpoint, redis_server, alb, user_pool):
    """A web app (in-process, real BackendClient) whose discovered backend-url is the flaky ALB."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    prefix = f"/lc/retry{uuid.uuid4().hex[:8]}/discovery"
    ssm = aws("ssm")
    ssm.put_parameter(Name=f"{prefix}/redis-endpoint", Value=redis_server.endpoint, Type="String")
    ssm.put_parameter(Name=f"{prefix}/backend-url", Value=alb.url, Type="String")
    user_pool.register(ssm, prefix)
    settings = ServiceSettings(
        service="web",
        host="127.0.0.1",
        port=8080,
        discovery_prefix=prefix,
        discovery_ttl_seconds=30,
        redis_tls=False,
        alb_gateway=None,
        instance_id="test-web",
        cognito_jwks_endpoint=moto_endpoint,
    )
    return create_web(settings, discovery=Discovery(prefix, ssm_client=ssm)).test_client()


def fill_cart(web, lines: dict[str, int], user: str = "alice", password: str = DEMO_USERS["alice"]) -> None:
    assert web.post("/login", json={"username": user, "password": password}).status_code == 200
    for item in web.get("/cart").json["items"]:  # carts are per customer, shared with other tests
        web.delete(f"/cart/items/{item['sku']}")
    for sku, quantity in lines.items():
        assert web.post("/cart/items", json={"sku": sku, "quantity": quantity}).status_code == 201


def test_a_502_from_the_alb_then_a_good_retry_places_one_order(tiers, alb, web):
    fill_cart(web, {TEA: 2})
    alb.actions = ["502"]

    placed = web.post("/orders")

    assert placed.status_code == 202, placed.json
    assert published_order_ids(tiers) == [placed.json["order_id"]]
    assert len(alb.keys) == 2 and alb.keys[0] == alb.keys[1] is not None  # one retry, the same key
    assert web.get("/cart").json["items"] == []


def test_an_instance_that_placed_the_order_and_died_before_answering_costs_nothing(tiers, alb, web):
    fill_cart(web, {TEA: 1, MUG: 1})
    alb.actions = ["place+502"]

    placed = web.post("/orders")

    assert placed.status_code == 202, placed.json
    # The retry got the dead instance's order back: one order, and the customer holds its id.
    assert published_order_ids(tiers) == [placed.json["order_id"]]
    assert web.get("/cart").json["items"] == []


def test_the_key_is_stable_across_retries_and_resubmits_and_new_for_the_next_order(tiers, alb, web):
    fill_cart(web, {TEA: 1})
    alb.actions = ["502", "502"]  # both attempts fail: the customer sees a 503 and still has the cart
    assert web.post("/orders").status_code == 503
    assert [(i["sku"], i["quantity"]) for i in web.get("/cart").json["items"]] == [(TEA, 1)]

    resubmitted = web.post("/orders")  # the customer's second click: same checkout, same key

    assert resubmitted.status_code == 202, resubmitted.json
    assert len(set(alb.keys)) == 1 and len(alb.keys) == 3
    assert published_order_ids(tiers) == [resubmitted.json["order_id"]]

    web.post("/cart/items", json={"sku": TEA, "quantity": 1})  # the very same cart once more: a new order
    again = web.post("/orders")
    assert again.status_code == 202 and again.json["order_id"] != resubmitted.json["order_id"]
    assert alb.keys[-1] != alb.keys[0]
    assert published_order_ids(tiers) == [again.json["order_id"]]


def test_another_user_with_the_same_cart_gets_another_key(tiers, alb, web):
    fill_cart(web, {TEA: 1})
    assert web.post("/orders").status_code == 202
    fill_cart(web, {TEA: 1}, "bob", DEMO_USERS["bob"])  # the same browser, another login
    assert web.post("/orders").status_code == 202

    assert len(alb.keys) == 2 and alb.keys[0] != alb.keys[1]
    assert len(published_order_ids(tiers)) == 2


# --- the checkout token ------------------------------------------------------------------------------


def test_the_token_is_shared_until_an_order_completes_it_and_completes_once(redis_server: RedisServer):
    client, session_id, customer = redis_server.client(), uuid.uuid4().hex, f"c-{uuid.uuid4().hex[:8]}"
    client.hset(f"cart:{customer}", mapping={TEA: 3, MUG: 1})
    token = checkout.current_token(client, session_id)
    assert checkout.current_token(client, session_id) == token  # a double submit reads the same
    assert 0 < client.ttl(f"checkout:{session_id}") <= checkout.TOKEN_TTL_SECONDS

    assert checkout.complete(client, session_id, token, customer, {TEA: 2, MUG: 1}) is True
    assert client.hgetall(f"cart:{customer}") == {TEA.encode(): b"1"}  # subtracted, not cleared
    # The double submit's request completes too late: the lines are not taken out twice.
    assert checkout.complete(client, session_id, token, customer, {TEA: 1}) is False
    assert client.hgetall(f"cart:{customer}") == {TEA.encode(): b"1"}
    assert checkout.current_token(client, session_id) != token  # the next checkout has a fresh token
