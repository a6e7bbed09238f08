"""The order record's repository: every change is a conditional write, and a failed condition is
translated into a domain outcome (already there, not found, not allowed) instead of a botocore error."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from contracts.errors import InvalidStatusTransition, OrderNotFound
from contracts.orders import Order, OrderStatus
from contracts.tables import order_key
from orders.lifecycle import CHECKOUT_ALLOWED, check_transition, sources_of
from plumbing import aws
from plumbing.orders_table import condition_failed, iso, put_once, to_item, utc_now

CUSTOMER_CANCELLED = "CustomerCancelled"


class OrderRecords:
    """The order record (`ORDER#<id>` / `META`): created once, then moved along its lifecycle."""

    def __init__(self, table_name: str) -> None:
        self.table = aws.table(table_name)

    # --- order record -------------------------------------------------------------------------

    def create(self, order: Order) -> bool:
        """Record a new order; False when it exists already (a duplicate delivery has no effect)."""
        return put_once(self.table, to_item(order, **order_key(order.order_id)))

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
        values: dict[str, Any] = {":target": target.value, ":now": iso(utc_now())}
        update = "SET #status = :target, updated_at = :now"
        if reason:
            update += ", cancel_reason = :reason"
            values[":reason"] = reason
        sources = sources_of(target)
        condition = Attr("pk").exists() & Attr("status").is_in([s.value for s in sources])
        return self._conditional_update(order_id, target, update, names, values, condition)

    def cancel_by_customer(self, order_id: str) -> bool:
        """Customer cancellation: allowed only while RECEIVED and before a checkout has started. False when
        the customer cancelled it before (a retried request: the caller announces it again)."""
        condition = (
            Attr("pk").exists()
            & Attr("status").eq(OrderStatus.RECEIVED.value)
            & Attr("checkout_execution_arn").not_exists()
        )
        return self._conditional_update(
            order_id,
            OrderStatus.CANCELLED,
            "SET #status = :target, updated_at = :now, cancel_reason = :reason",
            {"#status": "status"},
            {":target": OrderStatus.CANCELLED.value, ":now": iso(utc_now()), ":reason": CUSTOMER_CANCELLED},
            condition,
            same_reason=CUSTOMER_CANCELLED,  # cancelled by anything else (a failed checkout) is a 409
        )

    def start_checkout(self, order_id: str, execution_arn: str) -> bool:
        """Note the checkout execution on the order (at most one per order); False when it was noted
        before. Refused once the order is CANCELLED or COMPLETED; from now on a customer cannot cancel."""
        try:
            result = self.table.update_item(
                Key=order_key(order_id),
                UpdateExpression="SET checkout_execution_arn = if_not_exists(checkout_execution_arn, :arn)",
                ConditionExpression=Attr("pk").exists()
                & Attr("status").is_in([status.value for status in CHECKOUT_ALLOWED]),
                ExpressionAttributeValues={":arn": execution_arn},
                ReturnValues="ALL_OLD",
            )
            return "checkout_execution_arn" not in result["Attributes"]
        except ClientError as error:
            if not condition_failed(error):
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
        same_reason: str | None = None,
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
            if not condition_failed(error):
                raise
        # The condition failed: find out why, from a consistent read.
        current = self.get(order_id)
        if current is None:
            raise OrderNotFound(order_id)
        if current.status == target and (same_reason is None or current.cancel_reason == same_reason):
            return False
        if current.checkout_execution_arn and current.status == OrderStatus.RECEIVED:
            raise InvalidStatusTransition(order_id, current.status, target, why=" and its checkout has started")
        check_transition(order_id, current.status, target)  # raises: the lifecycle forbids it
        raise InvalidStatusTransition(order_id, current.status, target)
