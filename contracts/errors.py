"""Exceptions whose class name IS the contract.

Lambda reports an exception's class name as `errorType`, and the checkout state machine matches those
names in its Retry and Catch rules: stacks/workflow_stack.py takes them from these classes
(`PaymentDeclined.__name__`), so renaming one changes both sides and a fast test notices a mismatch.
"""

from __future__ import annotations


class StorefrontError(Exception):
    """Base of every error raised on purpose by storefront code."""


# --- Step Functions error names (business errors caught, transient errors retried) -------------------


class PaymentDeclined(StorefrontError):
    """The card was declined: a business outcome, compensated (never retried)."""


class OutOfStock(StorefrontError):
    """Not enough stock to reserve an item: a business outcome, compensated (never retried)."""


class PaymentGatewayUnavailable(StorefrontError):
    """The payment gateway could not be reached: transient, the state machine retries with backoff."""


class ApprovalRejected(StorefrontError):
    """A human rejected a large order. Sent with SendTaskFailure, never raised by a task Lambda."""


class ReservationNotHeld(StorefrontError):
    """ship_order found no reservation of this order for an item (never reserved, released, or another
    quantity): nothing to ship from. Not retried; the catch-all compensates the checkout."""


# Business outcomes a checkout compensates without retrying (the state machine's Catch lists).
BUSINESS_ERRORS: tuple[type[StorefrontError], ...] = (PaymentDeclined, OutOfStock)
# Transient failures the state machine retries with backoff.
TRANSIENT_ERRORS: tuple[type[StorefrontError], ...] = (PaymentGatewayUnavailable,)


# --- errors the APIs and consumers translate (HTTP status, retry) --------------------------------------


class OrderNotFound(StorefrontError):
    """No order record (yet): 404 for the API; for a consumer a retry, since the record may still be
    on its way through the fan-out."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} not found")
        self.order_id = order_id


class InvalidStatusTransition(StorefrontError):
    """The order's current status does not allow the requested change (HTTP 409)."""

    def __init__(self, order_id: str, current: str | None, target: str, why: str = "") -> None:
        super().__init__(f"order {order_id} is {current}{why}; it cannot become {target}")
        self.order_id, self.current, self.target = order_id, current, target


class ApprovalNotPending(StorefrontError):
    """There is no approval waiting for a decision for this order (HTTP 404)."""


class ApprovalAlreadyDecided(StorefrontError):
    """Somebody decided this approval already, or its task has ended (HTTP 409)."""
