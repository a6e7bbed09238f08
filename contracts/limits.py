"""The limits of a valid order, as plain values: the pydantic models, the API Gateway models, the web
tier's cart messages and the docs all read them from here."""

from __future__ import annotations

from decimal import Decimal

# e.g. SKU-TEA-001: upper-case letters, digits and dashes, 3-64 characters.
SKU_PATTERN = r"^[A-Z0-9][A-Z0-9-]{2,63}$"
# An opaque id chosen by the channel (a user name, an account id, an e-mail address).
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
# Order ids are UUIDs in practice; the pattern is what every path and key accepts.
ORDER_ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
DEFAULT_CURRENCY = "EUR"

MAX_QUANTITY = 100  # units of one SKU in one order
MAX_ITEMS = 50  # lines of one order
MAX_UNIT_PRICE = Decimal("100000")
CENT = Decimal("0.01")  # prices and totals are whole cents

MAX_IDEMPOTENCY_KEY_LENGTH = 128
MAX_REASON_LENGTH = 500
