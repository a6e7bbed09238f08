"""contracts.api: the HTTP request bodies and headers of the REST API and the backend tier."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts.api import (
    DEFAULT_PAYMENT_TOKEN,
    ApprovalDecision,
    CheckoutRequest,
    ConflictBody,
    IdempotencyKey,
    OrderAccepted,
    OrderCancelled,
    card_token,
)
from contracts.limits import MAX_IDEMPOTENCY_KEY_LENGTH, MAX_REASON_LENGTH


def test_card_numbers_are_tokenised_to_their_last_four_digits():
    assert card_token("4000000000000002") == "card-0002"
    assert CheckoutRequest(card_number="4000000000000002").token() == "card-0002"
    assert CheckoutRequest().token() == "tok_visa" == DEFAULT_PAYMENT_TOKEN
    assert CheckoutRequest(payment_token="flaky-2").token() == "flaky-2"
    with pytest.raises(ValidationError):
        CheckoutRequest(card_number="4000000000000002", payment_token="tok")


@pytest.mark.parametrize(
    "body",
    [
        {"card_number": "12ab"},
        {"card_number": "12345678901"},
        {"card_number": "1" * 20},
        {"card_number": 4000000000000002},
        {"payment_token": ""},
        {"payment_token": "t" * 129},
        {"payment_token": "tok", "amount": 1},
    ],
)
def test_checkout_requests_the_contract_refuses(body):
    with pytest.raises(ValidationError):
        CheckoutRequest.model_validate(body)


def test_the_card_number_is_not_kept_on_the_token():
    request = CheckoutRequest.model_validate({"card_number": "4111111111111111"})
    assert "4111111111111111" not in request.token()


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "approve"},
        {"decision": "reject", "reason": "too risky"},
        {"decision": "approve", "reason": "r" * MAX_REASON_LENGTH},
    ],
)
def test_approval_decisions_the_contract_allows(body):
    assert ApprovalDecision.model_validate(body).decision == body["decision"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"decision": "maybe"},
        {"decision": "APPROVE"},
        {"decision": "approve", "by": "x"},
        {"decision": "approve", "reason": "r" * (MAX_REASON_LENGTH + 1)},
    ],
)
def test_approval_decisions_the_contract_refuses(body):
    with pytest.raises(ValidationError):
        ApprovalDecision.model_validate(body)


@pytest.mark.parametrize("key", ["k", "key-0001", "a key with spaces inside", "k" * MAX_IDEMPOTENCY_KEY_LENGTH])
def test_idempotency_keys_the_contract_allows(key):
    assert TypeAdapter(IdempotencyKey).validate_python(key) == key


@pytest.mark.parametrize("key", ["", " ", "  ", " key", "key ", "k" * (MAX_IDEMPOTENCY_KEY_LENGTH + 1)])
def test_blank_padded_or_too_long_idempotency_keys_are_refused(key):
    with pytest.raises(ValidationError):
        TypeAdapter(IdempotencyKey).validate_python(key)


def test_answers_carry_the_status_they_promise():
    # The statuses as they come over the wire: strings, not OrderStatus members.
    assert OrderAccepted.model_validate({"order_id": "o-1", "status": "RECEIVED"}).model_dump(mode="json") == {
        "order_id": "o-1",
        "status": "RECEIVED",
    }
    with pytest.raises(ValidationError):
        OrderAccepted.model_validate({"order_id": "o-1", "status": "CANCELLED"})
    with pytest.raises(ValidationError):
        OrderCancelled.model_validate({"order_id": "o 1", "status": "CANCELLED"})  # not an order id
    assert ConflictBody(message="m", status="RECEIVED").status == "RECEIVED"
