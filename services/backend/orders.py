"""What an acceptable order is, and the `OrderPlaced` event built from it (docs/design.md schema).

Validation is a pydantic model, so the rules are declared once, read like a schema, and every
violation comes back with its location (`items[0].quantity: ...`) for a clear 400.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

SKU_PATTERN = r"^[A-Z0-9][A-Z0-9-]{2,63}$"  # e.g. SKU-TEA-001
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
MAX_QUANTITY = 100
MAX_LINES = 50
MAX_UNIT_PRICE = Decimal("100000")


class InvalidOrder(ValueError):
    """The order request breaks a rule; the message says which, for the 400 body."""


class OrderItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Annotated[str, StringConstraints(pattern=SKU_PATTERN)]
    # strict: "3", 3.0 and true are not quantities
    quantity: Annotated[int, Field(strict=True, ge=1, le=MAX_QUANTITY)]
    unit_price: Annotated[Decimal, Field(gt=0, le=MAX_UNIT_PRICE, decimal_places=2, allow_inf_nan=False)]


class OrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=MAX_LINES)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "EUR"

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> OrderRequest:
        skus = [item.sku for item in self.items]
        if len(skus) != len(set(skus)):
            raise ValueError("each sku may appear only once")
        return self

    @property
    def total(self) -> Decimal:
        return sum((item.unit_price * item.quantity for item in self.items), Decimal(0)).quantize(Decimal("0.01"))


def _where(location: tuple[Any, ...]) -> str:
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def parse_order(raw: bytes | str) -> OrderRequest:
    """The validated order, or InvalidOrder with every problem in one message."""
    try:
        return OrderRequest.model_validate_json(raw)
    except ValidationError as error:
        problems = [f"{_where(e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)]
        raise InvalidOrder("; ".join(problems)) from None


def order_placed_event(order: OrderRequest, *, channel: str, correlation_id: str) -> dict[str, Any]:
    return {
        "event_type": "OrderPlaced",
        "order_id": str(uuid.uuid4()),
        "customer_id": order.customer_id,
        "items": [
            {"sku": i.sku, "quantity": i.quantity, "unit_price": float(i.unit_price)} for i in order.items
        ],
        "total": float(order.total),
        "currency": order.currency,
        "channel": channel,
        "placed_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "correlation_id": correlation_id,
    }


def message_attributes(event: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The SNS attributes every publisher sets; the subscriptions' filter policies match on them."""
    return {
        name: {"DataType": "String", "StringValue": str(event[name])}
        for name in ("event_type", "channel", "correlation_id")
    }


def to_json(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))
