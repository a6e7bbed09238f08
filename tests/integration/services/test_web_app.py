"""The web and backend apps in-process (Flask test client) on a real redis-server and moto's SSM/SNS/SQS:
the session interface, login, the cart rules, and how the web tier talks to the backend."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from contracts.activity import ActivityEvent
from contracts.identity import IdTokenVerifier
from localcloud.identity import DEMO_USERS
from services.backend.app import create_app as create_backend
from services.common.discovery import Discovery
from services.common.settings import ServiceSettings
from services.web.app import create_app as create_web
from services.web.sessions import SESSION_COOKIE_NAME, SESSION_KEY_PREFIX
from tests.integration.services.conftest import free_port

TEA = "SKU-TEA-001"


def settings(service: str, prefix: str, **changes) -> ServiceSettings:
    values = dict(
        service=service,
        host="127.0.0.1",
        port=8080,
        discovery_prefix=prefix,
        discovery_ttl_seconds=30,
        redis_tls=False,
        alb_gateway=None,
        instance_id="test-instance",
        # the moto server (the `aws_endpoint` fixture) serves the user pool's JWKS
        cognito_jwks_endpoint=os.environ.get("AWS_ENDPOINT_URL"),
    )
    return ServiceSettings(**{**values, **changes})


@pytest.fixture(autouse=True)
def aws_endpoint(monkeypatch, moto_endpoint) -> None:
    """The apps' own boto3 clients (SNS, SQS, Secrets Manager) must reach moto, never AWS."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)


@pytest.fixture
def prefix(aws, redis_server, user_pool) -> str:
    """A fresh discovery namespace per test, with the shared redis-server and the user pool registered."""
    path = f"/lc/web{uuid.uuid4().hex[:8]}/discovery"
    aws("ssm").put_parameter(Name=f"{path}/redis-endpoint", Value=redis_server.endpoint, Type="String")
    user_pool.register(aws("ssm"), path)
    return path


def web_client(aws, prefix: str, **changes):
    app = create_web(settings("web", prefix, **changes), discovery=Discovery(prefix, ssm_client=aws("ssm")))
    return app.test_client()


@pytest.fixture
def web(aws, prefix):
    return web_client(aws, prefix)


def login(client, username="alice", password=DEMO_USERS["alice"], **kw):
    return client.post("/login", json={"username": username, "password": password}, **kw)


def session_cookie(response) -> dict[str, str]:
    """The Set-Cookie attributes of the session cookie, lower-cased names."""
    header = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(SESSION_COOKIE_NAME + "="))
    parts = [p.strip() for p in header.split(";")]
    attributes = {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else True) for p in parts[1:]}
    return {"value": parts[0].split("=", 1)[1], **attributes}


# --- sessions ------------------------------------------------------------------------------------


def test_the_session_cookie_is_an_opaque_httponly_samesite_id_and_the_data_is_in_redis(web, redis_server):
    response = login(web)
    assert response.status_code == 200 and response.json == {"user": "alice"}

    cookie = session_cookie(response)
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert "secure" not in cookie  # plain HTTP here; see the HTTPS test below
    assert len(cookie["value"]) >= 40 and "alice" not in cookie["value"]  # 32 random bytes, nothing else
    stored = redis_server.client().get(SESSION_KEY_PREFIX + cookie["value"])
    assert stored is not None and b"alice" in stored
    assert 0 < redis_server.client().ttl(SESSION_KEY_PREFIX + cookie["value"]) <= 8 * 3600


def test_the_cookie_is_secure_when_the_alb_forwarded_https(web):
    response = login(web, headers={"X-Forwarded-Proto": "https"})
    assert session_cookie(response)["secure"] is True


def test_login_issues_a_new_session_id_and_discards_the_old_one(web, redis_server):
    first = session_cookie(login(web))["value"]
    second = session_cookie(login(web, "bob", DEMO_USERS["bob"]))["value"]  # same browser, same cookie sent

    assert second != first  # a planted (fixated) id is worthless after login
    assert redis_server.client().exists(SESSION_KEY_PREFIX + first) == 0
    assert web.get("/cart").json["customer_id"] == "bob"


@pytest.mark.parametrize(("username", "password"), [("alice", "wrong"), ("mallory", DEMO_USERS["alice"]), (None, None)])
def test_wrong_credentials_get_401_and_no_session(web, username, password):
    response = login(web, username, password)
    assert response.status_code == 401
    assert not response.headers.getlist("Set-Cookie")
    assert web.get("/cart").status_code == 401


def test_sign_in_goes_to_cognito_and_the_session_keeps_the_verified_token_but_no_password(web, redis_server, user_pool):
    cookie = session_cookie(login(web))
    stored = redis_server.client().get(SESSION_KEY_PREFIX + cookie["value"])
    assert stored is not None and DEMO_USERS["alice"].encode() not in stored

    answer = web.get("/session")
    assert answer.status_code == 200 and answer.json["customer"] == "alice"
    identity = IdTokenVerifier(
        user_pool_id=user_pool.pool_id, client_id=user_pool.client_id, jwks_endpoint=os.environ["AWS_ENDPOINT_URL"]
    ).verify(answer.json["token"])  # signed by the pool for this app client, unexpired
    assert identity.customer == "alice"
    assert answer.json["websocketUrl"] is None  # no live-status API registered in this namespace


def test_a_wrong_password_leaves_nothing_about_the_user_in_the_logs(web, caplog):
    caplog.set_level(logging.INFO)  # what the service logs at (botocore's DEBUG lines carry request bodies)
    response = login(web, "alice", "Not-the-password-1!")
    assert response.status_code == 401 and response.json == {"error": "unknown user or wrong password"}
    assert not response.headers.getlist("Set-Cookie")
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "sign-in refused" in logged
    assert "alice" not in logged and "Not-the-password-1!" not in logged


def test_an_expired_token_ends_the_session_and_asks_to_sign_in_again(web, redis_server):
    sid = session_cookie(login(web))["value"]
    with web.session_transaction() as stored:
        stored["token_expires_at"] = int(time.time()) - 1  # the ID token has just expired
    for path in ("/session", "/cart"):
        answer = web.get(path)
        assert answer.status_code == 401
        assert (
            answer.json == {"error": "login required"}
            if path == "/cart"
            else {"error": "session expired, sign in again"}
        )
    assert redis_server.client().exists(SESSION_KEY_PREFIX + sid) == 0
    assert login(web).status_code == 200 and web.get("/session").status_code == 200  # signing in again works


def test_the_session_names_the_live_status_socket(aws, prefix, monkeypatch):
    ssm = aws("ssm")
    ssm.put_parameter(
        Name=f"{prefix}/websocket-url", Value="wss://abc123.execute-api.us-east-1.amazonaws.com/live", Type="String"
    )
    ssm.put_parameter(Name=f"{prefix}/websocket-api-id", Value="abc123", Type="String")
    ssm.put_parameter(Name=f"{prefix}/websocket-stage", Value="live", Type="String")
    on_aws = web_client(aws, prefix)
    login(on_aws)
    assert on_aws.get("/session").json["websocketUrl"] == "wss://abc123.execute-api.us-east-1.amazonaws.com/live"
    local = web_client(aws, prefix, execute_api_endpoint="http://127.0.0.1:4566")
    login(local)
    assert local.get("/session").json["websocketUrl"] == "ws://127.0.0.1:4566/_aws/execute-api/abc123/live"


def test_logout_deletes_the_session_from_redis(web, redis_server):
    sid = session_cookie(login(web))["value"]
    response = web.post("/logout")

    assert response.status_code == 200
    assert redis_server.client().exists(SESSION_KEY_PREFIX + sid) == 0
    assert web.get("/cart").status_code == 401


def test_health_reports_redis_reachability_without_failing_the_instance(aws, prefix, web):
    assert web.get("/health").json == {
        "status": "ok",
        "session_store": "redis",
        "store_reachable": True,
        "service": "web",
    }
    assert web.get("/health").headers["X-Served-By"] == "test-instance:8080"

    aws("ssm").put_parameter(
        Name=f"{prefix}/redis-endpoint", Value=f"127.0.0.1:{free_port()}", Type="String", Overwrite=True
    )
    unreachable = web_client(aws, prefix).get("/health")
    assert unreachable.status_code == 200
    assert unreachable.json == {
        "status": "degraded",
        "session_store": "redis",
        "store_reachable": False,
        "service": "web",
    }


def test_a_redis_outage_is_a_clear_503_not_a_500(aws, prefix):
    aws("ssm").put_parameter(
        Name=f"{prefix}/redis-endpoint", Value=f"127.0.0.1:{free_port()}", Type="String", Overwrite=True
    )
    web = web_client(aws, prefix)
    web.set_cookie(SESSION_COOKIE_NAME, "x" * 43)  # a returning browser: the session must be read first

    response = login(web)

    assert response.status_code == 503
    assert response.json == {"error": "session store unavailable, try again shortly"}


# --- cart ----------------------------------------------------------------------------------------


def test_the_cart_needs_a_login_and_json(web):
    assert web.post("/cart/items", json={"sku": TEA, "quantity": 1}).status_code == 401
    login(web)
    assert (
        web.post("/cart/items", data="sku=SKU-TEA-001", content_type="application/x-www-form-urlencoded").status_code
        == 415
    )
    assert web.post("/cart/items", json=[TEA]).status_code == 400


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"sku": "SKU-NOPE-999", "quantity": 1}, 404),
        ({"sku": TEA, "quantity": 0}, 400),
        ({"sku": TEA, "quantity": 101}, 400),
        ({"sku": TEA, "quantity": "2"}, 400),
        ({"sku": TEA, "quantity": True}, 400),
    ],
)
def test_bad_cart_lines_are_refused(web, body, status):
    login(web, "bob", DEMO_USERS["bob"])
    assert web.post("/cart/items", json=body).status_code == status


def test_adding_accumulates_up_to_the_line_limit_and_removing_deletes_the_line(web):
    login(web, "bob", DEMO_USERS["bob"])
    web.delete(f"/cart/items/{TEA}")  # bob's cart is shared with other tests: start clean
    web.post("/cart/items", json={"sku": TEA, "quantity": 60})
    added = web.post("/cart/items", json={"sku": TEA, "quantity": 40})
    assert added.status_code == 201
    assert added.json["items"] == [
        {"sku": TEA, "name": "Sencha green tea, 100 g", "quantity": 100, "unit_price": 8.5, "line_total": 850.0}
    ]
    assert web.post("/cart/items", json={"sku": TEA, "quantity": 1}).status_code == 400
    assert web.get("/cart").json["items"][0]["quantity"] == 100  # the refused add changed nothing

    assert web.delete(f"/cart/items/{TEA}").json["items"] == []
    assert web.delete(f"/cart/items/{TEA}").status_code == 404


def test_views_searches_and_cart_adds_each_send_one_activity_event(aws, prefix):
    """Storefront activity (docs/design.md flow 7): one contract event per action on the discovered queue;
    nothing for a refused request or without a login."""
    sqs = aws("sqs")
    queue = sqs.create_queue(QueueName=f"activity-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    aws("ssm").put_parameter(Name=f"{prefix}/activity-queue-url", Value=queue, Type="String")
    web = web_client(aws, prefix)  # discovers the queue (the app reads discovery when it starts)
    assert web.get(f"/products/{TEA}").status_code == 401  # no login, no event
    login(web)
    product = web.get(f"/products/{TEA}")
    assert product.status_code == 200 and product.get_json()["sku"] == TEA
    found = web.get("/search?q=Stoneware  MUG!")
    assert found.get_json() == {
        "query": "stoneware mug",
        "products": [{"sku": "SKU-MUG-002", "name": "Stoneware mug", "unit_price": 14.0, "currency": "EUR"}],
    }
    assert web.post("/cart/items", json={"sku": TEA, "quantity": 2}).status_code == 201
    assert web.get("/products/SKU-NOPE-999").status_code == 404
    assert web.get("/search?q=%21%21").status_code == 400
    assert web.post("/cart/items", json={"sku": TEA, "quantity": 0}).status_code == 400
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    events = [ActivityEvent.model_validate_json(m["Body"]) for m in messages]
    assert sorted((e.kind, e.subject, e.customer_id) for e in events) == [
        ("CartItemAdded", f"PRODUCT#{TEA}", "alice"),
        ("ProductViewed", f"PRODUCT#{TEA}", "alice"),
        ("SearchPerformed", "SEARCH#stoneware mug", "alice"),
    ]


def test_an_empty_cart_is_not_an_order(web):
    login(web, "bob", DEMO_USERS["bob"])
    web.delete(f"/cart/items/{TEA}")
    response = web.post("/orders")
    assert response.status_code == 400 and "empty" in response.json["error"]


# --- web -> backend ------------------------------------------------------------------------------


class RecordingAlb(BaseHTTPRequestHandler):
    """Stands in for the local ALB gateway: records what the web tier sent, answers like the backend."""

    seen: list[dict] = []

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        RecordingAlb.seen.append(
            {
                "host": self.headers["Host"],
                "path": self.path,
                "correlation_id": self.headers["X-Correlation-Id"],
                "body": json.loads(self.rfile.read(length)),
            }
        )
        body = json.dumps({"order_id": str(uuid.uuid4()), "status": "RECEIVED"}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_with_alb_gateway_the_web_tier_connects_to_the_gateway_with_the_discovered_host(aws, prefix):
    alb_dns = "internal-lc-local-backend-123.us-east-1.elb.amazonaws.com"  # does not resolve: must not be dialled
    aws("ssm").put_parameter(Name=f"{prefix}/backend-url", Value=f"http://{alb_dns}", Type="String")
    gateway = ThreadingHTTPServer(("127.0.0.1", 0), RecordingAlb)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    RecordingAlb.seen = []
    try:
        web = web_client(aws, prefix, alb_gateway=f"127.0.0.1:{gateway.server_address[1]}")
        login(web)
        for item in web.get("/cart").json["items"]:  # alice's cart is shared with other tests: start empty
            web.delete(f"/cart/items/{item['sku']}")
        web.post("/cart/items", json={"sku": TEA, "quantity": 2})

        placed = web.post("/orders", headers={"X-Correlation-Id": "corr-42"})
    finally:
        gateway.shutdown()
        gateway.server_close()

    assert placed.status_code == 202, placed.json
    assert RecordingAlb.seen == [
        {
            "host": alb_dns,
            "path": "/orders",
            "correlation_id": "corr-42",
            "body": {
                "customer_id": "alice",
                "currency": "EUR",
                "items": [{"sku": TEA, "quantity": 2, "unit_price": 8.5}],
            },
        }
    ]
    assert web.get("/cart").json["items"] == []


def test_backend_answers_503_when_sns_fails_and_starts_no_cancel_window(aws, prefix, cloud):
    """The publish is the only write: when it fails nothing happened, so the client may retry."""
    ssm = aws("ssm")
    ssm.put_parameter(Name=f"{prefix}/order-events-topic-arn", Value=cloud.topic_arn + "-missing", Type="String")
    cloud.drain(cloud.cancel_queue_url, settle_seconds=0)
    backend = create_backend(settings("backend", prefix), discovery=Discovery(prefix, ssm_client=ssm)).test_client()

    response = backend.post(
        "/orders", json={"customer_id": "alice", "items": [{"sku": TEA, "quantity": 1, "unit_price": 8.5}]}
    )

    assert response.status_code == 503
    assert cloud.cancel_window() == []


# --- the storefront's paths (/api/*, behind the CDN) -------------------------------------------


def test_every_route_answers_under_api_too_with_the_same_session(web):
    assert web.get("/api/cart").status_code == 401
    response = web.post("/api/login", json={"username": "alice", "password": DEMO_USERS["alice"]})
    assert response.status_code == 200
    assert session_cookie(response)["path"] == "/"  # one cookie for /api/* and the old paths alike
    added = web.post("/api/cart/items", json={"sku": TEA, "quantity": 2})
    assert added.status_code == 201
    assert web.get("/cart").json["items"] == web.get("/api/cart").json["items"]
    assert web.get("/api/nothing-here").status_code == 404


def test_the_catalogue_is_public_and_is_the_contracts(web):
    from contracts.catalog import CATALOG

    for path in ("/catalog", "/api/catalog"):
        response = web.get(path)
        assert response.status_code == 200
        assert response.json == CATALOG.model_dump(mode="json")
        assert "public" in response.headers["Cache-Control"]
    assert {p["sku"] for p in web.get("/api/catalog").json["products"]} >= {TEA}


def test_a_limit_is_a_400_with_a_message_the_page_shows(web):
    web.post("/api/login", json={"username": "alice", "password": DEMO_USERS["alice"]})
    web.delete(f"/api/cart/items/{TEA}")  # alice's cart outlives other tests' sessions
    assert web.post("/api/cart/items", json={"sku": TEA, "quantity": 100}).status_code == 201
    response = web.post("/api/cart/items", json={"sku": TEA, "quantity": 1})
    assert response.status_code == 400
    assert response.json == {"error": f"at most 100 of {TEA} per order"}
