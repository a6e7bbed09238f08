"""recommendations.handlers.side_call: the asynchronously invoked side service, on moto DynamoDB."""

from __future__ import annotations

import pytest

from contracts.side_calls import PurchaseSignal

SIGNAL = {"order_id": "order-0001", "customer_id": "cust-1", "skus": ["SKU-TEA-001", "SKU-MUG-002", "SKU-TEA-001"]}


@pytest.fixture
def side_call(load_handler):
    return load_handler("recommendations.handlers.side_call")


def test_records_each_sku_of_the_order_with_the_others_once(aws, side_call, lambda_context):
    assert side_call.lambda_handler(SIGNAL, lambda_context) == {"skus": 2, "recorded": 2}
    # Asynchronous invocations are at least once: the same event again records nothing new.
    assert side_call.lambda_handler(SIGNAL, lambda_context) == {"skus": 2, "recorded": 0}

    assert side_call.store.orders_with("SKU-TEA-001") == {"order-0001": ["SKU-MUG-002"]}
    assert side_call.store.orders_with("SKU-MUG-002") == {"order-0001": ["SKU-TEA-001"]}
    assert {item["pk"] for item in aws.items()} == {"RECS#SKU-TEA-001", "RECS#SKU-MUG-002"}


def test_a_simulated_outage_fails_the_invocation_so_lambda_retries_it_and_writes_nothing(
    aws, side_call, lambda_context, monkeypatch
):
    from recommendations import service

    monkeypatch.setattr(service, "SIMULATED_OUTAGE_SECONDS", 0.01)
    down = {**SIGNAL, "customer_id": f"{service.SIMULATED_OUTAGE_PREFIX}cust-1"}

    with pytest.raises(service.RecommendationsUnavailable):
        side_call.lambda_handler(down, lambda_context)
    assert aws.items() == []


def test_a_malformed_signal_is_refused_not_half_recorded(aws, side_call, lambda_context):
    with pytest.raises(ValueError):
        side_call.lambda_handler({**SIGNAL, "skus": []}, lambda_context)
    assert aws.items() == []
    assert PurchaseSignal.model_validate(SIGNAL).skus[0] == "SKU-TEA-001"
