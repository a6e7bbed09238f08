"""The checkout's own items in the order partition: the payment (`PAYMENT`: attempts of the simulated
gateway, the charge) and the human approval (`APPROVAL`: the task token a decision completes)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from checkout.models import Payment
from contracts.errors import ApprovalAlreadyDecided, ApprovalNotPending
from contracts.tables import ORDER_PREFIX, order_key
from plumbing import aws
from plumbing.orders_table import condition_failed, expiry, iso, to_item, utc_now

PAYMENT = "PAYMENT"
APPROVAL = "APPROVAL"
APPROVAL_PENDING = "PENDING"


class Payments:
    """One charge per order, kept with the count of attempts the simulated gateway saw."""

    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    def next_attempt(self, order_id: str) -> int:
        """Count one more charge attempt (atomic ADD) and return the new count, 1 for the first."""
        result = self.table.update_item(
            Key=order_key(order_id, PAYMENT),
            UpdateExpression="ADD attempts :one SET expires_at = if_not_exists(expires_at, :expires)",
            ExpressionAttributeValues={":one": 1, ":expires": expiry(utc_now())},
            ReturnValues="UPDATED_NEW",
        )
        return int(result["Attributes"]["attempts"])

    def record(self, order_id: str, payment: Payment) -> Payment:
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
            if not condition_failed(error):
                raise
        return self.get(order_id)  # type: ignore[return-value]

    def get(self, order_id: str) -> Payment | None:
        item = self.table.get_item(Key=order_key(order_id, PAYMENT), ConsistentRead=True).get("Item") or {}
        return Payment.model_validate(item["charge"]) if "charge" in item else None

    def refund(self, order_id: str) -> bool:
        """Mark the charge refunded; False when it already was (or was never charged)."""
        try:
            self.table.update_item(
                Key=order_key(order_id, PAYMENT),
                UpdateExpression="SET charge.#status = :refunded, refunded_at = :now",
                ConditionExpression=Attr("charge.status").eq("CHARGED"),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":refunded": "REFUNDED", ":now": iso(utc_now())},
            )
            return True
        except ClientError as error:
            if condition_failed(error):
                return False
            raise


class Approvals:
    """The pending approval of a large order; claimed atomically, so one decision reaches Step Functions."""

    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    def put(self, order_id: str, task_token: str) -> None:
        """Store (or replace, when Step Functions retried the task) the token of a pending approval."""
        now = utc_now()
        self.table.put_item(
            Item={
                **order_key(order_id, APPROVAL),
                "task_token": task_token,
                "requested_at": iso(now),
                "approval_status": APPROVAL_PENDING,
                "expires_at": expiry(now),
            }
        )

    def pending(self) -> Iterator[dict[str, Any]]:
        """Every pending approval. A filtered Scan: fine for a handful of approvals awaiting a human;
        a large deployment would add a sparse GSI on `approval_status` instead."""
        kwargs: dict[str, Any] = {
            "FilterExpression": Attr("sk").eq(APPROVAL) & Attr("approval_status").eq(APPROVAL_PENDING),
            "ProjectionExpression": "pk, requested_at",
        }
        while True:
            page = self.table.scan(**kwargs)
            for item in page.get("Items", []):
                yield {"order_id": item["pk"].removeprefix(ORDER_PREFIX), "requested_at": item["requested_at"]}
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def claim(self, order_id: str, decision: str) -> str:
        """Atomically take a pending approval out of PENDING and return its task token, so that two
        concurrent decisions cannot both reach Step Functions."""
        try:
            result = self.table.update_item(
                Key=order_key(order_id, APPROVAL),
                UpdateExpression="SET approval_status = :decision, decided_at = :now",
                ConditionExpression=Attr("approval_status").eq(APPROVAL_PENDING),
                ExpressionAttributeValues={":decision": decision, ":now": iso(utc_now())},
                ReturnValues="ALL_OLD",
            )
        except ClientError as error:
            if not condition_failed(error):
                raise
            exists = self.table.get_item(Key=order_key(order_id, APPROVAL), ConsistentRead=True).get("Item")
            if exists is None:
                raise ApprovalNotPending(f"no approval is pending for order {order_id}") from None
            raise ApprovalAlreadyDecided(
                f"the approval of order {order_id} is already {exists['approval_status']}"
            ) from None
        return result["Attributes"]["task_token"]

    def unclaim(self, order_id: str, decision: str) -> None:
        """Put a claimed approval back to PENDING (Step Functions could not be told; try again later)."""
        self.table.update_item(
            Key=order_key(order_id, APPROVAL),
            UpdateExpression="SET approval_status = :pending REMOVE decided_at",
            ConditionExpression=Attr("approval_status").eq(decision),
            ExpressionAttributeValues={":pending": APPROVAL_PENDING, ":decision": decision},
        )

    def close(self, order_id: str, status: str) -> None:
        self.table.update_item(
            Key=order_key(order_id, APPROVAL),
            UpdateExpression="SET approval_status = :status",
            ExpressionAttributeValues={":status": status},
        )

    def get(self, order_id: str) -> dict[str, Any] | None:
        return self.table.get_item(Key=order_key(order_id, APPROVAL), ConsistentRead=True).get("Item")
