"""checkout.domain: the simulated payment gateway and the shipping quote (pure rules, no AWS)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout import domain
from contracts.errors import PaymentDeclined, PaymentGatewayUnavailable


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


@pytest.mark.parametrize(
    ("token", "failures"), [("flaky-3", 3), ("flaky-0", 0), ("flaky-123", 0), ("tok_visa", 0), ("xflaky-2", 0)]
)
def test_flaky_failures(token, failures):
    assert domain.flaky_failures(token) == failures


def test_shipping_quote():
    assert domain.shipping_quote(Decimal("20"), 3) == Decimal("6.40")
    assert domain.shipping_quote(Decimal("100"), 3) == Decimal("0.00")


@given(
    total=st.decimals(min_value=0, max_value=Decimal("99.99"), places=2), units=st.integers(min_value=1, max_value=5000)
)
def test_shipping_below_the_free_threshold_is_whole_cents_and_grows_with_units(total, units):
    quote = domain.shipping_quote(total, units)
    assert quote == quote.quantize(Decimal("0.01")) and quote > 0
    assert domain.shipping_quote(total, units + 1) > quote
