"""contracts.events: event names, the SNS message attributes every publisher sets, who subscribes to what,
and the bodies of order and ledger events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, get_args

import pytest
from pydantic import ValidationError

from contracts import events
from contracts.events import (
    MESSAGE_ATTRIBUTES,
    ORDER_CANCELLED,
    ORDER_PLACED,
    ORDER_SHIPPED,
    SUBSCRIPTIONS,
    EventType,
    LedgerEvent,
    OrderEvent,
)
from contracts.orders import Order, OrderItem

NOW = datetime(2025, 1, 1, 10, tzinfo=UTC)


def order(**overrides) -> Order:
    fields: dict[str, Any] = dict(
        order_id="order-1",
        customer_id="customer-1",
        channel="api",
        placed_at=NOW,
        items=[OrderItem(sku="SKU-1", quantity=2, unit_price=Decimal("19.99"))],
    )
    fields.update(overrides)
    return Order(**fields)


def test_the_event_type_constants_are_the_event_types():
    assert (
        (events.ORDER_PLACED, events.ORDER_CANCELLED, events.ORDER_SHIPPED, events.INVENTORY_ADJUSTED)
        == get_args(EventType)
        == ("OrderPlaced", "OrderCancelled", "OrderShipped", "InventoryAdjusted")
    )


@pytest.mark.parametrize("event_type", get_args(EventType))
def test_message_attributes_name_exactly_the_contracts_attributes(event_type):
    event = OrderEvent.of(order(), event_type, "corr-1")

    attributes = event.message_attributes()

    assert tuple(attributes) == MESSAGE_ATTRIBUTES == ("event_type", "channel", "correlation_id")
    assert attributes == {
        "event_type": {"DataType": "String", "StringValue": event_type},
        "channel": {"DataType": "String", "StringValue": "api"},
        "correlation_id": {"DataType": "String", "StringValue": "corr-1"},
    }


def test_every_subscription_filters_on_event_types_that_exist():
    assert set(SUBSCRIPTIONS) == {"fulfilment", "notification", "analytics", "cancel_window"}
    for subscriber, event_types in SUBSCRIPTIONS.items():
        assert event_types and set(event_types) <= set(get_args(EventType)), subscriber
        assert len(set(event_types)) == len(event_types), subscriber
    # The filter policies match on an attribute every publisher sets.
    assert events.EVENT_TYPE_ATTRIBUTE in MESSAGE_ATTRIBUTES


def test_who_receives_what():
    assert SUBSCRIPTIONS["cancel_window"] == (ORDER_PLACED,)  # the window starts from OrderPlaced, nothing else
    assert set(SUBSCRIPTIONS["fulfilment"]) == {ORDER_PLACED, ORDER_CANCELLED}
    assert set(SUBSCRIPTIONS["notification"]) == {ORDER_PLACED, ORDER_SHIPPED, ORDER_CANCELLED}
    assert set(SUBSCRIPTIONS["analytics"]) == set(get_args(EventType))


def test_an_order_event_describes_its_order():
    event = OrderEvent.of(order(), ORDER_PLACED, "corr-1")

    body = json.loads(event.model_dump_json())

    assert body == {
        "event_type": "OrderPlaced",
        "order_id": "order-1",
        "customer_id": "customer-1",
        "total": 39.98,
        "currency": "EUR",
        "channel": "api",
        "placed_at": "2025-01-01T10:00:00Z",
        "correlation_id": "corr-1",
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": 19.99}],
    }
    assert OrderEvent.model_validate_json(event.model_dump_json()) == event  # the consumer reads what was sent


def test_consumers_ignore_fields_they_do_not_know():
    body = json.loads(OrderEvent.of(order(), ORDER_PLACED, "c").model_dump_json())
    body["loyalty_points"] = 12

    assert not hasattr(OrderEvent.model_validate(body), "loyalty_points")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("items", 0, "quantity"), True),
        (("items", 0, "quantity"), "2"),
        (("items", 0, "quantity"), 2.5),
        (("items", 0, "unit_price"), "19.99"),
        (("total",), "39.98"),
        (("total",), True),
        (("items", 0, "sku"), "sku-1"),
        (("event_type",), "OrderLost"),
        (("customer_id",), "jane doe"),
    ],
)
def test_an_order_event_refuses_what_breaks_the_contract(path, value):
    body = json.loads(OrderEvent.of(order(), ORDER_PLACED, "c").model_dump_json())
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    with pytest.raises(ValidationError):
        OrderEvent.model_validate(body)


# --- ledger events --------------------------------------------------------------------------------------


def ledger(**fields) -> LedgerEvent:
    return LedgerEvent(event_id="order-1:reserve:SKU-1", order_id="order-1", occurred_at=NOW, **fields)


def test_stock_movements_are_ordered_per_sku_and_payments_per_order():
    reserved = ledger(event_type="ItemReserved", sku="SKU-1", quantity=3)
    charged = ledger(event_type="PaymentCharged", amount=Decimal("12.50"), currency="EUR")

    assert (reserved.message_group, reserved.ledger_key) == ("SKU-1", "LEDGER#SKU-1")
    assert (charged.message_group, charged.ledger_key) == ("order-1", "LEDGER#ORDER#order-1")


@pytest.mark.parametrize("event_type", ["ItemReserved", "ItemReleased", "ItemShipped"])
def test_item_events_need_sku_and_quantity(event_type):
    with pytest.raises(ValidationError, match=f"{event_type} needs sku and quantity"):
        ledger(event_type=event_type, sku="SKU-1")
    with pytest.raises(ValidationError, match=f"{event_type} needs sku and quantity"):
        ledger(event_type=event_type, quantity=1)


@pytest.mark.parametrize("event_type", ["PaymentCharged", "PaymentRefunded"])
def test_payment_events_need_an_amount(event_type):
    with pytest.raises(ValidationError, match=f"{event_type} needs amount"):
        ledger(event_type=event_type, currency="EUR")


@pytest.mark.parametrize("quantity", [True, "3", 3.5, 0, -1])
def test_a_ledger_quantity_is_a_quantity(quantity):
    """Like every other quantity of the contract, a JSON integer from 1 (it used to accept `true`, "3", 0)."""
    with pytest.raises(ValidationError):
        ledger(event_type="ItemReserved", sku="SKU-1", quantity=quantity)


@pytest.mark.parametrize("amount", ["12.50", True, Decimal("-1"), Decimal("0.001")])
def test_a_ledger_amount_is_money(amount):
    with pytest.raises(ValidationError):
        ledger(event_type="PaymentCharged", amount=amount, currency="EUR")


def test_the_ledger_event_body_leaves_out_what_it_does_not_have():
    body = json.loads(
        ledger(event_type="PaymentCharged", amount=Decimal("12.50"), currency="EUR").model_dump_json(exclude_none=True)
    )
    assert body == {
        "event_id": "order-1:reserve:SKU-1",
        "event_type": "PaymentCharged",
        "order_id": "order-1",
        "amount": 12.5,
        "currency": "EUR",
        "occurred_at": "2025-01-01T10:00:00Z",
    }
