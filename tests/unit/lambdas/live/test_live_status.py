"""The live-status context: which stream records are status changes, the push to the customer's
connections (gone ones deleted, other failures raised for the stream mapping to retry), the
`$connect`/`$disconnect` handlers on the connections table (moto), and the `$connect` authorizer
with real RS256 tokens against a JWKS served over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from live.connections import CONNECTION_TTL_SECONDS, Connections
from live.notifier import management_endpoint, push
from live.status import StatusChange, status_change

from contracts.identity import issuer

POOL, CLIENT = "us-east-1_TestPool", "storefront-web"  # tests/unit/lambdas/conftest.py
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def image(status: str | None, *, sk: str = "META", reason: str | None = None, **extra: str) -> dict[str, Any]:
    item = {"pk": {"S": "ORDER#o-1"}, "sk": {"S": sk}, "order_id": {"S": "o-1"}, "customer_id": {"S": "alice"}}
    if status:
        item["status"] = {"S": status}
    if reason:
        item["cancel_reason"] = {"S": reason}
    return {**item, **{k: {"S": v} for k, v in extra.items()}}


def record(event: str, new: dict | None, old: dict | None = None) -> dict[str, Any]:
    stream: dict[str, Any] = {}
    if new is not None:
        stream["NewImage"] = new
    if old is not None:
        stream["OldImage"] = old
    return {"eventName": event, "dynamodb": stream}


# --- which records are status changes --------------------------------------------------------------


def test_a_new_order_record_and_each_status_change_are_pushed():
    assert status_change(record("INSERT", image("RECEIVED"))) == StatusChange("o-1", "alice", "RECEIVED")
    changed = status_change(record("MODIFY", image("CANCELLED", reason="payment declined"), image("RECEIVED")))
    assert changed == StatusChange("o-1", "alice", "CANCELLED", "payment declined")
    assert json.loads(changed.message()) == {"orderId": "o-1", "status": "CANCELLED", "reason": "payment declined"}
    assert json.loads(StatusChange("o-1", "alice", "COMPLETED").message()) == {"orderId": "o-1", "status": "COMPLETED"}
    stamped = status_change(
        record("MODIFY", image("CONFIRMED", updated_at="2026-12-01T18:00:00.123456Z"), image("RECEIVED"))
    )
    assert stamped is not None and json.loads(stamped.message()) == {
        "orderId": "o-1",
        "status": "CONFIRMED",
        "updatedAt": "2026-12-01T18:00:00.123456Z",
    }


@pytest.mark.parametrize(
    "unchanged",
    [
        pytest.param(record("MODIFY", image("RECEIVED", updated_at="2"), image("RECEIVED")), id="same-status"),
        pytest.param(record("INSERT", image(None, sk="NOTIFICATION")), id="another-item-of-the-order"),
        pytest.param(record("INSERT", image("RECEIVED", sk="PAYMENT")), id="payment-item"),
        pytest.param(record("REMOVE", None, image("RECEIVED")), id="removed"),
        pytest.param(record("INSERT", {"pk": {"S": "LEDGER#SKU-1"}, "sk": {"S": "META"}}), id="not-an-order"),
    ],
)
def test_anything_else_is_not_pushed(unchanged):
    assert status_change(unchanged) is None


def test_the_management_endpoint_is_the_callback_url_on_aws_and_path_style_on_an_emulator():
    url = "https://abc123defg.execute-api.eu-west-1.amazonaws.com/live"
    assert management_endpoint(url, emulator="") == url
    assert management_endpoint(url, emulator="http://127.0.0.1:4566") == (
        "http://127.0.0.1:4566/_aws/execute-api/abc123defg/live"
    )


# --- the push, on the connections table in moto -----------------------------------------------------


class FakeManagement:
    """The @connections API as the notifier sees it: records what it sent, refuses gone connections."""

    def __init__(self, gone: set[str] = frozenset(), failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.sent: list[tuple[str, bytes]] = []
        self.gone, self.failing = gone, failing

    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> dict[str, Any]:
        if ConnectionId in self.gone | self.failing:
            code = "GoneException" if ConnectionId in self.gone else "LimitExceededException"
            raise ClientError({"Error": {"Code": code, "Message": code}}, "PostToConnection")
        self.sent.append((ConnectionId, Data))
        return {}


def test_each_open_connection_of_the_customer_gets_the_change_and_gone_ones_are_deleted(aws):
    connections = Connections("connections")
    for connection_id in ("c-tab-1", "c-tab-2", "c-closed"):
        connections.add("alice", connection_id)
    connections.add("bob", "c-bob")
    management = FakeManagement(gone={"c-closed"})

    delivery = push(StatusChange("o-1", "alice", "CONFIRMED"), connections, management)

    assert (delivery.sent, delivery.gone) == (2, 1)
    assert sorted(c for c, _ in management.sent) == ["c-tab-1", "c-tab-2"]  # never bob's
    assert {json.loads(d)["status"] for _, d in management.sent} == {"CONFIRMED"}
    assert sorted(connections.of("alice")) == ["c-tab-1", "c-tab-2"] and connections.of("bob") == ["c-bob"]


def test_another_failure_is_raised_for_the_stream_mapping_to_retry(aws):
    connections = Connections("connections")
    connections.add("alice", "c-1")
    with pytest.raises(ClientError):
        push(StatusChange("o-1", "alice", "CONFIRMED"), connections, FakeManagement(failing={"c-1"}))
    assert connections.of("alice") == ["c-1"]  # kept: it was not gone


def test_connect_and_disconnect_store_and_remove_the_verified_customers_connection(aws, load_handler, lambda_context):
    handler = load_handler("live.handlers.connections")

    def event(route: str, authorizer: dict | None) -> dict[str, Any]:
        return {"requestContext": {"routeKey": route, "connectionId": "c-42", "authorizer": authorizer}}

    assert handler.connect(event("$connect", {"customer": "alice", "principalId": "alice"}), lambda_context) == {
        "statusCode": 200
    }
    (item,) = aws.items("connections")
    assert item["customer_id"] == "alice" and item["connection_id"] == "c-42"
    assert 0 < int(item["expires_at"]) - time.time() <= CONNECTION_TTL_SECONDS
    handler.disconnect(event("$disconnect", {"customer": "alice"}), lambda_context)
    assert aws.items("connections") == []
    with pytest.raises(PermissionError):  # never stored without the authorizer's verdict
        handler.connect(event("$connect", None), lambda_context)


def test_the_notifier_reports_only_the_failed_record_of_a_batch(aws, load_handler, lambda_context, monkeypatch):
    handler = load_handler("live.handlers.notifier")
    Connections("connections").add("alice", "c-1")
    management = FakeManagement()
    monkeypatch.setattr(handler, "management", management)
    broken = record("INSERT", image("RECEIVED"))
    broken["dynamodb"]["NewImage"]["customer_id"] = {"S": "bob"}
    monkeypatch.setattr(
        handler,
        "push",
        lambda change, c, m: (
            (_ for _ in ()).throw(RuntimeError("down")) if change.customer_id == "bob" else push(change, c, m)
        ),
    )
    batch = {
        "Records": [
            {
                **record("INSERT", image("RECEIVED")),
                "eventID": "1",
                "dynamodb": {**record("INSERT", image("RECEIVED"))["dynamodb"], "SequenceNumber": "100"},
            },
            {**broken, "eventID": "2", "dynamodb": {**broken["dynamodb"], "SequenceNumber": "200"}},
        ]
    }
    answer = handler.lambda_handler(batch, lambda_context)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "200"}]}
    assert [json.loads(d) for _, d in management.sent] == [{"orderId": "o-1", "status": "RECEIVED"}]


# --- the $connect authorizer --------------------------------------------------------------------------


class _Jwks(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        public = json.loads(RSAAlgorithm.to_jwk(KEY.public_key()))
        body = json.dumps({"keys": [{**public, "kid": "k1", "alg": "RS256", "use": "sig"}]}).encode()
        self.send_response(200 if self.path == f"/{POOL}/.well-known/jwks.json" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks(monkeypatch) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # an emulator serves the JWKS at its endpoint
    yield endpoint
    server.shutdown()


def id_token(**changes: Any) -> str:
    now = int(time.time())
    claims = {
        "sub": "s-1",
        "iss": issuer(POOL),
        "aud": CLIENT,
        "token_use": "id",
        "iat": now,
        "exp": now + 600,
        "cognito:username": "alice",
        **changes,
    }
    return jwt.encode(claims, KEY, algorithm="RS256", headers={"kid": "k1"})


def connect_event(token: str | None) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123defg/live/$connect",
        "queryStringParameters": {"token": token} if token is not None else None,
        "requestContext": {"routeKey": "$connect", "connectionId": "c-1"},
    }


def test_the_authorizer_allows_a_valid_id_token_and_names_the_customer(aws, jwks, load_handler, lambda_context):
    handler = load_handler("live.handlers.authorizer")
    answer = handler.lambda_handler(connect_event(id_token()), lambda_context)
    assert answer["principalId"] == "alice" and answer["context"] == {"customer": "alice"}
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": connect_event("")["methodArn"]}


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="no-token"),
        pytest.param("garbage", id="garbage"),
        pytest.param("expired", id="expired"),
        pytest.param("other-client", id="another-audience"),
    ],
)
def test_the_authorizer_denies_anything_else(aws, jwks, load_handler, lambda_context, token):
    handler = load_handler("live.handlers.authorizer")
    if token == "expired":
        token = id_token(exp=int(time.time()) - 60)
    elif token == "other-client":
        token = id_token(aud="another-client")
    answer = handler.lambda_handler(connect_event(token), lambda_context)
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny" and "context" not in answer
