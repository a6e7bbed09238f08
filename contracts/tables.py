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
    ACTIVITY#PRODUCT#<sku> / <kind>        storefront activity counter  (activity state machine)
    ACTIVITY#SEARCH#<term> / <kind>        search counter               (activity state machine)
    ACTIVITY#EVENT#<event_id> / COUNTED    marker: that event counted   (activity state machine)
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
ACTIVITY_PREFIX = "ACTIVITY#"
# The idempotency table (Powertools layout, partition key `id` = `<prefix>#<hash>`): the ids the backend
# tier writes for its `Idempotency-Key`s (services/backend/idempotency.py); its grant is limited to them.
WEB_ORDERS_IDEMPOTENCY_PREFIX = "web-orders#"

META = "META"


def order_key(order_id: str, sort_key: str = META) -> dict[str, str]:
    return {PARTITION_KEY: f"{ORDER_PREFIX}{order_id}", SORT_KEY: sort_key}


# Storefront activity (contracts.activity): one counter per subject (`PRODUCT#<sku>`, `SEARCH#<term>`)
# and kind, attribute `event_count`; one marker per counted event id, kept as long as SQS can still
# deliver the event again (its retention, 4 days) plus a margin.
ACTIVITY_COUNTER_ATTRIBUTE = "event_count"
ACTIVITY_MARKER_SORT_KEY = "COUNTED"
ACTIVITY_MARKER_DAYS = 14


def activity_counter_key(subject: str, kind: str) -> dict[str, str]:
    return {PARTITION_KEY: f"{ACTIVITY_PREFIX}{subject}", SORT_KEY: kind}


def activity_marker_key(event_id: str) -> dict[str, str]:
    return {PARTITION_KEY: f"{ACTIVITY_PREFIX}EVENT#{event_id}", SORT_KEY: ACTIVITY_MARKER_SORT_KEY}


# The sessions table (`sessionStore: dynamodb`; services/web/dynamodb_store.py): partition key `id` =
# `<prefix><session or customer id>`, TTL attribute `expires_at`. The web role's grant is limited to
# these prefixes.
SESSIONS_PARTITION_KEY = "id"
SESSIONS_TTL_ATTRIBUTE = "expires_at"
SESSION_ITEM_PREFIX = "session:"  # the Flask-Session session (the Redis key prefix too)
CART_ITEM_PREFIX = "cart:"  # one item per customer, `line:<sku>` attributes
CHECKOUT_ITEM_PREFIX = "checkout:"  # the checkout token of a session
SESSIONS_TABLE_PREFIXES = (SESSION_ITEM_PREFIX, CART_ITEM_PREFIX, CHECKOUT_ITEM_PREFIX)
