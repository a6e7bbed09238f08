"""Fire-and-forget side calls (seed 003, asynchronous operations): what a caller hands a side service
it must not wait for. The caller invokes the side function asynchronously (Lambda `InvocationType`
`Event`); Lambda retries a failed event a bounded number of times and then puts it, with the error, on
the function's on-failure queue."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts.types import CustomerId, OrderId, Sku


class PurchaseSignal(BaseModel):
    """POST /orders -> recommendations: these SKUs were bought together (input of "also bought")."""

    model_config = ConfigDict(frozen=True)  # a side service ignores fields it does not know

    order_id: OrderId
    customer_id: CustomerId
    skus: list[Sku] = Field(min_length=1)
