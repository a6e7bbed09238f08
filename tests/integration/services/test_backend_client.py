"""The web tier's retry rule (services/web/backend_client.py), with real urllib3 against a small HTTP
server on a free loopback port that answers from a script: which calls are repeated, on what, how often."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.web import backend_client
from services.web.backend_client import BackendClient, BackendUnavailable

KEY = "web-" + "a" * 64
ORDER = {"customer_id": "alice", "items": [{"sku": "SKU-TEA-001", "quantity": 1, "unit_price": 8.5}]}
ACCEPTED = {"order_id": "3f2b6c1e-0000-4000-8000-000000000001", "status": "RECEIVED"}

# A scripted answer: an HTTP status (with a JSON body), or "drop" (close the connection, no answer).
Answer = int | str


@dataclass
class Seen:
    method: str
    path: str
    idempotency_key: str | None
    body: bytes


@dataclass
class Script:
    answers: list[Answer]
    seen: list[Seen] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    script: Script  # set per server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.script.seen.append(
            Seen(self.command, self.path, self.headers.get("Idempotency-Key"), self.rfile.read(length))
        )
        answer = self.script.answers.pop(0) if self.script.answers else 200
        if answer == "drop":  # what a dying instance does: the connection ends without an answer
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        assert isinstance(answer, int)
        body = json.dumps(ACCEPTED if answer < 300 else {"error": f"status {answer}"}).encode()
        self.send_response(answer)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


class FakeDiscovery:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, name: str) -> str:
        assert name == "backend-url"
        return self.url


@dataclass
class Backend:
    script: Script
    client: BackendClient

    def answers(self, *answers: Answer) -> Backend:
        self.script.answers[:] = list(answers)
        return self

    @property
    def seen(self) -> list[Seen]:
        return self.script.seen


@pytest.fixture(autouse=True)
def quick_pause(monkeypatch) -> None:
    monkeypatch.setattr(backend_client, "RETRY_PAUSE_SECONDS", 0.01)


@pytest.fixture
def backend() -> Iterator[Backend]:
    script = Script([])
    handler = type("Handler", (_Handler,), {"script": script})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield Backend(script, BackendClient(FakeDiscovery(f"http://127.0.0.1:{server.server_address[1]}")))
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_keyed_post_is_retried_once_after_an_alb_error_with_the_same_key_and_body(backend, status):
    answer = backend.answers(status, 202).client.request("POST", "/orders", ORDER, idempotency_key=KEY)

    assert (answer.status, answer.body) == (202, ACCEPTED)
    assert [(s.method, s.path, s.idempotency_key) for s in backend.seen] == [("POST", "/orders", KEY)] * 2
    assert backend.seen[0].body == backend.seen[1].body == json.dumps(ORDER).encode()


def test_a_keyed_post_is_retried_once_when_the_connection_drops_without_an_answer(backend):
    answer = backend.answers("drop", 202).client.request("POST", "/orders", ORDER, idempotency_key=KEY)

    assert answer.status == 202
    assert len(backend.seen) == 2


def test_a_keyed_post_is_retried_once_when_nothing_listens(backend):
    # A dead address first, then the live server: what the next call through the ALB finds.
    live = backend.client._discovery.url
    urls = iter([f"http://127.0.0.1:{free_port()}", live])
    backend.client._discovery = type("Flip", (), {"get": lambda self, name: next(urls)})()

    answer = backend.answers(202).client.request("POST", "/orders", ORDER, idempotency_key=KEY)

    assert answer.status == 202
    assert len(backend.seen) == 1  # the first attempt never connected


def test_exactly_one_retry_then_a_clear_backend_unavailable(backend):
    with pytest.raises(BackendUnavailable, match="503"):
        backend.answers(502, 503, 202).client.request("POST", "/orders", ORDER, idempotency_key=KEY)
    assert len(backend.seen) == 2


def test_two_dropped_connections_are_backend_unavailable(backend):
    with pytest.raises(BackendUnavailable, match="unreachable"):
        backend.answers("drop", "drop", 202).client.request("POST", "/orders", ORDER, idempotency_key=KEY)
    assert len(backend.seen) == 2


@pytest.mark.parametrize("first", [502, 503, 504, "drop"])
def test_a_post_without_a_key_is_never_retried(backend, first):
    with pytest.raises(BackendUnavailable):
        backend.answers(first, 202).client.request("POST", "/orders", ORDER)
    assert len(backend.seen) == 1
    assert backend.seen[0].idempotency_key is None


def test_a_safe_get_is_retried_once_without_a_key(backend):
    answer = backend.answers(503, 200).client.request("GET", f"/orders/{ACCEPTED['order_id']}")

    assert answer.status == 200
    assert [(s.method, s.idempotency_key) for s in backend.seen] == [("GET", None)] * 2


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_answers_are_not_retried(backend, status):
    answer = backend.answers(status, 202).client.request("POST", "/orders", ORDER, idempotency_key=KEY)

    assert answer.status == status
    assert len(backend.seen) == 1


def test_a_500_is_not_retried(backend):
    with pytest.raises(BackendUnavailable, match="500"):
        backend.answers(500, 202).client.request("POST", "/orders", ORDER, idempotency_key=KEY)
    assert len(backend.seen) == 1


def test_a_read_timeout_is_not_retried(backend, monkeypatch):
    """A slow backend is alive: waiting for it twice would break the quick-503 promise."""
    monkeypatch.setattr(backend_client, "READ_TIMEOUT_SECONDS", 0.2)
    original = _Handler._answer

    def slow(self) -> None:
        time.sleep(0.6)
        original(self)

    monkeypatch.setattr(_Handler, "do_POST", slow)

    with pytest.raises(BackendUnavailable, match="ReadTimeout"):
        backend.client.request("POST", "/orders", ORDER, idempotency_key=KEY)
    time.sleep(0.5)  # let the slow handler record its request
    assert len(backend.seen) == 1


def test_the_retry_waits_a_short_pause(backend, monkeypatch):
    monkeypatch.setattr(backend_client, "RETRY_PAUSE_SECONDS", 0.3)
    started = time.monotonic()
    backend.answers(502, 202).client.request("POST", "/orders", ORDER, idempotency_key=KEY)
    assert 0.3 <= time.monotonic() - started < 2
