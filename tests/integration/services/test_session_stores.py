"""The two session stores (services/web/store.py) against real servers: Redis on a redis-server,
DynamoDB on moto in server mode. The same contract for both, then the web tier on the DynamoDB store:
in-process, and as two real `python -m services.web` processes of which one is killed mid-session."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from flask import Flask

from localcloud.identity import DEMO_USERS
from services.common.discovery import Discovery
from services.common.redis_client import RedisProvider
from services.web import cart
from services.web.app import create_app as create_web
from services.web.dynamodb_store import CART_PREFIX, LINE_PREFIX, TTL_ATTRIBUTE, DynamoDbStore
from services.web.sessions import SESSION_COOKIE_NAME, SESSION_KEY_PREFIX
from services.web.store import RedisStore, SessionStore, open_store
from tests.integration.services.conftest import REGION, Browser, Tiers, create_sessions_table, free_port
from tests.integration.services.test_web_app import login, session_cookie, settings

TEA, MUG = "SKU-TEA-001", "SKU-MUG-002"


def dynamodb_client(endpoint: str):
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def sessions_table(aws) -> str:
    return create_sessions_table(aws("dynamodb"), f"sessions-{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=["redis", "dynamodb"])
def store(request, aws, redis_server, moto_endpoint, sessions_table) -> SessionStore:
    if request.param == "redis":
        prefix = f"/lc/store{uuid.uuid4().hex[:8]}/discovery"
        aws("ssm").put_parameter(Name=f"{prefix}/redis-endpoint", Value=redis_server.endpoint, Type="String")
        return RedisStore(RedisProvider(Discovery(prefix, ssm_client=aws("ssm")), tls=False))
    return DynamoDbStore(sessions_table, client=dynamodb_client(moto_endpoint))


def customer() -> str:
    return f"customer-{uuid.uuid4().hex[:8]}"


# --- the contract, for both stores ---------------------------------------------------------------


def test_cart_lines_accumulate_up_to_the_limit_and_removal_deletes_the_line(store):
    who = customer()
    assert store.cart_lines(who) == {}
    assert store.cart_add(who, TEA, 2) == 2
    assert store.cart_add(who, TEA, 3) == 5
    assert store.cart_add(who, MUG, 1) == 1
    with pytest.raises(cart.CartLimitExceeded):
        store.cart_add(who, TEA, cart.MAX_QUANTITY - 4)
    assert store.cart_lines(who) == {TEA: 5, MUG: 1}  # the refused add changed nothing
    assert store.cart_remove(who, TEA) is True
    assert store.cart_remove(who, TEA) is False
    assert store.cart_lines(who) == {MUG: 1}


def test_concurrent_adds_to_one_cart_lose_no_update(store):
    who, threads_per_sku = customer(), 8

    def add(sku: str) -> None:
        store.cart_add(who, sku, 1)

    threads = [threading.Thread(target=add, args=(sku,)) for sku in (TEA, MUG) for _ in range(threads_per_sku)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.cart_lines(who) == {TEA: threads_per_sku, MUG: threads_per_sku}


def test_the_checkout_token_is_created_once_and_completing_renews_it_once(store):
    who, session_id = customer(), uuid.uuid4().hex
    store.cart_add(who, TEA, 3)
    store.cart_add(who, MUG, 1)

    token = store.checkout_token(session_id)
    assert store.checkout_token(session_id) == token  # a double submit reads the same token

    assert store.complete_checkout(session_id, token, who, {TEA: 2, MUG: 1}) is True
    assert store.cart_lines(who) == {TEA: 1}  # subtracted, not cleared
    assert store.complete_checkout(session_id, token, who, {TEA: 1}) is False  # the double submit: nothing changes
    assert store.cart_lines(who) == {TEA: 1}
    assert store.checkout_token(session_id) != token  # the next checkout has a fresh token


def test_concurrent_token_reads_of_a_new_session_agree(store):
    session_id, tokens = uuid.uuid4().hex, []
    threads = [threading.Thread(target=lambda: tokens.append(store.checkout_token(session_id))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1


def test_lines_added_while_the_order_was_in_flight_stay_in_the_cart(store):
    who, session_id = customer(), uuid.uuid4().hex
    store.cart_add(who, TEA, 2)
    token = store.checkout_token(session_id)
    store.cart_add(who, TEA, 1)  # added after the order's cart was read
    store.cart_add(who, MUG, 4)

    assert store.complete_checkout(session_id, token, who, {TEA: 2}) is True
    assert store.cart_lines(who) == {TEA: 1, MUG: 4}


def test_the_store_reports_itself_reachable(store):
    assert store.reachable() is True


# --- DynamoDB specifics --------------------------------------------------------------------------


def test_dynamodb_items_carry_the_ttl_and_an_expired_cart_counts_as_empty(aws, moto_endpoint, sessions_table):
    store, ddb, who = DynamoDbStore(sessions_table, client=dynamodb_client(moto_endpoint)), aws("dynamodb"), customer()
    store.cart_add(who, TEA, 2)
    item = ddb.get_item(TableName=sessions_table, Key={"id": {"S": CART_PREFIX + who}})["Item"]
    assert 0 < int(item[TTL_ATTRIBUTE]["N"]) - time.time() <= cart.CART_TTL_SECONDS
    assert item[LINE_PREFIX + TEA] == {"N": "2"}

    # Past its TTL but not deleted yet (DynamoDB deletes expired items within days): gone for the store.
    ddb.update_item(
        TableName=sessions_table,
        Key={"id": {"S": CART_PREFIX + who}},
        UpdateExpression="SET #ttl = :past",
        ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert store.cart_lines(who) == {}
    assert store.cart_remove(who, TEA) is False
    assert store.cart_add(who, TEA, 1) == 1  # a fresh cart, not 3


def test_an_unreachable_dynamodb_is_reported_not_raised(sessions_table):
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    assert DynamoDbStore(sessions_table, client=client).reachable() is False


# --- the web tier on the DynamoDB store, in-process ----------------------------------------------


@pytest.fixture
def dynamodb_prefix(aws, sessions_table, user_pool) -> str:
    path = f"/lc/webddb{uuid.uuid4().hex[:8]}/discovery"
    for name, value in {"session-store": "dynamodb", "sessions-table": sessions_table}.items():
        aws("ssm").put_parameter(Name=f"{path}/{name}", Value=value, Type="String")
    user_pool.register(aws("ssm"), path)
    return path


@pytest.fixture
def ddb_app(aws, dynamodb_prefix, monkeypatch, moto_endpoint) -> Iterator[Flask]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    yield create_web(settings("web", dynamodb_prefix), discovery=Discovery(dynamodb_prefix, ssm_client=aws("ssm")))


def test_the_discovery_parameter_chooses_the_store(aws, dynamodb_prefix, redis_server, monkeypatch, moto_endpoint):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    assert open_store(Discovery(dynamodb_prefix, ssm_client=aws("ssm")), redis_tls=False).name == "dynamodb"
    redis_prefix = f"/lc/webredis{uuid.uuid4().hex[:8]}/discovery"
    aws("ssm").put_parameter(Name=f"{redis_prefix}/redis-endpoint", Value=redis_server.endpoint, Type="String")
    assert open_store(Discovery(redis_prefix, ssm_client=aws("ssm")), redis_tls=False).name == "redis"  # absent
    aws("ssm").put_parameter(Name=f"{redis_prefix}/session-store", Value="memcached", Type="String")
    with pytest.raises(ValueError, match="session-store must be one of redis, dynamodb"):
        open_store(Discovery(redis_prefix, ssm_client=aws("ssm")), redis_tls=False)


def test_on_dynamodb_the_cookie_is_an_opaque_id_and_the_session_an_item_with_a_ttl(aws, ddb_app, sessions_table):
    web = ddb_app.test_client()
    cookie = session_cookie(login(web))
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert len(cookie["value"]) >= 40 and "alice" not in cookie["value"]
    item = aws("dynamodb").get_item(TableName=sessions_table, Key={"id": {"S": SESSION_KEY_PREFIX + cookie["value"]}})
    assert b"alice" in item["Item"]["val"]["B"]
    assert 0 < int(item["Item"][TTL_ATTRIBUTE]["N"]) - time.time() <= 8 * 3600
    assert web.get("/health").json == {
        "status": "ok",
        "session_store": "dynamodb",
        "store_reachable": True,
        "service": "web",
    }

    assert web.post("/logout").status_code == 200
    gone = aws("dynamodb").get_item(TableName=sessions_table, Key={"id": {"S": SESSION_KEY_PREFIX + cookie["value"]}})
    assert "Item" not in gone
    assert web.get("/cart").status_code == 401


def test_on_dynamodb_an_expired_session_is_logged_out(aws, ddb_app, sessions_table):
    web = ddb_app.test_client()
    sid = session_cookie(login(web))["value"]
    aws("dynamodb").update_item(
        TableName=sessions_table,
        Key={"id": {"S": SESSION_KEY_PREFIX + sid}},
        UpdateExpression="SET #ttl = :past",
        ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    assert web.get("/cart").status_code == 401


def test_a_dynamodb_outage_is_a_clear_503_and_health_stays_200(aws, dynamodb_prefix, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    app = create_web(settings("web", dynamodb_prefix), discovery=Discovery(dynamodb_prefix, ssm_client=aws("ssm")))
    web = app.test_client()
    web.set_cookie(SESSION_COOKIE_NAME, "x" * 43)  # a returning browser: the session must be read first

    response = login(web)
    assert response.status_code == 503
    assert response.json == {"error": "session store unavailable, try again shortly"}
    health = app.test_client().get("/health")  # the ALB's health check carries no session cookie
    assert health.status_code == 200 and (health.json or {}).get("store_reachable") is False


# --- two web processes on the DynamoDB store, one killed mid-session ------------------------------


def test_on_dynamodb_session_and_cart_survive_the_instance_that_created_them(dynamodb_web: Tiers):
    web1, web2 = dynamodb_web.web
    browser = Browser()
    assert browser.post(f"{web1.url}/login", {"username": "alice", "password": DEMO_USERS["alice"]}).status == 200
    added = browser.post(f"{web1.url}/cart/items", {"sku": MUG, "quantity": 3})
    assert added.status == 201, added.body

    web1.kill()  # SIGKILL: no shutdown hook runs
    seen = browser.get(f"{web2.url}/cart")
    assert seen.status == 200, seen.body
    assert [(i["sku"], i["quantity"]) for i in seen.body["items"]] == [(MUG, 3)]
    assert seen.headers["X-Served-By"] != added.headers["X-Served-By"]
    web1.start()  # what Auto Scaling does: a fresh instance in its place

    cart_view = browser.get(f"{web1.url}/cart")
    assert cart_view.status == 200, cart_view.body  # still logged in: the session was never on the instance
    assert [(i["sku"], i["quantity"]) for i in cart_view.body["items"]] == [(MUG, 3)]
    assert browser.get(f"{web2.url}/health").body["session_store"] == "dynamodb"
    browser.delete(f"{web1.url}/cart/items/{MUG}")


def test_on_dynamodb_an_order_empties_the_cart_and_a_double_submit_is_the_same_order(dynamodb_web: Tiers):
    web1, web2 = dynamodb_web.web
    dynamodb_web.cloud.drain(dynamodb_web.cloud.observer_queue_url, settle_seconds=0)
    browser = Browser()
    assert browser.post(f"{web1.url}/login", {"username": "bob", "password": DEMO_USERS["bob"]}).status == 200
    assert browser.post(f"{web1.url}/cart/items", {"sku": TEA, "quantity": 2}).status == 201

    placed = browser.post(f"{web2.url}/orders")
    assert placed.status == 202, placed.body
    again = browser.post(f"{web1.url}/orders")  # the cart is empty now: nothing to order twice

    assert again.status == 400 and again.body == {"error": "the cart is empty"}
    assert browser.get(f"{web1.url}/cart").body["items"] == []
    published = dynamodb_web.cloud.published()
    assert [m for m in published if placed.body["order_id"] in m["Body"]], "the order reached the topic"
    assert len(published) == 1
