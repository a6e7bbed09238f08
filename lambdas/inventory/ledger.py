"""Inventory ledger: an append-only history of stock and payment movements, in FIFO order."""

from __future__ import annotations

from contracts.events import LedgerEvent
from inventory.repository import Ledger


def record(event: LedgerEvent, sequence: str, ledger: Ledger) -> dict[str, str]:
    """Append the event under `LEDGER#<sku>` (or `LEDGER#ORDER#<id>` for payments), keyed by its SQS
    sequence number, so the ledger reads back in the order the queue delivered it. A redelivered
    message has the same sequence number and is written once."""
    written = ledger.append(event, sequence)
    return {"event_id": event.event_id, "outcome": "recorded" if written else "already recorded"}
