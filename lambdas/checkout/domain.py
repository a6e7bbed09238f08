"""The checkout's pure rules: the simulated payment gateway and the shipping quote.

Nothing here talks to AWS, so every rule is unit-testable (and property-testable) on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

from contracts.errors import PaymentDeclined, PaymentGatewayUnavailable
from contracts.orders import OrderItem, to_money

# --- payment simulation (test hooks of docs/design.md) ---------------------------------------------------

DECLINED_CARD_SUFFIX = "0002"  # like the well-known test card 4000 0000 0000 0002
_FLAKY_TOKEN = re.compile(r"^flaky-(?P<failures>\d{1,2})$")


def flaky_failures(payment_token: str) -> int:
    """How many times the simulated gateway fails for this token before it answers (`flaky-<n>` -> n)."""
    match = _FLAKY_TOKEN.match(payment_token)
    return int(match["failures"]) if match else 0


def authorize_payment(order_id: str, payment_token: str, attempt: int) -> None:
    """The simulated gateway's verdict for the `attempt`-th charge (1-based) of an order.

    A token of a card ending in 0002 is declined (business error: compensate); a `flaky-<n>` token is
    unavailable for its first n attempts (transient: retry). Anything else is approved.
    """
    if payment_token.endswith(DECLINED_CARD_SUFFIX):
        raise PaymentDeclined(f"card ending in {DECLINED_CARD_SUFFIX} declined for order {order_id}")
    failures = flaky_failures(payment_token)
    if attempt <= failures:
        raise PaymentGatewayUnavailable(
            f"payment gateway unavailable for order {order_id} (attempt {attempt} of {failures} simulated failures)"
        )


# --- shipping ------------------------------------------------------------------------------------------

SHIPPING_BASE = Decimal("4.90")
SHIPPING_PER_UNIT = Decimal("0.50")
FREE_SHIPPING_FROM = Decimal("100")


def shipping_quote(total: Decimal, units: int) -> Decimal:
    """A flat fee plus a per-unit fee; free from FREE_SHIPPING_FROM. Deterministic, so a retried step
    quotes the same amount."""
    if total >= FREE_SHIPPING_FROM:
        return Decimal("0.00")
    return to_money(SHIPPING_BASE + SHIPPING_PER_UNIT * units)


# --- stock -----------------------------------------------------------------------------------------


def stock_lines(items: Iterable[OrderItem]) -> list[dict[str, str | int]]:
    """What the checkout reserves, releases and ships: one line per SKU with the units of all the order's
    lines of that SKU, in the order the SKUs first appear (reservations are kept per SKU)."""
    units: dict[str, int] = {}
    for item in items:
        units[item.sku] = units.get(item.sku, 0) + item.quantity
    return [{"sku": sku, "quantity": quantity} for sku, quantity in units.items()]
