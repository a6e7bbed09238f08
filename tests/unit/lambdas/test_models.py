"""Order model validation and domain rules, including property-based tests (hypothesis)."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared import domain
from shared.domain import OrderStatus
from shared.errors import InvalidStatusTransition, PaymentDeclined, PaymentGatewayUnavailable
from shared.models import (
    MAX_QUANTITY,
    SKU_PATTERN,
    CheckoutRequest,
    OrderRequest,
    describe_validation_error,
)

skus = st.from_regex(SKU_PATTERN, fullmatch=True)
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
quantities = st.integers(min_value=1, max_value=MAX_QUANTITY)
lines = st.lists(st.tuples(skus, quantities, prices), min_size=1, max_size=20, unique_by=lambda line: line[0])


def request(items: list[dict], **extra) -> dict:
    return {"customer_id": "customer-1", "items": items, **extra}


def item(sku: str = "SKU-1", quantity=1, unit_price=1) -> dict:
    return {"sku": sku, "quantity": quantity, "unit_price": unit_price}


def problems(body: dict) -> str:
    with pytest.raises(ValidationError) as raised:
        OrderRequest.model_validate(body)
    return describe_validation_error(raised.value)


# --- property-based -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(lines=lines)
def test_valid_orders_total_the_sum_of_quantity_times_price(lines):
    order = OrderRequest.model_validate(request([item(s, q, p) for s, q, p in lines]))

    assert order.total == sum(Decimal(q) * p for _, q, p in lines)
    # What consumers receive over JSON is the same amount, to the cent.
    assert Decimal(str(json.loads(order.model_dump_json())["total"])) == order.total


@settings(max_examples=200, deadline=None)
@given(lines=lines)
def test_prices_sent_as_json_numbers_survive_exactly(lines):
    body = json.loads(json.dumps(request([item(s, q, float(p)) for s, q, p in lines])))

    order = OrderRequest.model_validate(body)

    assert [line.unit_price for line in order.items] == [p for _, _, p in lines]


@settings(max_examples=200, deadline=None)
@given(
    position=st.integers(min_value=0, max_value=4),
    quantity=st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_QUANTITY + 1), st.booleans(),
                       st.floats(allow_nan=False).filter(lambda f: not f.is_integer())),
)
def test_invalid_quantities_are_always_rejected_naming_the_line(position, quantity):
    items = [item(f"SKU-{i}") for i in range(5)]
    items[position]["quantity"] = quantity

    assert f"items.{position}.quantity:" in problems(request(items))


@settings(max_examples=200, deadline=None)
@given(sku=st.text(max_size=80).filter(lambda s: re.fullmatch(SKU_PATTERN, s) is None))
def test_invalid_skus_are_always_rejected_naming_the_field(sku):
    assert "items.0.sku:" in problems(request([item(sku)]))


@settings(max_examples=100, deadline=None)
@given(price=st.one_of(st.decimals(max_value=Decimal("0"), places=2, allow_nan=False),
                       st.decimals(min_value=Decimal("0.001"), max_value=Decimal("10"), places=3)
                       .filter(lambda d: d != d.quantize(Decimal("0.01")))))
def test_non_positive_or_sub_cent_prices_are_rejected(price):
    assert "items.0.unit_price:" in problems(request([item(unit_price=str(price))]))


# --- examples ---------------------------------------------------------------------------------------------


def test_a_sku_may_appear_on_one_line_only():
    assert "items:" in problems(request([item("SKU-1"), item("SKU-1")]))


def test_unknown_fields_are_refused_so_typos_surface():
    assert "quantty" in problems(request([{"sku": "SKU-1", "quantty": 1, "unit_price": 1}]))


def test_validation_messages_do_not_echo_the_input():
    message = problems(request([item(sku="<script>alert(1)</script>")]))
    assert "<script>" not in message


def test_card_numbers_are_tokenised_to_their_last_four_digits():
    assert CheckoutRequest(card_number="4000000000000002").token() == "card-0002"
    assert CheckoutRequest().token() == "tok_visa"
    with pytest.raises(ValidationError):
        CheckoutRequest(card_number="4000000000000002", payment_token="tok")


# --- domain rules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "target", "allowed"), [
    ("RECEIVED", "CONFIRMED", True), ("RECEIVED", "CANCELLED", True), ("RECEIVED", "COMPLETED", True),
    ("CONFIRMED", "COMPLETED", True), ("CONFIRMED", "CANCELLED", True), ("CONFIRMED", "RECEIVED", False),
    ("CANCELLED", "CONFIRMED", False), ("CANCELLED", "COMPLETED", False), ("COMPLETED", "CANCELLED", False),
])
def test_status_transitions(current, target, allowed):
    if allowed:
        assert domain.check_transition("o", current, OrderStatus(target)) is True
    else:
        with pytest.raises(InvalidStatusTransition):
            domain.check_transition("o", current, OrderStatus(target))


@pytest.mark.parametrize("status", list(OrderStatus))
def test_reaching_the_same_status_again_is_a_no_op(status):
    assert domain.check_transition("o", status, status) is False


def test_final_statuses_have_no_way_out():
    assert domain.ALLOWED_TRANSITIONS[OrderStatus.COMPLETED] == frozenset()
    assert domain.ALLOWED_TRANSITIONS[OrderStatus.CANCELLED] == frozenset()


@given(token=st.text(max_size=30).map(lambda t: t + "0002"), attempt=st.integers(min_value=1, max_value=10))
def test_a_card_ending_in_0002_is_always_declined(token, attempt):
    with pytest.raises(PaymentDeclined):
        domain.authorize_payment("o", token, attempt)


@given(failures=st.integers(min_value=0, max_value=20), attempt=st.integers(min_value=1, max_value=30))
def test_flaky_tokens_fail_exactly_their_first_n_attempts(failures, attempt):
    token = f"flaky-{failures}"
    if attempt <= failures:
        with pytest.raises(PaymentGatewayUnavailable):
            domain.authorize_payment("o", token, attempt)
    else:
        domain.authorize_payment("o", token, attempt)  # approved


def test_shipping_quote():
    assert domain.shipping_quote(Decimal("20"), 3) == Decimal("6.40")
    assert domain.shipping_quote(Decimal("100"), 3) == Decimal("0.00")
