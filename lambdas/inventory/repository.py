"""Stock and its movements.

`Stock`: units per SKU in the inventory table (`on_hand` free to reserve, `reserved` held by checkouts),
moved in one transaction with a marker in the orders table (`ORDER#<id>` / `RESERVATION#<sku>`), which
makes reserve, release and commit idempotent, lets compensation release only what was really reserved
and never what has shipped. `Ledger`: the FIFO history (`LEDGER#<sku>`, `LEDGER#ORDER#<id>`).
"""

from __future__ import annotations

import random
import time
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from contracts.errors import OutOfStock, ReservationNotHeld
from contracts.events import LedgerEvent
from contracts.tables import order_key
from plumbing import aws
from plumbing.orders_table import expiry, iso, put_once, to_item, utc_now

# A reservation marker this order still holds, for exactly this quantity, not shipped yet.
HELD_NOT_SHIPPED = "attribute_exists(pk) AND quantity = :q AND attribute_not_exists(shipped_at)"
# A transaction cancelled only because another one held an item (TransactionConflict: hot SKUs) changed
# nothing and is tried again, this many times in all, after a short jittered pause.
TRANSACTION_ATTEMPTS = 4
TRANSACTION_CONFLICT_PAUSE_SECONDS = 0.05


def reservation_key(order_id: str, sku: str) -> dict[str, str]:
    return order_key(order_id, f"RESERVATION#{sku}")


class Stock:
    """Stock per SKU. `on_hand` counts units free to reserve, `reserved` units held by checkouts.

    A reservation moves units between the two in one transaction with a marker item in the orders
    table (ORDER#<id> / RESERVATION#<sku>): reserving twice or releasing twice changes stock once, and
    releasing an item that was never reserved (compensation after OutOfStock) changes nothing. When the
    order ships, commit takes the held units out of `reserved` (they leave the warehouse) and marks the
    marker shipped, again in one transaction: committing twice changes stock once, and a shipped
    reservation can no longer be released.
    """

    def __init__(self, inventory_table: str, orders_table: str) -> None:
        self.table = aws.table(inventory_table)
        self.orders_table = aws.table(orders_table)
        self.orders_table_name = orders_table

    def put_stock(self, sku: str, on_hand: int) -> None:
        self.table.put_item(Item={"sku": sku, "on_hand": on_hand, "reserved": 0})

    def stock(self, sku: str) -> dict[str, int]:
        item = self.table.get_item(Key={"sku": sku}, ConsistentRead=True).get("Item") or {}
        return {"on_hand": int(item.get("on_hand", 0)), "reserved": int(item.get("reserved", 0))}

    def reserve(self, order_id: str, sku: str, quantity: int) -> bool:
        """Hold `quantity` units for the order. False if this order holds them already; OutOfStock if
        fewer than `quantity` units are free (or the SKU is unknown)."""
        marker = {
            "Put": {
                "TableName": self.orders_table_name,
                "Item": {
                    **reservation_key(order_id, sku),
                    "quantity": quantity,
                    "reserved_at": iso(utc_now()),
                    "expires_at": expiry(utc_now()),
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        stock = {
            "Update": {
                "TableName": self.table.name,
                "Key": {"sku": sku},
                "UpdateExpression": "SET on_hand = on_hand - :q, reserved = if_not_exists(reserved, :zero) + :q",
                "ConditionExpression": "on_hand >= :q",
                "ExpressionAttributeValues": {":q": quantity, ":zero": 0},
            }
        }
        reasons = self._transact([marker, stock])
        if reasons is None:
            return True
        if reasons[0] == "ConditionalCheckFailed":
            return False
        if reasons[1] == "ConditionalCheckFailed":
            raise OutOfStock(f"not enough stock of {sku} to reserve {quantity} for order {order_id}")
        raise RuntimeError(f"reservation of {sku} for order {order_id} cancelled: {reasons}")

    def release(self, order_id: str, sku: str, quantity: int) -> bool:
        """Give held units back; False when this order holds none of that SKU (released, never held, or
        shipped already: shipped units are not in the warehouse any more)."""
        marker = {
            "Delete": {
                "TableName": self.orders_table_name,
                "Key": reservation_key(order_id, sku),
                "ConditionExpression": HELD_NOT_SHIPPED,
                "ExpressionAttributeValues": {":q": quantity},
            }
        }
        reasons = self._transact([marker, self._take_from_reserved(sku, quantity, "on_hand = on_hand + :q, ")])
        if reasons is None:
            return True
        if reasons[0] == "ConditionalCheckFailed":
            return False
        raise RuntimeError(f"release of {sku} for order {order_id} cancelled: {reasons}")

    def commit(self, order_id: str, sku: str, quantity: int) -> bool:
        """The order shipped: its held units leave the warehouse. One transaction marks the marker
        shipped (`shipped_at`; condition: it exists with the same quantity and has not shipped) and takes
        the quantity out of `reserved` (`reserved >= q`); `on_hand` is not touched, the units were taken
        out of it when they were reserved. False when these units shipped before (a replay changes
        nothing); ReservationNotHeld when the order holds no such reservation."""
        marker_key = reservation_key(order_id, sku)
        marker = {
            "Update": {
                "TableName": self.orders_table_name,
                "Key": marker_key,
                "UpdateExpression": "SET shipped_at = :now",
                "ConditionExpression": HELD_NOT_SHIPPED,
                "ExpressionAttributeValues": {":q": quantity, ":now": iso(utc_now())},
            }
        }
        reasons = self._transact([marker, self._take_from_reserved(sku, quantity)])
        if reasons is None:
            return True
        if reasons[0] == "ConditionalCheckFailed":
            # Find out why, from a consistent read: shipped before (a replay), or nothing to ship.
            held = self.orders_table.get_item(Key=marker_key, ConsistentRead=True).get("Item")
            if held and "shipped_at" in held and int(held["quantity"]) == quantity:
                return False
            raise ReservationNotHeld(
                f"order {order_id} holds no reservation of {quantity} x {sku} to ship"
                + (f" (it holds {held['quantity']})" if held else "")
            )
        raise RuntimeError(f"commit of {sku} for order {order_id} cancelled: {reasons}")

    def _take_from_reserved(self, sku: str, quantity: int, also_set: str = "") -> dict[str, Any]:
        """The stock half of a release (`also_set` puts the units back on hand) or a commit."""
        return {
            "Update": {
                "TableName": self.table.name,
                "Key": {"sku": sku},
                "UpdateExpression": f"SET {also_set}reserved = reserved - :q",
                "ConditionExpression": "reserved >= :q",
                "ExpressionAttributeValues": {":q": quantity},
            }
        }

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """Run a transaction; None on success, else the cancellation reason code of each item. A
        transaction cancelled only by a conflict with another one (nothing was written) is tried again."""
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                self.table.meta.client.transact_write_items(TransactItems=items)
                return None
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [reason.get("Code", "None") for reason in error.response.get("CancellationReasons", [])]
            if "TransactionConflict" not in reasons or "ConditionalCheckFailed" in reasons:
                return reasons
            if attempt < TRANSACTION_ATTEMPTS:
                time.sleep(random.uniform(0, TRANSACTION_CONFLICT_PAUSE_SECONDS * 2**attempt))  # full jitter
        return reasons


class Ledger:
    """One entry per FIFO message, in the order the queue delivered them."""

    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    def append(self, event: LedgerEvent, sequence: str) -> bool:
        """One entry per FIFO message, sorted by its SQS sequence number (zero-padded: sorts as text)."""
        return put_once(self.table, to_item(event, pk=event.ledger_key, sk=sequence.zfill(40)))

    def entries(self, ledger_key: str) -> list[dict[str, Any]]:
        return self.table.query(KeyConditionExpression=Key("pk").eq(ledger_key), ConsistentRead=True)["Items"]
