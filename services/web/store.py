"""Where the web tier keeps what must outlive an instance: sessions, carts and checkout tokens.

Two stores behind one small interface, chosen per stage (`sessionStore` in cdk.json, published as the
`session-store` discovery parameter; absent means `redis`):

- `RedisStore`: ElastiCache (services/web/sessions.py, cart.py, checkout.py);
- `DynamoDbStore`: one DynamoDB table (services/web/dynamodb_store.py), seed 004's "externalizing
  session state to Amazon DynamoDB".

Both give the same guarantees the app relies on: a session, cart or token written by one instance is
read by the next request on any other (strongly consistent reads), a cart line never loses a
concurrent change, the checkout token is created once per session, and `complete_checkout` renews the
token and takes the ordered lines out of the cart in one atomic step, once.
"""

from __future__ import annotations

from typing import Literal, Protocol

import redis
from flask import Flask
from flask.sessions import SessionInterface

from services.common.discovery import Discovery
from services.common.redis_client import RedisProvider
from services.web import cart, checkout
from services.web.sessions import DiscoveredRedisSessionInterface

StoreName = Literal["redis", "dynamodb"]
STORES: tuple[StoreName, ...] = ("redis", "dynamodb")
STORE_PARAMETER = "session-store"
TABLE_PARAMETER = "sessions-table"


class SessionStore(Protocol):
    name: StoreName
    # Exceptions that mean "the store is unreachable or failing": the app answers 503 for them.
    unavailable: tuple[type[Exception], ...]

    def session_interface(self, app: Flask) -> SessionInterface: ...

    def cart_lines(self, customer_id: str) -> dict[str, int]: ...

    def cart_add(self, customer_id: str, sku: str, quantity: int) -> int:
        """The line's new quantity; raises cart.CartLimitExceeded above the contract's limit."""
        ...

    def cart_remove(self, customer_id: str, sku: str) -> bool: ...

    def checkout_token(self, session_id: str) -> str: ...

    def complete_checkout(self, session_id: str, token: str, customer_id: str, ordered: dict[str, int]) -> bool: ...

    def reachable(self) -> bool: ...


class RedisStore:
    name: StoreName = "redis"
    unavailable: tuple[type[Exception], ...] = (redis.RedisError,)

    def __init__(self, provider: RedisProvider) -> None:
        self.provider = provider

    def session_interface(self, app: Flask) -> SessionInterface:
        return DiscoveredRedisSessionInterface(app, self.provider)

    def cart_lines(self, customer_id: str) -> dict[str, int]:
        return cart.lines(self.provider.client(), customer_id)

    def cart_add(self, customer_id: str, sku: str, quantity: int) -> int:
        return cart.add(self.provider.client(), customer_id, sku, quantity)

    def cart_remove(self, customer_id: str, sku: str) -> bool:
        return cart.remove(self.provider.client(), customer_id, sku)

    def checkout_token(self, session_id: str) -> str:
        return checkout.current_token(self.provider.client(), session_id)

    def complete_checkout(self, session_id: str, token: str, customer_id: str, ordered: dict[str, int]) -> bool:
        return checkout.complete(self.provider.client(), session_id, token, customer_id, ordered)

    def reachable(self) -> bool:
        return self.provider.reachable()


def store_name(discovery: Discovery) -> StoreName:
    """The stage's store from discovery; `redis` when the parameter is absent (stacks before it existed)."""
    value = discovery.optional(STORE_PARAMETER) or "redis"
    if value not in STORES:
        raise ValueError(f"{discovery.prefix}/{STORE_PARAMETER} must be one of {', '.join(STORES)}, got {value!r}")
    return value


def open_store(discovery: Discovery, *, redis_tls: bool) -> SessionStore:
    if store_name(discovery) == "dynamodb":
        from services.web.dynamodb_store import DynamoDbStore  # boto3's DynamoDB client only where used

        return DynamoDbStore(discovery.get(TABLE_PARAMETER))
    return RedisStore(RedisProvider(discovery, tls=redis_tls))
