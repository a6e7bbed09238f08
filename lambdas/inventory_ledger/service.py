"""Inventory ledger: an append-only history of stock and payment movements, in FIFO order."""

from __future__ import annotations

from shared.models import LedgerEvent
from shared.repositories import OrdersRepository


def record(event: LedgerEvent, sequence: str, orders: OrdersRepository) -> dict[str, str]:
    """Append the event under `LEDGER#<sku>` (or `LEDGER#ORDER#<id>` for payments), keyed by its SQS
    sequence number, so the ledger reads back in the order the queue delivered it. A redelivered
    message has the same sequence number and is written once."""
    written = orders.put_ledger_entry(event, sequence)
    return {"event_id": event.event_id, "outcome": "recorded" if written else "already recorded"}
