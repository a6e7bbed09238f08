"""The backend's order rules (pure functions, no I/O) and the OrderPlaced event they produce."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.backend.orders import InvalidOrder, order_placed_event, parse_order

VALID: dict[str, Any] = {"customer_id": "alice", "items": [{"sku": "SKU-TEA-001", "quantity": 3, "unit_price": 8.1}]}


def order(**changes) -> bytes:
    return json.dumps({**VALID, **changes}).encode()


def item(**changes) -> dict:
    return {**VALID["items"][0], **changes}


def test_a_valid_order_parses_with_exact_money():
    parsed = parse_order(order(items=[item(), item(sku="SKU-MUG-002", quantity=1, unit_price=0.1)]))
    assert parsed.total == Decimal("24.40")  # 3 x 8.1 + 0.1 with no binary-float drift
    assert parsed.currency == "EUR"


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (order(items=[item(quantity=0)]), "items.0.quantity"),
        (order(items=[item(quantity=101)]), "items.0.quantity"),
        (order(items=[item(quantity="3")]), "items.0.quantity"),  # strings are not quantities
        (order(items=[item(quantity=True)]), "items.0.quantity"),  # nor are booleans
        (order(items=[item(quantity=2.5)]), "items.0.quantity"),
        (order(items=[item(unit_price=0)]), "items.0.unit_price"),
        (order(items=[item(unit_price=-1)]), "items.0.unit_price"),
        (order(items=[item(unit_price=1.001)]), "items.0.unit_price"),  # money has cents, not less
        (order(items=[item(sku="tea; DROP")]), "items.0.sku"),
        (order(items=[item(sku="")]), "items.0.sku"),
        (order(items=[]), "items"),
        (order(items=[item()] * 51), "items"),
        (order(customer_id=""), "customer_id"),
        (order(customer_id="a" * 65), "customer_id"),
        (order(currency="euro"), "currency"),
        (order(coupon="FREE"), "coupon"),  # unknown fields are refused, not ignored
        (json.dumps({"items": VALID["items"]}).encode(), "customer_id"),
        (b"[]", "body"),
        (b"not json", "body"),
    ],
)
def test_an_invalid_order_is_refused_with_the_offending_field_named(payload, where):
    with pytest.raises(InvalidOrder) as refused:
        parse_order(payload)
    assert where in str(refused.value)


@given(st.integers(min_value=-1000, max_value=1000))
def test_quantity_is_accepted_exactly_from_1_to_100(quantity):
    try:
        parse_order(order(items=[item(quantity=quantity)]))
        accepted = True
    except InvalidOrder:
        accepted = False
    assert accepted == (1 <= quantity <= 100)


def test_the_event_has_the_contract_fields_and_the_attributes_the_filters_match():
    parsed = parse_order(order())
    placed = order_placed_event(parsed, channel="web", correlation_id="cid-1")
    event = json.loads(placed.model_dump_json())

    assert set(event) == {  # docs/design.md, "Message body"
        "event_type",
        "order_id",
        "customer_id",
        "items",
        "total",
        "currency",
        "channel",
        "placed_at",
        "correlation_id",
    }
    assert event["event_type"] == "OrderPlaced" and uuid.UUID(event["order_id"]).version == 4
    assert event["items"] == [{"sku": "SKU-TEA-001", "quantity": 3, "unit_price": 8.1}]
    assert event["total"] == 24.3
    assert placed.message_attributes() == {
        "event_type": {"DataType": "String", "StringValue": "OrderPlaced"},
        "channel": {"DataType": "String", "StringValue": "web"},
        "correlation_id": {"DataType": "String", "StringValue": "cid-1"},
    }
    assert order_placed_event(parsed, channel="web", correlation_id="x").order_id != event["order_id"]


def test_the_backend_takes_exactly_the_orders_the_api_takes():
    """One contract: the backend parses with the same OrderRequest the orders API Lambda validates with."""
    from contracts.orders import OrderRequest

    assert parse_order(order()) == OrderRequest.model_validate_json(order())
