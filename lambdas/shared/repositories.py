"""Thin DynamoDB wrappers. Every write that must not happen twice (or must not race) is a conditional
write, so correctness never depends on a read-then-write; a failed condition is translated into a
domain outcome (already done, not found, not allowed) instead of leaking botocore errors.

Orders table (single-table design, docs/design.md):
    ORDER#<id> / META | NOTIFICATION | APPROVAL | PAYMENT | RESERVATION#<sku>
    ANALYTICS#<yyyy-mm-dd> / <event_type>, LEDGER#<sku> / <seq>, HANDOFF#<key> / INGESTED
PAYMENT keeps the simulated gateway's attempt count and the charge; RESERVATION#<sku> marks what a
checkout holds (and, once `shipped_at` is set, what it shipped), which makes reserve, release and commit
idempotent, lets compensation release only what was really reserved and never what has shipped.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterator

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from shared import aws
from shared.domain import OrderStatus, check_transition, sources_of
from shared.errors import (
    ApprovalAlreadyDecided,
    ApprovalNotPending,
    InvalidStatusTransition,
    OrderNotFound,
    OutOfStock,
    ReservationNotHeld,
)
from shared.models import LedgerEvent, Order, Payment, to_item, utc_now

META = "META"
NOTIFICATION = "NOTIFICATION"
APPROVAL = "APPROVAL"
PAYMENT = "PAYMENT"
INGESTED = "INGESTED"
APPROVAL_PENDING = "PENDING"
# Decided approvals, notifications and payment records stay for audits this long, then expire (TTL).
AUDIT_RETENTION = timedelta(days=90)
# A transaction cancelled only because another one held an item (TransactionConflict: hot SKUs) changed
# nothing and is tried again, this many times in all, after a short jittered pause.
# A reservation marker this order still holds, for exactly this quantity, not shipped yet.
HELD_NOT_SHIPPED = "attribute_exists(pk) AND quantity = :q AND attribute_not_exists(shipped_at)"
TRANSACTION_ATTEMPTS = 4
TRANSACTION_CONFLICT_PAUSE_SECONDS = 0.05


def order_key(order_id: str, sort_key: str = META) -> dict[str, str]:
    return {"pk": f"ORDER#{order_id}", "sk": sort_key}


def _condition_failed(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _expiry(moment: datetime) -> int:
    return int((moment + AUDIT_RETENTION).timestamp())


class OrdersRepository:
    """Orders and everything kept in the orders partition (notifications, approvals, payments)."""

    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    # --- order record -------------------------------------------------------------------------

    def create(self, order: Order) -> bool:
        """Record a new order; False when it exists already (a duplicate delivery has no effect)."""
        return self._put_once(to_item(order, **order_key(order.order_id)))

    def get(self, order_id: str) -> Order | None:
        item = self.table.get_item(Key=order_key(order_id), ConsistentRead=True).get("Item")
        return Order.model_validate(item) if item else None

    def require(self, order_id: str) -> Order:
        order = self.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    def set_status(self, order_id: str, target: OrderStatus, *, reason: str | None = None) -> bool:
        """Move the order to `target` if the lifecycle allows it. False when it already is there (retries
        are no-ops); raises OrderNotFound or InvalidStatusTransition otherwise."""
        names = {"#status": "status"}
        values: dict[str, Any] = {":target": target.value, ":now": _iso(utc_now())}
        update = "SET #status = :target, updated_at = :now"
        if reason:
            update += ", cancel_reason = :reason"
            values[":reason"] = reason
        sources = sources_of(target)
        condition = Attr("pk").exists() & Attr("status").is_in([s.value for s in sources])
        return self._conditional_update(order_id, target, update, names, values, condition)

    def cancel_by_customer(self, order_id: str) -> None:
        """Customer cancellation: allowed only while RECEIVED and before a checkout has started."""
        condition = (
            Attr("pk").exists()
            & Attr("status").eq(OrderStatus.RECEIVED.value)
            & Attr("checkout_execution_arn").not_exists()
        )
        self._conditional_update(
            order_id,
            OrderStatus.CANCELLED,
            "SET #status = :target, updated_at = :now, cancel_reason = :reason",
            {"#status": "status"},
            {":target": OrderStatus.CANCELLED.value, ":now": _iso(utc_now()), ":reason": "CustomerCancelled"},
            condition,
            already_is_conflict=True,  # a second DELETE is a 409, as is any other status
        )

    def start_checkout(self, order_id: str, execution_arn: str) -> bool:
        """Note the checkout execution on the order (at most one per order); False when it was noted
        before. Refused once the order is CANCELLED or COMPLETED; from now on a customer cannot cancel."""
        try:
            result = self.table.update_item(
                Key=order_key(order_id),
                UpdateExpression="SET checkout_execution_arn = if_not_exists(checkout_execution_arn, :arn)",
                ConditionExpression=Attr("pk").exists()
                & Attr("status").is_in([OrderStatus.RECEIVED.value, OrderStatus.CONFIRMED.value]),
                ExpressionAttributeValues={":arn": execution_arn},
                ReturnValues="ALL_OLD",
            )
            return "checkout_execution_arn" not in result["Attributes"]
        except ClientError as error:
            if not _condition_failed(error):
                raise
            current = self.require(order_id)
            raise InvalidStatusTransition(order_id, current.status, "checked out") from None

    def _conditional_update(
        self,
        order_id: str,
        target: OrderStatus,
        update: str,
        names: dict[str, str],
        values: dict[str, Any],
        condition: Any,
        *,
        already_is_conflict: bool = False,
    ) -> bool:
        try:
            self.table.update_item(
                Key=order_key(order_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as error:
            if not _condition_failed(error):
                raise
        # The condition failed: find out why, from a consistent read.
        current = self.get(order_id)
        if current is None:
            raise OrderNotFound(order_id)
        if current.status == target and not already_is_conflict:
            return False
        if current.checkout_execution_arn and current.status == OrderStatus.RECEIVED:
            raise InvalidStatusTransition(order_id, current.status, target, why=" and its checkout has started")
        check_transition(order_id, current.status, target)  # raises: the lifecycle forbids it
        raise InvalidStatusTransition(order_id, current.status, target)

    # --- notifications -------------------------------------------------------------------------

    def append_notification(self, order_id: str, customer_id: str, event_type: str, text: str) -> None:
        now = utc_now()
        self.table.update_item(
            Key=order_key(order_id, NOTIFICATION),
            UpdateExpression=(
                "SET customer_id = :customer, messages = list_append(if_not_exists(messages, :empty), :message), "
                "updated_at = :now, expires_at = :expires"
            ),
            ExpressionAttributeValues={
                ":customer": customer_id,
                ":empty": [],
                ":message": [{"event_type": event_type, "text": text, "sent_at": _iso(now)}],
                ":now": _iso(now),
                ":expires": _expiry(now),
            },
        )

    def notifications(self, order_id: str) -> list[dict[str, Any]]:
        item = self.table.get_item(Key=order_key(order_id, NOTIFICATION), ConsistentRead=True).get("Item") or {}
        return item.get("messages", [])

    # --- analytics counters ------------------------------------------------------------------------

    def count_event(self, day: str, event_type: str, amount: Decimal | None) -> None:
        """ADD is atomic but not idempotent: callers must make sure an event is counted once."""
        update = "ADD event_count :one"
        values: dict[str, Any] = {":one": 1}
        if amount is not None:
            update += ", amount :amount"
            values[":amount"] = amount
        self.table.update_item(
            Key={"pk": f"ANALYTICS#{day}", "sk": event_type}, UpdateExpression=update, ExpressionAttributeValues=values
        )

    def counters(self, day: str, event_type: str) -> dict[str, Any]:
        return self.table.get_item(Key={"pk": f"ANALYTICS#{day}", "sk": event_type}, ConsistentRead=True).get("Item") or {}

    # --- approvals ---------------------------------------------------------------------------------

    def put_approval(self, order_id: str, task_token: str) -> None:
        """Store (or replace, when Step Functions retried the task) the token of a pending approval."""
        now = utc_now()
        self.table.put_item(
            Item={
                **order_key(order_id, APPROVAL),
                "task_token": task_token,
                "requested_at": _iso(now),
                "approval_status": APPROVAL_PENDING,
                "expires_at": _expiry(now),
            }
        )

    def pending_approvals(self) -> Iterator[dict[str, Any]]:
        """Every pending approval. A filtered Scan: fine for a handful of approvals awaiting a human;
        a large deployment would add a sparse GSI on `approval_status` instead."""
        kwargs: dict[str, Any] = {
            "FilterExpression": Attr("sk").eq(APPROVAL) & Attr("approval_status").eq(APPROVAL_PENDING),
            "ProjectionExpression": "pk, requested_at",
        }
        while True:
            page = self.table.scan(**kwargs)
            for item in page.get("Items", []):
                yield {"order_id": item["pk"].removeprefix("ORDER#"), "requested_at": item["requested_at"]}
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def claim_approval(self, order_id: str, decision: str) -> str:
        """Atomically take a pending approval out of PENDING and return its task token, so that two
        concurrent decisions cannot both reach Step Functions."""
        try:
            result = self.table.update_item(
                Key=order_key(order_id, APPROVAL),
                UpdateExpression="SET approval_status = :decision, decided_at = :now",
                ConditionExpression=Attr("approval_status").eq(APPROVAL_PENDING),
                ExpressionAttributeValues={":decision": decision, ":now": _iso(utc_now())},
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if not _condition_failed(error):
                raise
            exists = self.table.get_item(Key=order_key(order_id, APPROVAL), ConsistentRead=True).get("Item")
            if exists is None:
                raise ApprovalNotPending(f"no approval is pending for order {order_id}") from None
            raise ApprovalAlreadyDecided(
                f"the approval of order {order_id} is already {exists['approval_status']}"
            ) from None
        return result["Attributes"]["task_token"]

    def unclaim_approval(self, order_id: str, decision: str) -> None:
        """Put a claimed approval back to PENDING (Step Functions could not be told; try again later)."""
        self.table.update_item(
            Key=order_key(order_id, APPROVAL),
            UpdateExpression="SET approval_status = :pending REMOVE decided_at",
            ConditionExpression=Attr("approval_status").eq(decision),
            ExpressionAttributeValues={":pending": APPROVAL_PENDING, ":decision": decision},
        )

    def close_approval(self, order_id: str, status: str) -> None:
        self.table.update_item(
            Key=order_key(order_id, APPROVAL),
            UpdateExpression="SET approval_status = :status",
            ExpressionAttributeValues={":status": status},
        )

    def approval(self, order_id: str) -> dict[str, Any] | None:
        return self.table.get_item(Key=order_key(order_id, APPROVAL), ConsistentRead=True).get("Item")

    # --- payments -------------------------------------------------------------------------------------

    def next_charge_attempt(self, order_id: str) -> int:
        """Count one more charge attempt (atomic ADD) and return the new count, 1 for the first."""
        result = self.table.update_item(
            Key=order_key(order_id, PAYMENT),
            UpdateExpression="ADD attempts :one SET expires_at = if_not_exists(expires_at, :expires)",
            ExpressionAttributeValues={":one": 1, ":expires": _expiry(utc_now())},
            ReturnValues="UPDATED_NEW",
        )
        return int(result["Attributes"]["attempts"])

    def record_charge(self, order_id: str, payment: Payment) -> Payment:
        """Keep the first successful charge; a retried step gets that charge back instead of a second one."""
        try:
            self.table.update_item(
                Key=order_key(order_id, PAYMENT),
                UpdateExpression="SET charge = :charge",
                ConditionExpression=Attr("charge").not_exists(),
                ExpressionAttributeValues={":charge": to_item(payment)},
            )
            return payment
        except ClientError as error:
            if not _condition_failed(error):
                raise
        return self.charge(order_id)  # type: ignore[return-value]

    def charge(self, order_id: str) -> Payment | None:
        item = self.table.get_item(Key=order_key(order_id, PAYMENT), ConsistentRead=True).get("Item") or {}
        return Payment.model_validate(item["charge"]) if "charge" in item else None

    def record_refund(self, order_id: str) -> bool:
        """Mark the charge refunded; False when it already was (or was never charged)."""
        try:
            self.table.update_item(
                Key=order_key(order_id, PAYMENT),
                UpdateExpression="SET charge.#status = :refunded, refunded_at = :now",
                ConditionExpression=Attr("charge.status").eq("CHARGED"),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":refunded": "REFUNDED", ":now": _iso(utc_now())},
            )
            return True
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise

    # --- ledger and hand-off -------------------------------------------------------------------------

    def put_ledger_entry(self, event: LedgerEvent, sequence: str) -> bool:
        """One entry per FIFO message, sorted by its SQS sequence number (zero-padded: sorts as text)."""
        return self._put_once(to_item(event, pk=event.ledger_key, sk=sequence.zfill(40)))

    def ledger(self, ledger_key: str) -> list[dict[str, Any]]:
        return self.table.query(KeyConditionExpression=Key("pk").eq(ledger_key), ConsistentRead=True)["Items"]

    def put_handoff(self, key: str, etag: str, records: list[dict[str, Any]]) -> bool:
        """Record an ingested hand-off object once (False: ingested before, only its delete had failed)."""
        return self._put_once({
            "pk": f"HANDOFF#{key}",
            "sk": INGESTED,
            "etag": etag,
            "record_count": len(records),
            "records": records,
            "ingested_at": _iso(utc_now()),
        })

    def _put_once(self, item: dict[str, Any]) -> bool:
        """Write an item that must not exist yet; False when it does (a replay writes nothing)."""
        try:
            self.table.put_item(Item=item, ConditionExpression=Attr("pk").not_exists())
            return True
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise


class InventoryRepository:
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
                "Item": {**order_key(order_id, f"RESERVATION#{sku}"), "quantity": quantity,
                         "reserved_at": _iso(utc_now()), "expires_at": _expiry(utc_now())},
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
                "Key": order_key(order_id, f"RESERVATION#{sku}"),
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
        marker_key = order_key(order_id, f"RESERVATION#{sku}")
        marker = {
            "Update": {
                "TableName": self.orders_table_name,
                "Key": marker_key,
                "UpdateExpression": "SET shipped_at = :now",
                "ConditionExpression": HELD_NOT_SHIPPED,
                "ExpressionAttributeValues": {":q": quantity, ":now": _iso(utc_now())},
            }
        }
        reasons = self._transact([marker, self._take_from_reserved(sku, quantity)])
        if reasons is None:
            return True
        if reasons[0] == "ConditionalCheckFailed":
            # Find out why, from a consistent read: shipped before (a replay), or nothing to ship.
            held = aws.table(self.orders_table_name).get_item(Key=marker_key, ConsistentRead=True).get("Item")
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
