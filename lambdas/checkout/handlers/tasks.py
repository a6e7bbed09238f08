"""Step Functions task handlers of the checkout saga (one Lambda function per handler).

Each parses its payload with the Powertools parser (a malformed payload fails the step, which the
state machine's catch-all compensates) and delegates to `checkout.steps`. Exceptions keep their
class name as `errorType`: PaymentDeclined / OutOfStock are caught, PaymentGatewayUnavailable retried.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from checkout import steps as service
from checkout.models import CheckoutState, ItemStep, MarkOrderStep, RefundStep
from checkout.repository import Payments
from contracts.errors import OutOfStock, PaymentDeclined
from inventory.repository import Stock
from orders.repository import OrderRecords
from plumbing.aws import env

logger = Logger()
tracer = Tracer()
metrics = Metrics()

# Only what each function's IAM role allows is touched; table handles are cheap (no call at init).
orders = OrderRecords(env("ORDERS_TABLE"))
payments = Payments(env("ORDERS_TABLE"))

CORRELATION_ID = "correlation_id"


def _inventory() -> Stock:
    return Stock(env("INVENTORY_TABLE"), env("ORDERS_TABLE"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ItemStep)
def reserve_item(event: ItemStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(order_id=event.order_id, sku=event.sku)
    try:
        result = service.reserve(event, _inventory(), env("INVENTORY_EVENTS_QUEUE_URL"))
    except OutOfStock:
        metrics.add_metric(name="OutOfStock", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="ItemsReserved", unit=MetricUnit.Count, value=0 if result["replayed"] else 1)
    logger.info("item reserved", extra=result)
    return result


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ItemStep)
def release_item(event: ItemStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(order_id=event.order_id, sku=event.sku)
    result = service.release(event, _inventory(), env("INVENTORY_EVENTS_QUEUE_URL"))
    metrics.add_metric(name="ItemsReleased", unit=MetricUnit.Count, value=1 if result["released"] else 0)
    logger.info("item released", extra=result)
    return result


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=CheckoutState)
def charge_payment(event: CheckoutState, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(order_id=event.order_id)
    try:
        result = service.charge(event, payments, env("INVENTORY_EVENTS_QUEUE_URL"))
    except PaymentDeclined:
        metrics.add_metric(name="PaymentsDeclined", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="PaymentsCharged", unit=MetricUnit.Count, value=1)
    logger.info("payment charged", extra=result)
    return result


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=RefundStep)
def refund_payment(event: RefundStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(order_id=event.order_id)
    result = service.refund(event, payments, env("INVENTORY_EVENTS_QUEUE_URL"))
    metrics.add_metric(name="PaymentsRefunded", unit=MetricUnit.Count, value=0 if result.get("replayed") else 1)
    logger.info("payment refunded", extra=result)
    return result


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID, clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=CheckoutState)
def quote_shipping(event: CheckoutState, context: LambdaContext) -> dict[str, Any]:
    return service.quote(event)


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=CheckoutState)
def ship_order(event: CheckoutState, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(order_id=event.order_id)
    result = service.ship(event, _inventory(), env("INVENTORY_EVENTS_QUEUE_URL"), env("ORDER_EVENTS_TOPIC_ARN"))
    metrics.add_metric(name="OrdersShipped", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ItemsShipped", unit=MetricUnit.Count, value=result["items_committed"])
    logger.info("order shipped", extra=result)
    return result


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=MarkOrderStep)
def mark_order(event: MarkOrderStep, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(order_id=event.order_id)
    result = service.mark(event, orders)
    logger.info("order marked", extra=result)
    return result
