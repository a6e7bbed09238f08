"""The orders table's key design, shared by the Lambda contexts that own its items, the backend tier
that reads order records, and the IAM grants that let each function touch only its own partitions.

    ORDER#<id> / META                      the order record             (orders; the backend tier reads it)
    ORDER#<id> / NOTIFICATION              customer messages            (notification)
    ORDER#<id> / PAYMENT | APPROVAL        charge, approval task token  (checkout)
    ORDER#<id> / RESERVATION#<sku>         stock a checkout holds       (inventory)
    ANALYTICS#<yyyy-mm-dd> / <event_type>  daily counters               (analytics)
    LEDGER#<sku> / <seq>                   ordered stock movements      (inventory)
    LEDGER#ORDER#<id> / <seq>              ordered payment movements    (inventory)
    HANDOFF#<key> / INGESTED               ingested hand-off objects    (handoff)
    RECS#<sku> / ORDER#<id>                bought together              (recommendations)
"""

from __future__ import annotations

PARTITION_KEY = "pk"
SORT_KEY = "sk"

# Partition-key prefixes: `dynamodb:LeadingKeys` conditions are built from these.
ORDER_PREFIX = "ORDER#"
ANALYTICS_PREFIX = "ANALYTICS#"
LEDGER_PREFIX = "LEDGER#"
HANDOFF_PREFIX = "HANDOFF#"
RECOMMENDATION_PREFIX = "RECS#"
# The idempotency table (Powertools layout, partition key `id` = `<prefix>#<hash>`): the ids the backend
# tier writes for its `Idempotency-Key`s (services/backend/idempotency.py); its grant is limited to them.
WEB_ORDERS_IDEMPOTENCY_PREFIX = "web-orders#"

META = "META"


def order_key(order_id: str, sort_key: str = META) -> dict[str, str]:
    return {PARTITION_KEY: f"{ORDER_PREFIX}{order_id}", SORT_KEY: sort_key}


# The sessions table (`sessionStore: dynamodb`; services/web/dynamodb_store.py): partition key `id` =
# `<prefix><session or customer id>`, TTL attribute `expires_at`. The web role's grant is limited to
# these prefixes.
SESSIONS_PARTITION_KEY = "id"
SESSIONS_TTL_ATTRIBUTE = "expires_at"
SESSION_ITEM_PREFIX = "session:"  # the Flask-Session session (the Redis key prefix too)
CART_ITEM_PREFIX = "cart:"  # one item per customer, `line:<sku>` attributes
CHECKOUT_ITEM_PREFIX = "checkout:"  # the checkout token of a session
SESSIONS_TABLE_PREFIXES = (SESSION_ITEM_PREFIX, CART_ITEM_PREFIX, CHECKOUT_ITEM_PREFIX)
