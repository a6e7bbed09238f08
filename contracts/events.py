"""The events: their names, their bodies, the SNS message attributes every publisher sets, and who
subscribes to which event type.

The fan-out filter policies (stacks/messaging_stack.py) are generated from `SUBSCRIPTIONS`, and the
publishers build their attributes with `message_attributes`, so a filter can never name an attribute or
an event type that no publisher sets.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from contracts.orders import Channel, OrderItem, OrderLines, order_fields
from contracts.types import Currency, CustomerId, Money, OrderId, Sku, Units

EventType = Literal["OrderPlaced", "OrderCancelled", "OrderShipped", "InventoryAdjusted"]
ORDER_PLACED, ORDER_CANCELLED, ORDER_SHIPPED, INVENTORY_ADJUSTED = get_args(EventType)

# SNS message attributes of every order event (the filter policies match on them).
EVENT_TYPE_ATTRIBUTE = "event_type"
CHANNEL_ATTRIBUTE = "channel"
CORRELATION_ID_ATTRIBUTE = "correlation_id"
MESSAGE_ATTRIBUTES = (EVENT_TYPE_ATTRIBUTE, CHANNEL_ATTRIBUTE, CORRELATION_ID_ATTRIBUTE)

# Which event types reach which subscriber of the order-events topic. Fulfilment sees what changes an
# order record, notification what a customer is told about, analytics everything; the cancel window
# (a delay queue) starts on OrderPlaced only, and the finaliser confirms the order when it is due.
SUBSCRIPTIONS: dict[str, tuple[EventType, ...]] = {
    "fulfilment": (ORDER_PLACED, ORDER_CANCELLED),
    "notification": (ORDER_PLACED, ORDER_SHIPPED, ORDER_CANCELLED),
    "analytics": (ORDER_PLACED, ORDER_SHIPPED, ORDER_CANCELLED, INVENTORY_ADJUSTED),
    "cancel_window": (ORDER_PLACED,),
}


class OrderLike(Protocol):
    order_id: str
    customer_id: str
    items: list[OrderItem]
    currency: str
    channel: Channel
    placed_at: datetime

    @property
    def total(self) -> Decimal: ...


class OrderEvent(OrderLines):
    """Body of every order event on the order-events topic (raw delivery: the SQS body is this JSON).
    Consumers ignore fields they do not know, so a producer may add one without breaking them."""

    model_config = ConfigDict(extra="ignore", title="OrderEvent")

    event_type: EventType
    order_id: OrderId
    customer_id: CustomerId
    total: Money
    currency: Currency
    channel: Channel
    placed_at: datetime
    correlation_id: str

    @classmethod
    def of(cls, order: OrderLike, event_type: EventType, correlation_id: str) -> OrderEvent:
        return cls(**order_fields(order), total=order.total, event_type=event_type, correlation_id=correlation_id)

    def message_attributes(self) -> dict[str, dict[str, str]]:
        """The SNS attributes every publisher sets (`MESSAGE_ATTRIBUTES`)."""
        values = {
            EVENT_TYPE_ATTRIBUTE: self.event_type,
            CHANNEL_ATTRIBUTE: self.channel,
            CORRELATION_ID_ATTRIBUTE: self.correlation_id,
        }
        return {name: {"DataType": "String", "StringValue": values[name]} for name in MESSAGE_ATTRIBUTES}


# --- inventory FIFO events -----------------------------------------------------------------------------------

LedgerEventType = Literal["ItemReserved", "ItemReleased", "ItemShipped", "PaymentCharged", "PaymentRefunded"]


class LedgerEvent(BaseModel):
    """Body of the inventory FIFO queue. `event_id` doubles as the SQS deduplication id."""

    model_config = ConfigDict(extra="ignore")

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    event_type: LedgerEventType
    order_id: OrderId
    sku: Sku | None = None
    quantity: Units | None = None
    amount: Money | None = None
    currency: Currency | None = None
    occurred_at: datetime
    correlation_id: str | None = None

    @model_validator(mode="after")
    def _has_subject(self) -> LedgerEvent:
        if self.event_type.startswith("Item") and (self.sku is None or self.quantity is None):
            raise ValueError(f"{self.event_type} needs sku and quantity")
        if self.event_type.startswith("Payment") and self.amount is None:
            raise ValueError(f"{self.event_type} needs amount")
        return self

    @property
    def message_group(self) -> str:
        """Order per SKU for stock movements, per order for payments (docs/design.md flow 5)."""
        return self.sku if self.sku is not None else self.order_id

    @property
    def ledger_key(self) -> str:
        return f"LEDGER#{self.sku}" if self.sku is not None else f"LEDGER#ORDER#{self.order_id}"
