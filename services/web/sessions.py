"""Server-side sessions with Flask-Session (pallets-eco), here in Redis (services/web/dynamodb_store.py
keeps them in DynamoDB): the cookie holds only an opaque,
random session id (32 bytes from `secrets`); the session data stays in Redis, so any instance serves
any request and an instance can die without logging anyone out.

Two adaptations of Flask-Session's RedisSessionInterface, both small:
- the Redis client comes from discovery on every use (`RedisProvider`), so a moved endpoint is
  followed without a restart;
- the cookie is `Secure` whenever the request came in over HTTPS (ProxyFix trusts the ALB's
  X-Forwarded-Proto), not only when configured: the same build serves an HTTP-only local ALB and an
  HTTPS production ALB.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import Flask, request
from flask.sessions import SessionInterface
from flask_session.redis import RedisSessionInterface

from contracts.tables import SESSION_ITEM_PREFIX
from services.common.redis_client import RedisProvider

SESSION_LIFETIME = timedelta(hours=8)  # sliding: every request that touches the session renews it
SESSION_COOKIE_NAME = "storefront_session"
SESSION_KEY_PREFIX = SESSION_ITEM_PREFIX  # the Redis key, or the DynamoDB item id


class DiscoveredRedisSessionInterface(RedisSessionInterface):
    def __init__(self, app: Flask, provider: RedisProvider) -> None:
        self._provider = provider
        super().__init__(
            app,
            client=provider.client(),
            key_prefix=SESSION_KEY_PREFIX,
            use_signer=False,  # the id is already unguessable; signing adds a key to manage and nothing else
            permanent=True,
            sid_length=32,
            serialization_format="msgpack",
        )

    @property
    def client(self):
        return self._provider.client()

    @client.setter
    def client(self, _value) -> None:
        """Flask-Session's constructor assigns a client; the provider owns it instead."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return secure_cookie(app)


def secure_cookie(app: Flask) -> bool:
    """`Secure` when configured or when the request came in over HTTPS (through the ALB)."""
    return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def init_sessions(app: Flask, interface: Callable[[Flask], SessionInterface]) -> None:
    """The cookie's settings, then `interface(app)`: the session interface of the web tier's store."""
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.session_interface = interface(app)
