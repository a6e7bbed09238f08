"""The storefront's viewer endpoint (localcloud/cdn.py): requests on its port reach MiniStack as viewer
requests to the storefront's distribution; every other request passes untouched."""

from __future__ import annotations

import asyncio

import pytest

from localcloud import cdn

PORT = 8480


def run(scope: dict) -> tuple[list[dict], list[dict]]:
    seen: list[dict] = []
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    async def ministack(scope, receive, send):
        seen.append(scope)

    async def main() -> None:
        await cdn.viewer_endpoint(ministack, PORT)(scope, receive, send)

    asyncio.run(main())
    return seen, sent


def http(port: int, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "server": ("127.0.0.1", port), "headers": headers, "path": "/"}


def test_a_request_on_the_viewer_port_is_addressed_to_the_distribution_as_https(monkeypatch):
    monkeypatch.setattr(cdn, "storefront_domain", lambda comment=cdn.STOREFRONT_COMMENT: "d123.cloudfront.net")
    seen, _ = run(http(PORT, [(b"host", b"127.0.0.1:8480"), (b"x-forwarded-proto", b"http"), (b"cookie", b"a=1")]))
    (scope,) = seen
    assert sorted(scope["headers"]) == [
        (b"cookie", b"a=1"),
        (b"host", b"d123.cloudfront.net"),
        (b"x-forwarded-proto", b"https"),
    ]


def test_other_ports_pass_untouched(monkeypatch):
    monkeypatch.setattr(cdn, "storefront_domain", lambda comment=cdn.STOREFRONT_COMMENT: "d123.cloudfront.net")
    request = http(4566, [(b"host", b"127.0.0.1:4566")])
    seen, _ = run(request)
    assert seen == [request]


def test_before_the_storefront_is_deployed_the_viewer_says_so(monkeypatch):
    monkeypatch.setattr(cdn, "storefront_domain", lambda comment=cdn.STOREFRONT_COMMENT: None)
    seen, sent = run(http(PORT, [(b"host", b"127.0.0.1:8480")]))
    assert seen == []
    assert sent[0]["status"] == 503 and b"make local" in sent[1]["body"]


@pytest.mark.parametrize("stage_comment", [cdn.STOREFRONT_COMMENT])
def test_the_comment_is_the_one_the_stack_gives_the_local_distribution(stage_comment):
    from stacks.config import StageConfig
    from stacks.storefront_stack import distribution_comment

    local = StageConfig(stage="local", allow_plain_http=True, encryption_keys="default")
    assert distribution_comment(local) == stage_comment
