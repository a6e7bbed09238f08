"""The HTTP contract of the REST API and the backend tier: headers, request bodies and every answer.

`docs/openapi.json` is generated from these models through the Powertools resolvers that serve them
(`make openapi`), and API Gateway's request models from the same classes (stacks/constructs/request_model.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from contracts import limits
from contracts.orders import OrderStatus
from contracts.types import OrderId, Reason

API_KEY_HEADER = "x-api-key"
IDEMPOTENCY_HEADER = "Idempotency-Key"
CORRELATION_HEADER = "X-Correlation-Id"
DEFAULT_PAYMENT_TOKEN = "tok_visa"

IdempotencyKey = Annotated[
    str, StringConstraints(min_length=1, max_length=limits.MAX_IDEMPOTENCY_KEY_LENGTH, pattern=r"^\S(.*\S)?$")
]


def card_token(card_number: str) -> str:
    """Tokenise a card number: only the last four digits survive, so no card number is ever stored."""
    return f"card-{card_number[-4:]}"


# --- request bodies ---------------------------------------------------------------------------------


class CheckoutRequest(BaseModel):
    """Optional body of `POST /orders/{order_id}/checkout`. A card number is tokenised right away and
    never stored; without either field the checkout uses a test card that is always approved."""

    model_config = ConfigDict(
        extra="forbid",
        title="CheckoutRequest",
        # The one-payment-method rule, in the published schema too: never both.
        json_schema_extra={
            "not": {
                "required": ["payment_token", "card_number"],
                "properties": {"payment_token": {"type": "string"}, "card_number": {"type": "string"}},
            }
        },
    )

    payment_token: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    card_number: Annotated[str, StringConstraints(pattern=r"^\d{12,19}$")] | None = None

    @model_validator(mode="after")
    def _one_payment_method(self) -> CheckoutRequest:
        if self.payment_token is not None and self.card_number is not None:
            raise ValueError("give either payment_token or card_number, not both")
        return self

    def token(self) -> str:
        if self.card_number:
            return card_token(self.card_number)
        return self.payment_token or DEFAULT_PAYMENT_TOKEN


class ApprovalDecision(BaseModel):
    """Body of `POST /approvals/{order_id}`."""

    model_config = ConfigDict(extra="forbid", title="ApprovalDecision")

    decision: Literal["approve", "reject"]
    reason: Reason | None = None


# --- answers -------------------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer: a message a person can act on."""

    message: str


class ConflictBody(ErrorBody):
    """409: the order's status does not allow the change; `status` is where it stands."""

    status: str | None = None


class OrderAccepted(BaseModel):
    """202 of `POST /orders`: the order is announced; consumers record it a moment later."""

    order_id: OrderId
    status: Literal[OrderStatus.RECEIVED]


class OrderCancelled(BaseModel):
    order_id: OrderId
    status: Literal[OrderStatus.CANCELLED]


class CheckoutStarted(BaseModel):
    """202 of `POST /orders/{order_id}/checkout`; a repeat returns the same execution."""

    order_id: OrderId
    execution_arn: str
    already_started: bool


class PendingApproval(BaseModel):
    order_id: OrderId
    requested_at: str


class PendingApprovals(BaseModel):
    approvals: list[PendingApproval]


class ApprovalDecided(BaseModel):
    order_id: OrderId
    decision: Literal["approve", "reject"]
    approval: Literal["APPROVED", "REJECTED"]


# What each error status means, for the OpenAPI document (the bodies are ErrorBody unless noted).
ERROR_STATUSES: dict[int, str] = {
    400: "Invalid request: the message names each field and what is wrong with it",
    401: "Missing, expired or invalid Cognito ID token (the customer routes' authorizer)",
    403: "Missing or unknown API key",
    404: "No such order (or no pending approval)",
    409: "The order's status does not allow this, or the request is still in progress",
    422: "The Idempotency-Key was already used with a different body",
    429: "Throttled by the usage plan or the stage; retry with backoff",
    503: "A dependency is temporarily unavailable; retry (with the same Idempotency-Key)",
}
