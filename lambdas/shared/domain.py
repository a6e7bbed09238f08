"""Order rules as plain functions: totals, status transitions, payment simulation, shipping quotes.

Nothing here talks to AWS, so every rule is unit-testable (and property-testable) on its own.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Iterable, Protocol

from shared.errors import InvalidStatusTransition, PaymentDeclined, PaymentGatewayUnavailable

CENT = Decimal("0.01")


def to_money(amount: Decimal) -> Decimal:
    """Round to cents the way a receipt does (half up), so every service computes the same total."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


class PricedLine(Protocol):
    quantity: int
    unit_price: Decimal


def order_total(items: Iterable[PricedLine]) -> Decimal:
    """Sum of quantity x unit price, in exact decimal arithmetic (never float)."""
    return to_money(sum((Decimal(item.quantity) * item.unit_price for item in items), Decimal("0")))


# --- status lifecycle ---------------------------------------------------------------------------------


class OrderStatus(StrEnum):
    RECEIVED = "RECEIVED"  # recorded by the fulfilment consumer, still inside the cancel grace period
    CONFIRMED = "CONFIRMED"  # grace period over (order finaliser)
    COMPLETED = "COMPLETED"  # checkout shipped it
    CANCELLED = "CANCELLED"  # by the customer (DELETE) or by checkout compensation


# Which status may follow which. A checkout may finish inside the grace period, hence RECEIVED -> COMPLETED;
# COMPLETED and CANCELLED are final.
ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.RECEIVED: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.COMPLETED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.COMPLETED, OrderStatus.CANCELLED}),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


def sources_of(target: OrderStatus) -> list[OrderStatus]:
    """Statuses from which `target` may be reached (the condition of the conditional write)."""
    return sorted(status for status, targets in ALLOWED_TRANSITIONS.items() if target in targets)


def check_transition(order_id: str, current: OrderStatus | str | None, target: OrderStatus) -> bool:
    """True when the order must change, False when it already has `target` (a retried step is a no-op);
    raises InvalidStatusTransition when the lifecycle forbids the change."""
    if current == target:
        return False
    if current is None or target not in ALLOWED_TRANSITIONS.get(OrderStatus(current), frozenset()):
        raise InvalidStatusTransition(order_id, current, target)
    return True


# --- payment simulation (test hooks of docs/design.md) ---------------------------------------------------

DECLINED_CARD_SUFFIX = "0002"  # like the well-known test card 4000 0000 0000 0002
_FLAKY_TOKEN = re.compile(r"^flaky-(?P<failures>\d{1,2})$")


def card_token(card_number: str) -> str:
    """Tokenise a card number: only the last four digits survive, so no card number is ever stored."""
    return f"card-{card_number[-4:]}"


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
