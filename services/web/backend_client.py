"""HTTP calls from the web tier to the backend tier, always through the discovered `backend-url`
(the internal ALB): the web tier never knows a backend instance.

Timeouts are short: a slow backend must turn into a quick, clear 503 for the browser rather than a
hung request.

One retry, and only where it is safe and useful. A backend instance that dies (or is being replaced)
keeps receiving requests until the target group's health check notices: the internal ALB then answers
502/503/504, or the connection fails. Another instance is usually healthy, so the call is made once
more after `RETRY_PAUSE_SECONDS` - but only when repeating it cannot do anything twice:

- safe methods (GET, HEAD), which change nothing; and
- requests carrying an `Idempotency-Key` (POST /orders), which the backend answers once per key
  (services/backend/idempotency.py): if the dead instance did place the order, the retry gets that
  order back instead of a second one.

Only connection failures (refused, reset, connect timeout, the connection dropped mid-answer) and
502/503/504 are retried. Not a read timeout: the backend is alive but slow, the first attempt is
probably still at work (a keyed retry would meet 409 "in progress"), and waiting twice breaks the
quick-503 promise. Not any other status: 4xx and 500 are answers, and asking again would get the same.
Exactly once: a second failure in a row means more than one lost instance, and the browser gets the
503 (its cart is kept; the customer's own resubmit reuses the same key).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

from contracts.api import IDEMPOTENCY_HEADER
from services.common.observability import CORRELATION_HEADER, correlation_id

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 5.0
# What the ALB answers for a target that is gone or failing: 502 (bad gateway: the target closed or
# reset the connection), 503 (no healthy target), 504 (the target did not answer in time).
RETRY_STATUSES = frozenset({502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD"})
# Long enough for the ALB to pick another target, short enough to go unnoticed by the customer.
RETRY_PAUSE_SECONDS = 0.2


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

    def request(
        self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None
    ) -> BackendResponse:
        """One call, retried once (see the module docstring) when `method` is safe or an
        `idempotency_key` is given; BackendUnavailable when no usable answer came."""
        attempts = 2 if method in SAFE_METHODS or idempotency_key is not None else 1
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                raw = self._send(method, path, body, idempotency_key)
            except _ConnectionFailed as failed:
                if last:
                    raise BackendUnavailable(str(failed)) from failed.__cause__
                logger.warning("backend call failed, retrying once", extra={"path": path, "error": str(failed)})
            else:
                if last or raw.status not in RETRY_STATUSES:
                    break
                logger.warning("backend call failed, retrying once", extra={"path": path, "status": raw.status})
            time.sleep(RETRY_PAUSE_SECONDS)
        if raw.status >= 500:
            raise BackendUnavailable(f"backend answered {raw.status}")
        try:
            parsed = json.loads(raw.data) if raw.data else None
        except ValueError as error:
            raise BackendUnavailable("backend answered a non-JSON body") from error
        return BackendResponse(raw.status, parsed)

    def _send(self, method: str, path: str, body: Any, idempotency_key: str | None) -> urllib3.BaseHTTPResponse:
        """One attempt. _ConnectionFailed when the request may be repeated (no connection, or it dropped);
        BackendUnavailable for every other failure (a read timeout, TLS, a bad URL)."""
        target = route(self._discovery.get("backend-url"), self._alb_gateway)
        headers = {"Accept": "application/json", CORRELATION_HEADER: correlation_id() or ""}
        if target.host_header:
            headers["Host"] = target.host_header
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        pool = self._pool.connection_from_host(target.host, target.port, target.scheme)
        try:
            return pool.urlopen(
                method,
                target.path_prefix + path,
                body=payload,
                headers=headers,
                timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS),
                retries=False,
                redirect=False,
            )
        # NewConnectionError (refused, unresolvable) is a ConnectTimeoutError; ProtocolError is a
        # connection reset or closed before the whole answer arrived.
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ProtocolError) as error:
            raise _ConnectionFailed(f"backend unreachable: {error.__class__.__name__}") from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise BackendUnavailable(f"backend unreachable: {error.__class__.__name__}") from error


class _ConnectionFailed(Exception):
    """An attempt that got no answer because the connection failed: worth one more try."""
