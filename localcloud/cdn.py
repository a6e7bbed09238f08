"""The storefront's CloudFront distribution in the local cloud: an ordinary address for it, and the one
runtime patch its S3 origin needs. Runs inside the emulator (localcloud/emulator.py).

- The viewer endpoint. MiniStack's CloudFront serves a distribution to requests whose Host header is the
  distribution's domain name (`<id>.cloudfront.net`), which no resolver here knows. MiniStack's own
  server also listens on 127.0.0.1:<LOCALCLOUD_STOREFRONT_PORT> (default 8480), and every request there
  is handed to MiniStack as a viewer request to the storefront's distribution (the one whose comment is
  `lc-local-storefront`, stacks/storefront_stack.py) with `X-Forwarded-Proto: https`: what CloudFront's
  edge sees after it terminated TLS. Nothing else changes: behaviours, origins, headers policies and
  the viewer-protocol redirect are MiniStack's.
- API Gateway origins. The distribution's `/me/*` behaviour has the REST API as its origin
  (`<api id>.execute-api.<region>.amazonaws.com`, the stage as origin path), a host MiniStack's CloudFront
  refuses to dial (AWS-owned) and that does not resolve here. The patch sends such an origin fetch to the
  emulator's own address for that API, `/_aws/execute-api/<api id>/<stage>/...`, without the viewer's
  Host (API Gateway answers only to its own name; the AllViewerExceptHostHeader policy drops it too).
- S3 origin fetches are TLS. CloudFront reaches an S3 origin over HTTPS, so the bucket policy's
  enforce-SSL deny (`aws:SecureTransport` false) never matches its fetches; MiniStack evaluates the
  policy with the secure-transport flag of the viewer's connection (plain HTTP here), and every page
  behind origin access control is a 403. The patch evaluates the origin fetch as secure transport.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from localcloud.settings import PREFIX, STAGE

S3_ORIGIN_TLS = "CloudFront S3 origin fetches over TLS"
API_GATEWAY_ORIGIN = "CloudFront API Gateway origins reach the emulator's execute-api"
_EXECUTE_API_HOST = re.compile(r"^([a-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com$")
STOREFRONT_COMMENT = f"{PREFIX}-{STAGE}-storefront"  # stacks.storefront_stack.distribution_comment
DEFAULT_VIEWER_PORT = 8480
_COMMENT = re.compile(r"<Comment>([^<]*)</Comment>")

Asgi = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def patch_s3_origin_tls() -> None:
    from ministack.core import iam_evaluator
    from ministack.services import cloudfront

    serve = cloudfront._serve_s3_origin

    def serve_over_tls(origin: dict, method: str, uri: str, headers: dict, dist_arn: str = "") -> Any:
        source_ip, _secure = iam_evaluator._request_origin.get()
        token = iam_evaluator._request_origin.set((source_ip, True))
        try:
            return serve(origin, method, uri, headers, dist_arn)
        finally:
            iam_evaluator._request_origin.reset(token)

    cloudfront._serve_s3_origin = serve_over_tls


def patch_api_gateway_origin() -> None:
    from ministack.services import cloudfront

    fetch = cloudfront._fetch_from_origin

    async def fetch_from_local_api(
        origin: dict, method: str, uri: str, query_string: str, headers: dict, body: bytes, *args: Any
    ) -> Any:
        found = _EXECUTE_API_HOST.match(cloudfront._normalize_origin_host(origin.get("domain_name", "")))
        if found:
            origin = {
                **origin,
                "domain_name": "127.0.0.1",
                "http_port": int(os.environ.get("GATEWAY_PORT", "4566")),
                "protocol_policy": "http-only",
                "origin_path": f"/_aws/execute-api/{found.group(1)}" + (origin.get("origin_path") or ""),
            }
            headers = {name: value for name, value in headers.items() if name.lower() != "host"}
        return await fetch(origin, method, uri, query_string, headers, body, *args)

    cloudfront._fetch_from_origin = fetch_from_local_api


def storefront_domain(comment: str = STOREFRONT_COMMENT) -> str | None:
    """The DomainName of the enabled distribution whose comment is `comment`, if one is deployed."""
    from ministack.services import cloudfront

    for distribution in list(cloudfront._distributions.values()):
        found = _COMMENT.search(distribution.get("config_xml", ""))
        if found and found.group(1) == comment and distribution.get("enabled", True):
            return str(distribution["DomainName"])
    return None


def viewer_endpoint(app: Asgi, port: int, comment: str = STOREFRONT_COMMENT) -> Asgi:
    """`app` (MiniStack's ASGI app) with the requests arriving on `port` sent to the storefront's distribution."""

    async def dispatch(scope: dict, receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]):
        server = scope.get("server") or (None, None)
        if scope.get("type") == "http" and server[1] == port:
            domain = storefront_domain(comment)
            if domain is None:
                body = b"The storefront is not deployed yet: run `make local`.\n"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            headers = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"host", b"x-forwarded-proto")]
            headers += [(b"host", domain.encode()), (b"x-forwarded-proto", b"https")]
            scope = {**scope, "headers": headers}
        await app(scope, receive, send)

    return dispatch


def install_viewer(port: int, host: str = "127.0.0.1") -> None:
    """Make MiniStack's server also listen on host:port, as the storefront's viewer endpoint."""
    import hypercorn.asyncio

    serve = hypercorn.asyncio.serve

    async def serve_with_viewer(app: Asgi, config: Any, *args: Any, **kwargs: Any) -> Any:
        config.bind = [*config.bind, f"{host}:{port}"]
        return await serve(viewer_endpoint(app, port), config, *args, **kwargs)

    hypercorn.asyncio.serve = serve_with_viewer
