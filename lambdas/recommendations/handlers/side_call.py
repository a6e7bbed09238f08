"""Asynchronously invoked by the orders API (POST /orders) with a `PurchaseSignal`. An exception fails
the invocation: Lambda retries it (the function's async-invoke config) and then sends it to the
on-failure queue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts.side_calls import PurchaseSignal
from plumbing.aws import env
from recommendations import service
from recommendations.repository import BoughtTogether

logger = Logger()
tracer = Tracer()
store = BoughtTogether(env("ORDERS_TABLE"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    signal = PurchaseSignal.model_validate(event)
    logger.append_keys(order_id=signal.order_id)
    result = service.record(signal, store)
    logger.info("purchase signal recorded", extra=result)
    return result
