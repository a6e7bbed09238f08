"""HTTP calls from the web tier to the backend tier, always through the discovered `backend-url`
(the internal ALB): the web tier never knows a backend instance.

Timeouts are short and there are no automatic retries: placing an order is not idempotent, and a
slow backend must turn into a quick, clear 503 for the browser rather than a hung request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

from services.common.observability import CORRELATION_HEADER, correlation_id

CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 5.0


class BackendUnavailable(Exception):
    """No usable answer from the backend (connection refused, timeout, 5xx from the ALB or backend)."""


@dataclass(frozen=True)
class BackendResponse:
    status: int
    body: Any


@dataclass(frozen=True)
class Route:
    scheme: str
    host: str
    port: int
    host_header: str | None
    path_prefix: str


def route(backend_url: str, alb_gateway: str | None) -> Route:
    """Where to connect for `backend_url`.

    Normally: the URL's own host and port. With `alb_gateway` (host:port, local cloud only): connect to
    the gateway instead and send the URL's host in the `Host` header, because the local ALB data plane
    listens on one address and tells load balancers apart by that header, while the discovered URL is
    the internal ALB's DNS name, which does not resolve locally. On AWS ALB_GATEWAY is unset.
    """
    parts = urlsplit(backend_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BackendUnavailable(f"backend-url is not an http(s) URL: {backend_url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    prefix = parts.path.rstrip("/")
    if alb_gateway:
        gateway_host, _, gateway_port = alb_gateway.rpartition(":")
        return Route("http", gateway_host, int(gateway_port), parts.netloc, prefix)
    return Route(parts.scheme, parts.hostname, port, None, prefix)


class BackendClient:
    def __init__(self, discovery, alb_gateway: str | None = None) -> None:
        self._discovery = discovery
        self._alb_gateway = alb_gateway
        self._pool = urllib3.PoolManager(maxsize=16, block=False)

    def request(self, method: str, path: str, body: Any = None) -> BackendResponse:
        target = route(self._discovery.get("backend-url"), self._alb_gateway)
        headers = {"Accept": "application/json", CORRELATION_HEADER: correlation_id() or ""}
        if target.host_header:
            headers["Host"] = target.host_header
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        pool = self._pool.connection_from_host(target.host, target.port, target.scheme)
        try:
            raw = pool.urlopen(
                method,
                target.path_prefix + path,
                body=payload,
                headers=headers,
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
                retries=False,
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise BackendUnavailable(f"backend unreachable: {error.__class__.__name__}") from error
        if raw.status >= 500:
            raise BackendUnavailable(f"backend answered {raw.status}")
        try:
            parsed = json.loads(raw.data) if raw.data else None
        except ValueError as error:
            raise BackendUnavailable("backend answered a non-JSON body") from error
        return BackendResponse(raw.status, parsed)
