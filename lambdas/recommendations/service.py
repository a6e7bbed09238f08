"""Recommendations ("also bought"): a side service the orders API calls without waiting for it.

Nothing the customer sees depends on it, so the orders API fires a `PurchaseSignal` and answers; when
this service is down, only the recommendations lag (the signal waits on the on-failure queue).

A simulated outage, like checkout's test cards: a customer id starting with `SIMULATED_OUTAGE_PREFIX`
makes this service hang for `SIMULATED_OUTAGE_SECONDS` and then fail, as a dependency that times out
would. The end-to-end tests use it to show the caller does not wait and every failure is kept.
"""

from __future__ import annotations

import time

from contracts.side_calls import PurchaseSignal
from recommendations.repository import BoughtTogether

SIMULATED_OUTAGE_PREFIX = "recs-down-"
SIMULATED_OUTAGE_SECONDS = 1.0


class RecommendationsUnavailable(Exception):
    """The side service failed; Lambda retries the event, then keeps it on the on-failure queue."""


def record(signal: PurchaseSignal, store: BoughtTogether) -> dict[str, int]:
    if signal.customer_id.startswith(SIMULATED_OUTAGE_PREFIX):
        time.sleep(SIMULATED_OUTAGE_SECONDS)
        raise RecommendationsUnavailable(f"simulated outage for customer {signal.customer_id}")
    skus = sorted(set(signal.skus))
    recorded = sum(store.record(signal.order_id, sku, [other for other in skus if other != sku]) for sku in skus)
    return {"skus": len(skus), "recorded": recorded}
