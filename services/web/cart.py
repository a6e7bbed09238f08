"""Carts in Redis: one hash per customer (`cart:<customer id>`, sku -> quantity).

A hash of its own rather than a field of the session: two requests of one browser may run at the same
time on two instances, and per-field HINCRBY/HDEL in a WATCH transaction never lose an update, where
rewriting a whole session blob would (last writer wins). Keyed by customer, the cart also outlives a
logout and follows the customer to another browser.
"""

from __future__ import annotations

from typing import cast

import redis

from contracts import limits

MAX_QUANTITY = limits.MAX_QUANTITY  # per line: the contract's limit, so the cart never holds what no order takes
CART_TTL_SECONDS = 7 * 24 * 3600  # abandoned carts expire; every change renews the week


class CartLimitExceeded(ValueError):
    pass


def _key(customer_id: str) -> str:
    return f"cart:{customer_id}"


def _text(reply: bytes | str) -> str:
    # The client is built without decode_responses (services/common/redis_client.py): replies are bytes.
    return cast(bytes, reply).decode()


def lines(client: redis.Redis, customer_id: str) -> dict[str, int]:
    return {_text(sku): int(qty) for sku, qty in client.hgetall(_key(customer_id)).items()}


def add(client: redis.Redis, customer_id: str, sku: str, quantity: int) -> int:
    """Add `quantity` of `sku`; the line's new quantity. Atomic against concurrent changes of the cart."""
    key = _key(customer_id)

    def update(pipe: redis.client.Pipeline) -> int:
        new_quantity = int(pipe.hget(key, sku) or 0) + quantity
        if new_quantity > MAX_QUANTITY:
            raise CartLimitExceeded(f"at most {MAX_QUANTITY} of {sku} per order")
        pipe.multi()
        pipe.hset(key, sku, new_quantity)
        pipe.expire(key, CART_TTL_SECONDS)
        return new_quantity

    # redis types `func` as returning None and the result loosely; with value_from_callable it is `update`'s.
    return cast(int, client.transaction(update, key, value_from_callable=True))  # type: ignore[arg-type]


def remove(client: redis.Redis, customer_id: str, sku: str) -> bool:
    return bool(client.hdel(_key(customer_id), sku))


def remove_ordered(client: redis.Redis, customer_id: str, ordered: dict[str, int]) -> None:
    """Take the ordered quantities out of the cart after the order was accepted. Anything added while
    the order was in flight stays in the cart (subtract, don't clear)."""
    key = _key(customer_id)

    def update(pipe: redis.client.Pipeline) -> None:
        current = lines(pipe, customer_id)
        pipe.multi()
        queue_removal(pipe, customer_id, current, ordered)

    client.transaction(update, key)


def queue_removal(
    pipe: redis.client.Pipeline, customer_id: str, current: dict[str, int], ordered: dict[str, int]
) -> None:
    """Queue, in `pipe`'s MULTI, the removal of `ordered` from the cart that held `current` (read after
    WATCHing `watched_key(customer_id)`): for a transaction that changes the cart and something else."""
    key = _key(customer_id)
    for sku, quantity in ordered.items():
        left = current.get(sku, 0) - quantity
        if left > 0:
            pipe.hset(key, sku, left)
        else:
            pipe.hdel(key, sku)


def watched_key(customer_id: str) -> str:
    """The Redis key that holds the cart (to WATCH in a transaction of another module)."""
    return _key(customer_id)
