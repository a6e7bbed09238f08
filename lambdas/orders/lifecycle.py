"""The order status lifecycle as a table: which status may follow which.

Nothing here talks to AWS, so every rule is unit-testable (and property-testable) on its own.
"""

from __future__ import annotations

from contracts.errors import InvalidStatusTransition
from contracts.orders import OrderStatus

# A checkout may finish inside the grace period, hence RECEIVED -> COMPLETED; a shipped (COMPLETED) order
# is DELIVERED when its carrier says so; DELIVERED and CANCELLED are final.
ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.RECEIVED: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED, OrderStatus.COMPLETED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.COMPLETED, OrderStatus.CANCELLED}),
    OrderStatus.COMPLETED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.DELIVERED: frozenset(),
}
# A checkout may start (once) while the order is still open.
CHECKOUT_ALLOWED = (OrderStatus.RECEIVED, OrderStatus.CONFIRMED)


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
