"""Orders REST API (API Gateway proxy integration): POST /orders, GET|DELETE /orders/{order_id},
POST /orders/{order_id}/checkout (partners, API key), GET /catalog (what the orders price; cached at the
stage), GET|DELETE /me/orders/{order_id} and POST /me/orders/{order_id}/checkout (the signed-in customer's
own orders, Cognito ID token).
Powertools routes and validates against the contract's models (the
same resolver publishes docs/openapi.json), logs with a correlation id, traces, emits EMF metrics and
makes POST /orders idempotent."""

# No `from __future__ import annotations`: Powertools reads the route signatures at run time to
# validate requests and to generate the OpenAPI document.
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts.api import (
    IDEMPOTENCY_HEADER,
    CheckoutRequest,
    CheckoutStarted,
    IdempotencyKey,
    OrderAccepted,
    OrderCancelled,
)
from contracts.catalog import CATALOG, Catalog
from contracts.errors import InvalidStatusTransition, OrderNotFound
from contracts.identity import USERNAME_CLAIM
from contracts.orders import Order, OrderRequest
from contracts.side_calls import PurchaseSignal
from contracts.types import OrderId
from orders.repository import OrderRecords
from orders.service import OrdersService, order_id_for
from plumbing.aws import env
from plumbing.http import CORRELATION_ID_PATH, CUSTOMER, answers, json_response, rest_resolver
from plumbing.idempotency import API_IDEMPOTENCY_SECONDS, idempotency_store
from plumbing.side_calls import fire_and_forget

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = rest_resolver(logger)

service = OrdersService(
    orders=OrderRecords(env("ORDERS_TABLE")),
    topic_arn=env("ORDER_EVENTS_TOPIC_ARN"),
    state_machine_arn=env("CHECKOUT_STATE_MACHINE_ARN"),
)
# Side service the customer must not wait for: invoked asynchronously, its failures never reach them.
RECOMMENDATIONS_FUNCTION = env("RECOMMENDATIONS_FUNCTION_NAME")
# Keyed on the Idempotency-Key (scoped per API key); the body is checked, not keyed: the same key with
# another body is the client's bug and gets a 422 instead of silently placing a second order.
idempotency = IdempotencyConfig(
    event_key_jmespath="idempotency_key",
    payload_validation_jmespath="body",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=API_IDEMPOTENCY_SECONDS,
)
OrderPath = Annotated[OrderId, Path(description="The order id POST /orders answered with")]


def _json(status: int, body: Any) -> Response[Any]:
    return json_response(status, body, logger.get_correlation_id())


# --- errors -> HTTP (validation, bad JSON and AWS failures: plumbing.http) ----------------------------


@app.exception_handler(OrderNotFound)
def _not_found(error: OrderNotFound) -> Response:
    return _json(404, {"message": str(error)})


@app.exception_handler(InvalidStatusTransition)
def _conflict(error: InvalidStatusTransition) -> Response:
    return _json(409, {"message": str(error), "status": str(error.current)})


@app.exception_handler(IdempotencyValidationError)
def _key_reused(error: IdempotencyValidationError) -> Response:
    return _json(422, {"message": f"This {IDEMPOTENCY_HEADER} was already used with a different body"})


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _in_progress(error: IdempotencyAlreadyInProgressError) -> Response:
    return _json(409, {"message": f"A request with this {IDEMPOTENCY_HEADER} is still in progress; retry later"})


@app.exception_handler(IdempotencyPersistenceLayerError)
def _idempotency_store_failed(error: IdempotencyPersistenceLayerError) -> Response:
    logger.exception("idempotency store failed")
    return _json(503, {"message": f"Temporarily unavailable; retry (with the same {IDEMPOTENCY_HEADER})"})


# --- routes ---------------------------------------------------------------------------------------


@idempotent_function(data_keyword_argument="request", config=idempotency, persistence_store=idempotency_store())
def place_order_once(request: dict[str, Any], order: OrderRequest) -> dict[str, str]:
    """Runs once per (API key, Idempotency-Key); a repeat gets the stored answer without publishing.
    `request` (key + raw body) is what idempotency hashes; `order` is the same body, validated."""
    order_id = order_id_for(request["idempotency_key"], request["body"])
    accepted = service.place(order, order_id, correlation_id=logger.get_correlation_id() or order_id)
    metrics.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
    signal = PurchaseSignal(order_id=order_id, customer_id=order.customer_id, skus=[i.sku for i in order.items])
    if not fire_and_forget(RECOMMENDATIONS_FUNCTION, signal):
        metrics.add_metric(name="SideCallsNotQueued", unit=MetricUnit.Count, value=1)
    return accepted.model_dump(mode="json")


@app.post(
    "/orders",
    summary="Place an order",
    description="Announces the order (OrderPlaced) and answers at once; consumers record it a moment later.",
    responses=answers(202, OrderAccepted, "Accepted: the order is announced", 409, 422),
)
@tracer.capture_method
def place_order(
    order: Annotated[OrderRequest, Body()],
    idempotency_key: Annotated[
        IdempotencyKey,
        Header(
            alias=IDEMPOTENCY_HEADER,
            description="A key of the client's choosing; a retry with the same key and body places the order once",
        ),
    ],
) -> Response[OrderAccepted]:
    # Validated before the idempotency layer: a bad request stores no record and publishes nothing.
    client = app.current_event.request_context.identity.api_key_id or "anonymous"
    logger.append_keys(idempotency_key=idempotency_key, customer_id=order.customer_id)
    body = app.current_event.json_body
    result = place_order_once(request={"idempotency_key": f"{client}:{idempotency_key}", "body": body}, order=order)
    logger.append_keys(order_id=result["order_id"])
    logger.info("order accepted")
    return _json(202, result)


@app.get(
    "/catalog",
    summary="List the catalogue",
    description="The products and their prices (contracts/catalog.py); API Gateway caches the answer at the stage.",
    responses=answers(200, Catalog, "The catalogue"),
)
def get_catalog() -> Response[Catalog]:
    return _json(200, CATALOG)


@app.get("/orders/<order_id>", summary="Read an order", responses=answers(200, Order, "The order record", 404))
@tracer.capture_method
def get_order(order_id: OrderPath) -> Response[Order]:
    return _json(200, service.get(order_id))


@app.delete(
    "/orders/<order_id>",
    summary="Cancel an order",
    description="Allowed while the order is RECEIVED and no checkout has started; repeating it answers the same.",
    responses=answers(200, OrderCancelled, "Cancelled (OrderCancelled announced)", 404, 409),
)
@tracer.capture_method
def cancel_order(order_id: OrderPath) -> Response[OrderCancelled]:
    logger.append_keys(order_id=order_id)
    result = service.cancel(order_id, correlation_id=logger.get_correlation_id() or order_id)
    metrics.add_metric(name="OrdersCancelled", unit=MetricUnit.Count, value=1)
    logger.info("order cancelled")
    return _json(200, result)


@app.post(
    "/orders/<order_id>/checkout",
    summary="Check out an order",
    description="Starts the checkout saga once per order; repeating it returns the same execution.",
    responses=answers(202, CheckoutStarted, "Checkout started", 404, 409),
)
@tracer.capture_method
def checkout(
    order_id: OrderPath, request: Annotated[CheckoutRequest | None, Body()] = None
) -> Response[CheckoutStarted]:
    logger.append_keys(order_id=order_id)
    result = service.checkout(
        order_id, request or CheckoutRequest(), correlation_id=logger.get_correlation_id() or order_id
    )
    metrics.add_metric(name="CheckoutsStarted", unit=MetricUnit.Count, value=0 if result.already_started else 1)
    logger.info("checkout started", extra={"execution_arn": result.execution_arn})
    return _json(202, result)


def _customer_order(order_id: str) -> Order:
    """The order if it is the signed-in customer's (the Cognito authorizer's `cognito:username` claim);
    another customer's order is reported as absent, not forbidden: ids are not to be probed."""
    claims = app.current_event.request_context.authorizer.claims or {}
    order = service.get(order_id)
    if not claims.get(USERNAME_CLAIM) or order.customer_id != claims[USERNAME_CLAIM]:
        raise OrderNotFound(order_id)
    return order


@app.get(
    "/me/orders/<order_id>",
    summary="Read one of my orders",
    description="The signed-in customer's own order; another customer's is a 404.",
    security=CUSTOMER,
    responses=answers(200, Order, "The order record", 401, 404),
)
@tracer.capture_method
def get_my_order(order_id: OrderPath) -> Response[Order]:
    return _json(200, _customer_order(order_id))


@app.delete(
    "/me/orders/<order_id>",
    summary="Cancel one of my orders",
    description="As DELETE /orders/{order_id}, for the signed-in customer's own orders only.",
    security=CUSTOMER,
    responses=answers(200, OrderCancelled, "Cancelled (OrderCancelled announced)", 401, 404, 409),
)
@tracer.capture_method
def cancel_my_order(order_id: OrderPath) -> Response[OrderCancelled]:
    _customer_order(order_id)
    return cancel_order(order_id)


@app.post(
    "/me/orders/<order_id>/checkout",
    summary="Check out one of my orders",
    description="As POST /orders/{order_id}/checkout, for the signed-in customer's own orders only: the "
    "storefront's Pay button, through the web tier with the customer's ID token.",
    security=CUSTOMER,
    responses=answers(202, CheckoutStarted, "Checkout started", 401, 404, 409),
)
@tracer.capture_method
def check_out_my_order(
    order_id: OrderPath, request: Annotated[CheckoutRequest | None, Body()] = None
) -> Response[CheckoutStarted]:
    _customer_order(order_id)
    return checkout(order_id, request)


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return app.resolve(event, context)
