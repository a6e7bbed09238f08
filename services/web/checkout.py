"""The `Idempotency-Key` the web tier sends with an order, and the checkout token it is derived from.

The key must be the same for every attempt at placing *one* order - the backend client's retry
(services/web/backend_client.py) and the customer's double submit of the same cart - and different
for the next order and for anybody else. So it is derived from

    the customer id + the session id + a checkout token of that session

- the token (128 random bits) is created when the session first checks out and kept until an order
  with it is accepted; then it is renewed, in the same Redis transaction that takes the ordered
  lines out of the cart (`complete`);
- the session id is the opaque random id Flask-Session keeps in the cookie (regenerated at login),
  and the customer id is the logged-in user: two users, or two logins, never share a key;
- the key is a SHA-256 of the three, so the session id - a bearer credential - never leaves the web
  tier (the backend stores and logs the key).

The token lives in its own Redis key, `checkout:<session id>` (with the session's lifetime), not in
the session: the session is rewritten whole at the end of every request (last writer wins), so a
concurrent request that started before an order completed would put the old token back.

Read the token *before* the cart (`place_order` in services/web/app.py): a double submit then either
reads the old token and the cart as it was (same key, same body: the backend answers the first
order again) or the new token and the cart without the ordered lines; never the new token with the
old cart, which would be a second order.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import cast

import redis

from services.web import cart
from services.web.sessions import SESSION_LIFETIME

TOKEN_TTL_SECONDS = int(SESSION_LIFETIME.total_seconds())
KEY_PREFIX = "web-"


def _token_key(session_id: str) -> str:
    return f"checkout:{session_id}"


def idempotency_key(customer_id: str, session_id: str, token: str) -> str:
    """`web-` + 64 hex digits: stable for (customer, session, token), unguessable without the session id."""
    material = json.dumps([customer_id, session_id, token], separators=(",", ":"))
    return KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()


def current_token(client: redis.Redis, session_id: str) -> str:
    """The session's checkout token, created if it has none (atomic: concurrent requests get the same)."""
    key = _token_key(session_id)
    pipe = client.pipeline(transaction=True)
    pipe.set(key, secrets.token_hex(16), nx=True)
    pipe.expire(key, TOKEN_TTL_SECONDS)
    pipe.get(key)
    return cast(bytes, pipe.execute()[-1]).decode()


def complete(client: redis.Redis, session_id: str, token: str, customer_id: str, ordered: dict[str, int]) -> bool:
    """After the backend accepted the order placed with `token`: renew the token and take `ordered` out
    of the cart, atomically. False (and nothing changed) when the token was renewed already: another
    request of the same order (a double submit) got there first and took the lines out."""
    key = _token_key(session_id)

    def update(pipe: redis.client.Pipeline) -> bool:
        held = pipe.get(key)
        if held is None or cast(bytes, held).decode() != token:
            return False
        current = cart.lines(pipe, customer_id)
        pipe.multi()
        cart.queue_removal(pipe, customer_id, current, ordered)
        pipe.delete(key)  # the next checkout creates a fresh token
        return True

    # redis types `func` as returning None and the result loosely; with value_from_callable it is `update`'s.
    return cast(
        bool,
        client.transaction(update, key, cart.watched_key(customer_id), value_from_callable=True),  # type: ignore[arg-type]
    )
