"""Checkout steps (Step Functions tasks), as plain functions over the repositories.

Step Functions may run a step more than once (a retry after a timeout, a redriven execution), so every
step is idempotent: reservations and charges are recorded with conditional writes and a replay returns
the first outcome. Business failures raise the exceptions whose names the state machine catches.
"""

from __future__ import annotations

import uuid
from typing import Any

from checkout.domain import authorize_payment, shipping_quote
from checkout.models import CheckoutState, ItemStep, MarkOrderStep, Payment, RefundStep
from checkout.repository import Payments
from contracts.events import ORDER_SHIPPED, LedgerEvent, LedgerEventType, OrderEvent
from contracts.orders import OrderStatus
from inventory.repository import Stock
from orders.repository import OrderRecords
from plumbing.events import publish_order_event, send_ledger_event
from plumbing.orders_table import utc_now

# Namespace of the simulated gateway's ids: the same order always gets the same charge id.
_CHARGE_NAMESPACE = uuid.UUID("6f1f4d1e-9a55-4d7c-8f61-2f0f3c8d5b10")


def _ledger_event(event_type: LedgerEventType, order_id: str, step: str, **fields: Any) -> LedgerEvent:
    suffix = f":{fields['sku']}" if fields.get("sku") else ""
    return LedgerEvent(
        event_id=f"{order_id}:{step}{suffix}",
        event_type=event_type,
        order_id=order_id,
        occurred_at=utc_now(),
        **fields,
    )


def reserve(step: ItemStep, inventory: Stock, ledger_queue_url: str) -> dict[str, Any]:
    """Hold stock for one item; OutOfStock when there is not enough. The ledger event is sent on a
    replay too: the first attempt may have stopped between the reservation and the send (SQS
    deduplication and the ledger's idempotency keep it single)."""
    newly_reserved = inventory.reserve(step.order_id, step.sku, step.quantity)
    send_ledger_event(
        ledger_queue_url, _ledger_event("ItemReserved", step.order_id, "reserve", sku=step.sku, quantity=step.quantity)
    )
    return {"sku": step.sku, "quantity": step.quantity, "replayed": not newly_reserved}


def release(step: ItemStep, inventory: Stock, ledger_queue_url: str) -> dict[str, Any]:
    """Give the item's stock back, if this order holds it. Compensation calls this for every item,
    including ones never reserved or already shipped; those change nothing and send nothing."""
    released = inventory.release(step.order_id, step.sku, step.quantity)
    if released:
        send_ledger_event(
            ledger_queue_url,
            _ledger_event("ItemReleased", step.order_id, "release", sku=step.sku, quantity=step.quantity),
        )
    return {"sku": step.sku, "quantity": step.quantity, "released": released}


def charge(state: CheckoutState, payments: Payments, ledger_queue_url: str) -> dict[str, Any]:
    """Charge the order total once. Every attempt is counted first (the simulated gateway's flaky
    tokens depend on it); a declined card raises PaymentDeclined, an unavailable gateway
    PaymentGatewayUnavailable (retried by the state machine)."""
    existing = payments.get(state.order_id)
    if existing is None:
        attempt = payments.next_attempt(state.order_id)
        authorize_payment(state.order_id, state.payment_token, attempt)
        payment = Payment(
            charge_id=f"ch_{uuid.uuid5(_CHARGE_NAMESPACE, state.order_id).hex}",
            amount=state.total,
            currency=state.currency,
            status="CHARGED",
        )
        existing = payments.record(state.order_id, payment)
    send_ledger_event(
        ledger_queue_url,
        _ledger_event(
            "PaymentCharged",
            state.order_id,
            "charge",
            amount=existing.amount,
            currency=existing.currency,
            correlation_id=state.correlation_id,
        ),
    )
    return existing.model_dump(mode="json")


def refund(step: RefundStep, payments: Payments, ledger_queue_url: str) -> dict[str, Any]:
    """Refund the recorded charge once (the stored charge is the truth, not the step's input)."""
    charged = payments.get(step.order_id)
    if charged is None:
        return {"charge_id": step.payment.charge_id if step.payment else None, "status": "NOT_CHARGED"}
    refunded_now = payments.refund(step.order_id)
    if refunded_now:
        send_ledger_event(
            ledger_queue_url,
            _ledger_event("PaymentRefunded", step.order_id, "refund", amount=charged.amount, currency=charged.currency),
        )
    return {
        "charge_id": charged.charge_id,
        "amount": float(charged.amount),
        "status": "REFUNDED",
        "replayed": not refunded_now,
    }


def quote(state: CheckoutState) -> dict[str, Any]:
    units = sum(item.quantity for item in state.items)
    amount = shipping_quote(state.total, units)
    return {"amount": float(amount), "currency": state.currency, "carrier": "standard", "estimated_days": 3}


def ship(state: CheckoutState, inventory: Stock, ledger_queue_url: str, topic_arn: str) -> dict[str, Any]:
    """Hand the order to the carrier: every item's reserved units leave the warehouse (one commit
    transaction per item, each with an ItemShipped ledger event), then tell everyone (OrderShipped).

    A replay commits nothing twice: units committed before are skipped, and their ledger events and
    OrderShipped are sent again (the first attempt may have stopped before sending; SQS deduplication,
    the ledger's idempotency and the consumers' idempotency keep each one single). An item this order
    does not hold raises ReservationNotHeld."""
    committed = 0
    for item in state.stock:
        if inventory.commit(state.order_id, item.sku, item.quantity):
            committed += 1
        send_ledger_event(
            ledger_queue_url,
            _ledger_event(
                "ItemShipped",
                state.order_id,
                "ship",
                sku=item.sku,
                quantity=item.quantity,
                correlation_id=state.correlation_id,
            ),
        )
    event = OrderEvent.of(state, ORDER_SHIPPED, state.correlation_id or state.order_id)
    publish_order_event(topic_arn, event)
    return {
        "tracking_number": f"TRK-{uuid.uuid5(_CHARGE_NAMESPACE, 'ship:' + state.order_id).hex[:12].upper()}",
        "shipped_at": utc_now().isoformat(),
        "items_committed": committed,
        "items_replayed": len(state.stock) - committed,
    }


def mark(step: MarkOrderStep, orders: OrderRecords) -> dict[str, Any]:
    changed = orders.set_status(step.order_id, OrderStatus(step.status), reason=step.reason)
    return {"order_id": step.order_id, "status": step.status, "changed": changed}
