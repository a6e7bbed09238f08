"""What an order is: its lines, the request that places it, its lifecycle statuses and the record the
API answers with. The totals rule lives here too, so every service computes the same total."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, computed_field

from contracts import limits
from contracts.types import Currency, CustomerId, Money, OrderId, Quantity, Sku, UnitPrice

Channel = Literal["web", "api"]


class OrderStatus(StrEnum):
    RECEIVED = "RECEIVED"  # recorded by the fulfilment consumer, still inside the cancel grace period
    CONFIRMED = "CONFIRMED"  # grace period over (order finaliser)
    COMPLETED = "COMPLETED"  # checkout shipped it
    CANCELLED = "CANCELLED"  # by the customer or by checkout compensation
    DELIVERED = "DELIVERED"  # the carrier reported it delivered (POST /partners/deliveries)


class PricedLine(Protocol):
    quantity: int
    unit_price: Decimal


def to_money(amount: Decimal) -> Decimal:
    """Round to cents the way a receipt does (half up)."""
    return amount.quantize(limits.CENT, rounding=ROUND_HALF_UP)


def order_total(items: Iterable[PricedLine]) -> Decimal:
    """Sum of quantity x unit price, in exact decimal arithmetic (never float)."""
    return to_money(sum((Decimal(item.quantity) * item.unit_price for item in items), Decimal("0")))


ORDER_FIELDS = ("order_id", "customer_id", "items", "currency", "channel", "placed_at")


def order_fields(order: object) -> dict[str, Any]:
    """What an order, its events and its checkout state have in common, taken from any of them: the
    one place that says which fields travel when one is built from another."""
    return {name: getattr(order, name) for name in ORDER_FIELDS}


class OrderItem(BaseModel):
    """One line of an order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: Sku
    quantity: Quantity
    unit_price: UnitPrice


class OrderLines(BaseModel):
    """Items of an order: 1-50 lines. A SKU may appear on several lines (at different prices, say): the
    checkout reserves per SKU, the sum of its lines (checkout.domain.stock_lines). Every rule of a
    valid order is one JSON Schema can state, so a request the published schema admits is accepted."""

    items: Annotated[list[OrderItem], Field(min_length=1, max_length=limits.MAX_ITEMS)]


class OrderRequest(OrderLines):
    """Body of `POST /orders` (API) and of the backend tier's `POST /orders` (web channel)."""

    model_config = ConfigDict(extra="forbid", title="OrderRequest")

    customer_id: CustomerId
    currency: Currency = limits.DEFAULT_CURRENCY

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> Money:
        return order_total(self.items)


class Order(OrderLines):
    """An order as the orders table keeps it and `GET /orders/{order_id}` answers it."""

    model_config = ConfigDict(extra="ignore", title="Order")

    order_id: OrderId
    customer_id: CustomerId
    currency: Currency = limits.DEFAULT_CURRENCY
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
