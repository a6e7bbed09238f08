"""orders.lifecycle: which order status may follow which (pure rules, no AWS)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.errors import InvalidStatusTransition
from contracts.orders import OrderStatus
from orders import lifecycle


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("RECEIVED", "CONFIRMED", True),
        ("RECEIVED", "CANCELLED", True),
        ("RECEIVED", "COMPLETED", True),
        ("CONFIRMED", "COMPLETED", True),
        ("CONFIRMED", "CANCELLED", True),
        ("CONFIRMED", "RECEIVED", False),
        ("CANCELLED", "CONFIRMED", False),
        ("CANCELLED", "COMPLETED", False),
        ("COMPLETED", "CANCELLED", False),
        ("COMPLETED", "DELIVERED", True),
        ("CONFIRMED", "DELIVERED", False),
        ("CANCELLED", "DELIVERED", False),
        ("DELIVERED", "COMPLETED", False),
    ],
)
def test_status_transitions(current, target, allowed):
    if allowed:
        assert lifecycle.check_transition("o", current, OrderStatus(target)) is True
    else:
        with pytest.raises(InvalidStatusTransition):
            lifecycle.check_transition("o", current, OrderStatus(target))


@pytest.mark.parametrize("status", list(OrderStatus))
def test_reaching_the_same_status_again_is_a_no_op(status):
    assert lifecycle.check_transition("o", status, status) is False


def test_final_statuses_have_no_way_out():
    assert lifecycle.ALLOWED_TRANSITIONS[OrderStatus.DELIVERED] == frozenset()
    assert lifecycle.ALLOWED_TRANSITIONS[OrderStatus.CANCELLED] == frozenset()
    assert lifecycle.ALLOWED_TRANSITIONS[OrderStatus.COMPLETED] == {OrderStatus.DELIVERED}  # only the carrier


def test_a_missing_order_cannot_move():
    with pytest.raises(InvalidStatusTransition):
        lifecycle.check_transition("o", None, OrderStatus.CONFIRMED)


def test_every_status_has_a_row():
    assert set(lifecycle.ALLOWED_TRANSITIONS) == set(OrderStatus)


@given(current=st.sampled_from(OrderStatus), target=st.sampled_from(OrderStatus))
def test_the_conditional_write_admits_exactly_the_allowed_sources(current, target):
    """The repository's condition (`status IN sources_of(target)`) and check_transition agree."""
    allowed = current in lifecycle.sources_of(target)
    if current == target:
        assert lifecycle.check_transition("o", current, target) is False
    elif allowed:
        assert lifecycle.check_transition("o", current, target) is True
    else:
        with pytest.raises(InvalidStatusTransition):
            lifecycle.check_transition("o", current, target)


def test_a_checkout_may_start_while_the_order_is_open():
    assert lifecycle.CHECKOUT_ALLOWED == (OrderStatus.RECEIVED, OrderStatus.CONFIRMED)
    assert all(OrderStatus.COMPLETED in lifecycle.ALLOWED_TRANSITIONS[status] for status in lifecycle.CHECKOUT_ALLOWED)
