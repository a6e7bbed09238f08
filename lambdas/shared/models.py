"""Pydantic models of everything that crosses a boundary: API bodies, event messages, step payloads.

Producers validate strictly (unknown fields are refused, so a typo is a 400 and not a silently dropped
field); consumers of messages ignore fields they do not know, so a producer may add one without
breaking them. Money is `Decimal` (exact) inside and a JSON number outside.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Json,
    PlainSerializer,
    StringConstraints,
    ValidationError,
    computed_field,
    field_validator,
    model_validator,
)

from shared.domain import OrderStatus, card_token, order_total

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MAX_QUANTITY = 100
MAX_ITEMS = 50
DEFAULT_CURRENCY = "EUR"
DEFAULT_PAYMENT_TOKEN = "tok_visa"

EventType = Literal["OrderPlaced", "OrderCancelled", "OrderShipped", "InventoryAdjusted"]
Channel = Literal["web", "api"]


def _money_json(value: Decimal) -> float:
    # Cents survive the round trip: float('19.99') prints as 19.99 and parses back to Decimal('19.99').
    return float(value)


Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=12, decimal_places=2),
    PlainSerializer(_money_json, return_type=float, when_used="json"),
]
Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
CustomerId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
OrderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]


def _no_bool(value: Any) -> Any:
    # pydantic's lax mode would take `true` as quantity 1; a JSON boolean is never a count.
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not a boolean")
    return value


# DynamoDB hands numbers back as Decimal('2'): lax int parsing accepts those, BeforeValidator refuses bools.
Quantity = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=MAX_QUANTITY)]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each naming the field path (`items.0.quantity: ...`), for a 400 answer or a
    log line. The offending input is not echoed back."""
    problems = []
    for detail in error.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in detail["loc"]) or "body"
        problems.append(f"{field}: {detail['msg']}")
    return "; ".join(problems)


def to_item(model: BaseModel, **extra: Any) -> dict[str, Any]:
    """A model as a DynamoDB item: numbers as Decimal (boto3 refuses float), datetimes as ISO strings."""
    item = json.loads(model.model_dump_json(exclude_none=True), parse_float=Decimal)
    item.update(extra)
    return item


# --- orders ----------------------------------------------------------------------------------------------


class OrderItem(BaseModel):
    """One line of an order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Sku
    quantity: Quantity
    unit_price: Annotated[Money, Field(gt=0, le=Decimal("100000"))]


class OrderLines(BaseModel):
    """Items of an order: at least one, each SKU once (reservations are kept per SKU)."""

    items: Annotated[list[OrderItem], Field(min_length=1, max_length=MAX_ITEMS)]

    @field_validator("items")
    @classmethod
    def _unique_skus(cls, items: list[OrderItem]) -> list[OrderItem]:
        seen: set[str] = set()
        for item in items:
            if item.sku in seen:
                raise ValueError(f"sku {item.sku} appears more than once; put the total quantity on one line")
            seen.add(item.sku)
        return items


class OrderRequest(OrderLines):
    """Body of `POST /orders`."""

    model_config = ConfigDict(extra="forbid")

    customer_id: CustomerId
    currency: Currency = DEFAULT_CURRENCY

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> Money:
        return order_total(self.items)


class Order(OrderLines):
    """An order as the orders table keeps it (`pk=ORDER#<id>, sk=META`)."""

    model_config = ConfigDict(extra="ignore")

    order_id: OrderId
    customer_id: CustomerId
    currency: Currency = DEFAULT_CURRENCY
    channel: Channel
    status: OrderStatus = OrderStatus.RECEIVED
    placed_at: datetime
    updated_at: datetime | None = None
    correlation_id: str | None = None
    checkout_execution_arn: str | None = None
    cancel_reason: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> Money:
        return order_total(self.items)

    @classmethod
    def from_event(cls, event: "OrderEvent") -> "Order":
        return cls(
            order_id=event.order_id, customer_id=event.customer_id, items=event.items, currency=event.currency,
            channel=event.channel, placed_at=event.placed_at, updated_at=utc_now(), correlation_id=event.correlation_id,
        )


class OrderEvent(OrderLines):
    """Body of every order event on the order-events topic (docs/design.md, raw delivery)."""

    model_config = ConfigDict(extra="ignore")

    event_type: EventType
    order_id: OrderId
    customer_id: CustomerId
    total: Money
    currency: Currency
    channel: Channel
    placed_at: datetime
    correlation_id: str

    @classmethod
    def from_order(cls, order: Order, event_type: EventType, correlation_id: str) -> "OrderEvent":
        return cls(
            event_type=event_type, order_id=order.order_id, customer_id=order.customer_id, items=order.items,
            total=order.total, currency=order.currency, channel=order.channel, placed_at=order.placed_at,
            correlation_id=correlation_id,
        )


class OrderEventRecord(SqsRecordModel):
    """An SQS record of a fan-out queue: SNS raw delivery puts the event JSON itself in the body."""

    body: Json[OrderEvent]  # type: ignore[assignment]


class CancelWindowMessage(BaseModel):
    """Body of the cancel-window delay queue: only the order id, the record is read when it is due."""

    model_config = ConfigDict(extra="ignore")
    order_id: OrderId


class CancelWindowRecord(SqsRecordModel):
    body: Json[CancelWindowMessage]  # type: ignore[assignment]


# --- checkout -----------------------------------------------------------------------------------------------


class CheckoutRequest(BaseModel):
    """Optional body of `POST /orders/{order_id}/checkout`. A card number is tokenised right away and
    never stored; without either field the checkout uses a test card that is always approved."""

    model_config = ConfigDict(extra="forbid")

    payment_token: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    card_number: Annotated[str, StringConstraints(pattern=r"^\d{12,19}$")] | None = None

    @model_validator(mode="after")
    def _one_payment_method(self) -> "CheckoutRequest":
        if self.payment_token and self.card_number:
            raise ValueError("give either payment_token or card_number, not both")
        return self

    def token(self) -> str:
        if self.card_number:
            return card_token(self.card_number)
        return self.payment_token or DEFAULT_PAYMENT_TOKEN


class CheckoutState(OrderLines):
    """What charge/quote/ship/refund receive: the execution input plus what earlier steps added."""

    model_config = ConfigDict(extra="ignore")

    order_id: OrderId
    customer_id: CustomerId
    total: Money
    currency: Currency
    channel: Channel
    placed_at: datetime
    payment_token: str = DEFAULT_PAYMENT_TOKEN
    correlation_id: str | None = None
    checkout: dict[str, Any] | None = None

    @classmethod
    def from_order(cls, order: Order, payment_token: str, correlation_id: str) -> "CheckoutState":
        return cls(
            order_id=order.order_id, customer_id=order.customer_id, items=order.items, total=order.total,
            currency=order.currency, channel=order.channel, placed_at=order.placed_at,
            payment_token=payment_token, correlation_id=correlation_id,
        )

    def as_order(self) -> Order:
        return Order(
            order_id=self.order_id, customer_id=self.customer_id, items=self.items, currency=self.currency,
            channel=self.channel, placed_at=self.placed_at,
        )


class ItemStep(BaseModel):
    """Input of reserve_item / release_item: one item of one order (the Map's item selector)."""

    model_config = ConfigDict(extra="ignore")

    order_id: OrderId
    sku: Sku
    quantity: Quantity


class MarkOrderStep(BaseModel):
    """Input of mark_order."""

    model_config = ConfigDict(extra="ignore")

    order_id: OrderId
    status: Literal[OrderStatus.COMPLETED, OrderStatus.CANCELLED]
    reason: str | None = None


class Payment(BaseModel):
    """What charge_payment returns (the state machine keeps it as `checkout.payment`)."""

    charge_id: str
    amount: Money
    currency: Currency
    status: Literal["CHARGED", "REFUNDED"]


class RefundStep(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_id: OrderId
    # Absent when the Parallel failed: its branch results are dropped, a charge may still have happened.
    checkout: dict[str, Any] = Field(default_factory=dict)

    @property
    def payment(self) -> Payment | None:
        return Payment.model_validate(self.checkout["payment"]) if self.checkout.get("payment") else None


# --- inventory FIFO events -----------------------------------------------------------------------------------

LedgerEventType = Literal["ItemReserved", "ItemReleased", "ItemShipped", "PaymentCharged", "PaymentRefunded"]


class LedgerEvent(BaseModel):
    """Body of the inventory FIFO queue. `event_id` doubles as the SQS deduplication id."""

    model_config = ConfigDict(extra="ignore")

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    event_type: LedgerEventType
    order_id: OrderId
    sku: Sku | None = None
    quantity: int | None = None
    amount: Money | None = None
    currency: Currency | None = None
    occurred_at: datetime
    correlation_id: str | None = None

    @model_validator(mode="after")
    def _has_subject(self) -> "LedgerEvent":
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


class LedgerRecord(SqsRecordModel):
    body: Json[LedgerEvent]  # type: ignore[assignment]


# --- approvals ------------------------------------------------------------------------------------------------


class ApprovalTask(BaseModel):
    """Payload of the approval task (`waitForTaskToken`)."""

    model_config = ConfigDict(extra="ignore")

    task_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    order_id: OrderId


class ApprovalDecision(BaseModel):
    """Body of `POST /approvals/{order_id}`."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


# --- hand-off --------------------------------------------------------------------------------------------------

MAX_HANDOFF_RECORDS = 500


class HandoffDocument(BaseModel):
    """A hand-off object: a JSON list of records (e.g. a sales report), each a JSON object."""

    records: Annotated[list[dict[str, Any]], Field(max_length=MAX_HANDOFF_RECORDS)]
