"""Partner delivery updates (seed 002: request/response data transformation, no compute in the path).

A carrier posts a `DeliveryUpdate` to `POST /partners/deliveries` with its own API key. API Gateway
validates the body against the model generated from this class and, through a mapping template, turns it
into an SQS message (the body as sent, plus message attributes) on the delivery-updates queue; no Lambda
runs before the message is queued. The delivery consumer then moves the order to DELIVERED, once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from contracts.types import OrderId

DELIVERY_UPDATED = "DeliveryUpdated"
# Message attributes the gateway's mapping template sets on every queued update.
EVENT_TYPE_ATTRIBUTE = "event_type"
CARRIER_ATTRIBUTE = "carrier"
DELIVERY_ATTRIBUTES = (EVENT_TYPE_ATTRIBUTE, CARRIER_ATTRIBUTE)

Carrier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,31}$")]
TrackingId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{4,64}$")]


class DeliveryUpdate(BaseModel):
    """What a carrier reports: the order was delivered (the only update the storefront acts on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_id: OrderId
    carrier: Carrier
    tracking_id: TrackingId
    status: Literal["DELIVERED"]
    delivered_at: datetime
