"""The checkout saga's step payloads: what each task Lambda receives from the state machine and returns.
Internal to the checkout (the state machine and its tasks); the order itself is the contract's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from checkout.domain import stock_lines
from contracts import limits
from contracts.api import DEFAULT_PAYMENT_TOKEN
from contracts.orders import Channel, Order, OrderLines, OrderStatus, order_fields
from contracts.types import Currency, CustomerId, Money, OrderId, Sku, Units

# Units of one SKU in one order: its lines added up (checkout.domain.stock_lines).
StockQuantity = Annotated[Units, Field(le=limits.MAX_QUANTITY * limits.MAX_ITEMS)]


class StockLine(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sku: Sku
    quantity: StockQuantity


class CheckoutState(OrderLines):
    """What charge/quote/ship/refund receive: the execution input plus what earlier steps added."""

    model_config = ConfigDict(extra="ignore")

    order_id: OrderId
    customer_id: CustomerId
    total: Money
    currency: Currency
    channel: Channel
    placed_at: datetime
    # One line per SKU (the Maps of the state machine iterate it): reserve, release and ship work per SKU.
    stock: list[StockLine] = Field(default_factory=list)
    payment_token: str = DEFAULT_PAYMENT_TOKEN
    correlation_id: str | None = None
    checkout: dict[str, Any] | None = None

    @classmethod
    def from_order(cls, order: Order, payment_token: str, correlation_id: str) -> CheckoutState:
        return cls(
            **order_fields(order),
            total=order.total,
            stock=[StockLine.model_validate(line) for line in stock_lines(order.items)],
            payment_token=payment_token,
            correlation_id=correlation_id,
        )


class ItemStep(BaseModel):
    """Input of reserve_item / release_item: one SKU of one order (the Map's item selector over `stock`)."""

    model_config = ConfigDict(extra="ignore")

    order_id: OrderId
    sku: Sku
    quantity: StockQuantity


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


class ApprovalTask(BaseModel):
    """Payload of the approval task (`waitForTaskToken`)."""

    model_config = ConfigDict(extra="ignore")

    task_token: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    order_id: OrderId
