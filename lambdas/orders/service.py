"""Orders API operations, free of HTTP: place, read, cancel, check out."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from checkout.models import CheckoutState
from contracts.api import CheckoutRequest, CheckoutStarted, OrderAccepted, OrderCancelled
from contracts.errors import InvalidStatusTransition
from contracts.events import ORDER_CANCELLED, ORDER_PLACED, OrderEvent
from contracts.orders import Order, OrderRequest, OrderStatus
from orders.lifecycle import CHECKOUT_ALLOWED
from orders.repository import OrderRecords
from plumbing import aws
from plumbing.events import publish_order_event
from plumbing.orders_table import utc_now

# Namespace of order ids derived from idempotency keys.
_ORDER_NAMESPACE = uuid.UUID("0d9b8f5e-3c1a-4f7e-9b2d-6a4e8c1f2d30")


def order_id_for(client_key: str, body: dict[str, Any]) -> str:
    """The order id is derived from (client, Idempotency-Key, body): if placing an order fails half way
    (published, then an error) and the client retries, the retry publishes the *same* order id, which
    every consumer applies once. A key reused for another body later yields another order."""
    canonical = json.dumps([client_key, body], sort_keys=True, separators=(",", ":"), default=str)
    return str(uuid.uuid5(_ORDER_NAMESPACE, canonical))


def execution_name(order_id: str) -> str:
    """One checkout execution per order: Step Functions refuses a second execution of the same name."""
    return f"checkout-{order_id}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:...:stateMachine:<machine> -> arn:...:execution:<machine>:<name> (known before starting it)."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


@dataclass(frozen=True)
class OrdersService:
    orders: OrderRecords
    topic_arn: str
    state_machine_arn: str

    def place(self, request: OrderRequest, order_id: str, correlation_id: str) -> OrderAccepted:
        """Publish OrderPlaced, and nothing else: the fulfilment consumer records the order and the cancel
        window (a delay queue subscribed to the topic) starts from the same event (choreography)."""
        order = Order(
            order_id=order_id,
            customer_id=request.customer_id,
            items=request.items,
            currency=request.currency,
            channel="api",
            placed_at=utc_now(),
            correlation_id=correlation_id,
        )
        publish_order_event(self.topic_arn, OrderEvent.of(order, ORDER_PLACED, correlation_id))
        return OrderAccepted(order_id=order_id, status=OrderStatus.RECEIVED)

    def get(self, order_id: str) -> Order:
        return self.orders.require(order_id)

    def cancel(self, order_id: str, correlation_id: str) -> OrderCancelled:
        """Cancel in the record (the one decision), then announce it. Cancelling again is a no-op on the
        record that announces it again: a publish that failed after the record changed (503) is recovered
        by the client's retry, and consumers apply OrderCancelled once (docs/design.md, "no dual write")."""
        self.orders.cancel_by_customer(order_id)  # OrderNotFound / InvalidStatusTransition
        order = self.orders.require(order_id)
        publish_order_event(self.topic_arn, OrderEvent.of(order, ORDER_CANCELLED, correlation_id))
        return OrderCancelled(order_id=order_id, status=OrderStatus.CANCELLED)

    def checkout(self, order_id: str, request: CheckoutRequest, correlation_id: str) -> CheckoutStarted:
        """Start the checkout saga once per order; repeating the request returns the same execution."""
        order = self.orders.require(order_id)
        if order.status not in CHECKOUT_ALLOWED:
            raise InvalidStatusTransition(order_id, order.status, "checked out")
        name = execution_name(order_id)
        arn = execution_arn(self.state_machine_arn, name)
        already_started = not self.orders.start_checkout(order_id, arn)  # the customer can no longer cancel
        state = CheckoutState.from_order(order, request.token(), correlation_id)
        try:
            arn = aws.client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=state.model_dump_json(exclude_none=True)
            )["executionArn"]
        except ClientError as error:
            # Same name, other input (another payment token or correlation id): the first one stands.
            if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise
            already_started = True
        return CheckoutStarted(order_id=order_id, execution_arn=arn, already_started=already_started)
