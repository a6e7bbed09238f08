"""`POST /orders` honours an `Idempotency-Key`: the same key with the same body places one order.

The web tier sends a key with every order and retries a call once when the internal ALB answers
502/503/504 (an instance died mid-request) or the connection fails (services/web/backend_client.py).
This module makes that retry, and a customer's double submit, harmless:

- same key, same body: the first answer comes back (same order id, 202) and nothing is published again;
- same key, another body: `IdempotencyValidationError` (422): a key is never reused for another order;
- same key while the first request is still in flight: `IdempotencyAlreadyInProgressError` (409),
  nothing published. The in-flight mark expires after `IN_PROGRESS_SECONDS`, so a key whose first
  request died with its instance is usable again shortly, not only after a day.

The store: Powertools idempotency with its DynamoDB persistence layer on the idempotency table, the
same library, table and layout (`id`, TTL `expiration`) as the API channel's Lambda
(lambdas/orders/handlers/api.py), rather than Redis. The record *is* the promise "this order was
placed once", so it belongs in a durable, multi-AZ store: the cache node keeps sessions and carts, has
no persistence and may be replaced or failed over, and losing a record there is exactly the double
order this exists to prevent. The backend already finds its tables through discovery, so one more
parameter (`idempotency-table`) and an IAM grant limited to this tier's ids (`web-orders#...`,
dynamodb:LeadingKeys) are all it takes; the backend still needs no network path to the cache.

Powertools expects a Lambda: it bounds the in-flight mark by the invocation's remaining time. A
backend request has no such deadline object, so `_InProgressBudget` gives it a fixed one.

The order id is derived from (key, body) like the API channel's (`order_id_for`), so even a second
publish after an expired in-flight mark (a first attempt that published and then hung past
`IN_PROGRESS_SECONDS`) carries the same order id, which every consumer applies once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts.tables import WEB_ORDERS_IDEMPOTENCY_PREFIX
from services.backend.orders import order_id_for

# How long the web tier may retry or the customer resubmit with the same key (the API's is a day too).
IDEMPOTENCY_SECONDS = 24 * 3600
# How long a request holds its key. Placing an order takes well under a second (one DynamoDB write,
# one SNS publish, one DynamoDB write); the web tier waits at most 5 s for an answer (READ_TIMEOUT_SECONDS
# in services/web/backend_client.py), so a mark older than twice that belongs to a dead request.
IN_PROGRESS_SECONDS = 10

PlaceOrder = Callable[[str], dict[str, Any]]


class _InProgressBudget:
    """Stands in for the Lambda context Powertools reads the in-flight deadline from."""

    def get_remaining_time_in_millis(self) -> int:
        return IN_PROGRESS_SECONDS * 1000


# Keyed on the key; the body is validated, not keyed (another body with the same key is a 422, as on the API).
CONFIG = IdempotencyConfig(
    event_key_jmespath="idempotency_key",
    payload_validation_jmespath="body",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_SECONDS,
    lambda_context=cast(LambdaContext, _InProgressBudget()),
)


def _place_once(request: dict[str, Any], place: PlaceOrder) -> dict[str, Any]:
    return place(order_id_for(request["idempotency_key"], request["body"]))


class IdempotentOrders:
    """Runs `place(order_id)` once per Idempotency-Key, with the records in the discovered table."""

    def __init__(self, dynamodb_client: Any) -> None:
        self._dynamodb = dynamodb_client
        self._lock = threading.Lock()
        self._by_table: dict[str, Callable[..., dict[str, Any]]] = {}

    def _placer(self, table_name: str) -> Callable[..., dict[str, Any]]:
        # One persistence layer per table name: a changed discovery parameter is followed without a restart.
        with self._lock:
            placer = self._by_table.get(table_name)
            if placer is None:
                store = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=self._dynamodb)
                placer = idempotent_function(
                    _place_once,
                    data_keyword_argument="request",
                    config=CONFIG,
                    persistence_store=store,
                    key_prefix=WEB_ORDERS_IDEMPOTENCY_PREFIX.removesuffix("#"),
                )
                self._by_table[table_name] = placer
            return placer

    def place(self, table_name: str, key: str, body: Any, place: PlaceOrder) -> dict[str, Any]:
        """`place`'s answer for the first request with `key`, the stored answer for every repeat."""
        return self._placer(table_name)(request={"idempotency_key": f"web:{key}", "body": body}, place=place)
