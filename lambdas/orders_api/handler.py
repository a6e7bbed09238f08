"""Orders REST API (API Gateway proxy integration): POST /orders, GET|DELETE /orders/{order_id},
POST /orders/{order_id}/checkout. Powertools does the routing, logging with a correlation id,
tracing, EMF metrics and the idempotency of POST /orders."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import BadRequestError
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import ValidationError

from orders_api.service import OrdersService, order_id_for
from shared.aws import env
from shared.errors import InvalidStatusTransition, OrderNotFound
from shared.http import CORRELATION_ID_PATH, json_response
from shared.models import CheckoutRequest, OrderRequest, describe_validation_error
from shared.powertools import API_IDEMPOTENCY_SECONDS, idempotency_store
from shared.repositories import OrdersRepository

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 128

logger = Logger()
tracer = Tracer()
metrics = Metrics()
app = APIGatewayRestResolver()

service = OrdersService(
    orders=OrdersRepository(env("ORDERS_TABLE")),
    topic_arn=env("ORDER_EVENTS_TOPIC_ARN"),
    cancel_queue_url=env("CANCEL_QUEUE_URL"),
    state_machine_arn=env("CHECKOUT_STATE_MACHINE_ARN"),
)
# Keyed on the Idempotency-Key (scoped per API key); the body is checked, not keyed: the same key with
# another body is the client's bug and gets a 422 instead of silently placing a second order.
idempotency = IdempotencyConfig(
    event_key_jmespath="idempotency_key",
    payload_validation_jmespath="body",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=API_IDEMPOTENCY_SECONDS,
)


def _json(status: int, body: dict[str, Any]) -> Response:
    return json_response(status, body, logger.get_correlation_id())


# --- errors -> HTTP ------------------------------------------------------------------------------


@app.exception_handler(ValidationError)
def _invalid_body(error: ValidationError) -> Response:
    return _json(400, {"message": f"Invalid request: {describe_validation_error(error)}"})


@app.exception_handler(json.JSONDecodeError)
def _not_json(error: json.JSONDecodeError) -> Response:
    return _json(400, {"message": "Invalid request: the body is not valid JSON"})


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


@app.exception_handler(ClientError)
@app.exception_handler(IdempotencyPersistenceLayerError)
def _dependency_failed(error: Exception) -> Response:
    logger.exception("AWS call failed")
    return _json(503, {"message": "Temporarily unavailable; retry (with the same Idempotency-Key)"})


# --- routes ---------------------------------------------------------------------------------------


def _body() -> Any:
    """The JSON body, `{}` when there is none (Powertools' json_body cannot decode an absent body)."""
    return app.current_event.json_body if app.current_event.body else {}


@idempotent_function(data_keyword_argument="request", config=idempotency, persistence_store=idempotency_store())
def place_order_once(request: dict[str, Any], order: OrderRequest) -> dict[str, str]:
    """Runs once per (API key, Idempotency-Key); a repeat gets the stored answer without publishing.
    `request` (key + raw body) is what idempotency hashes; `order` is the same body, validated."""
    order_id = order_id_for(request["idempotency_key"], request["body"])
    result = service.place(order, order_id, correlation_id=logger.get_correlation_id() or order_id)
    metrics.add_metric(name="OrdersPlaced", unit=MetricUnit.Count, value=1)
    return result


@app.post("/orders")
@tracer.capture_method
def place_order() -> Response:
    key = (app.current_event.headers.get(IDEMPOTENCY_HEADER) or "").strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise BadRequestError(f"The {IDEMPOTENCY_HEADER} header is required (1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters)")
    body = _body()
    # Validate before the idempotency layer: a bad request stores no record and publishes nothing.
    order_request = parse(event=body, model=OrderRequest)
    client = app.current_event.request_context.identity.api_key_id or "anonymous"
    logger.append_keys(idempotency_key=key, customer_id=order_request.customer_id)
    result = place_order_once(request={"idempotency_key": f"{client}:{key}", "body": body}, order=order_request)
    logger.append_keys(order_id=result["order_id"])
    logger.info("order accepted")
    return _json(202, result)


@app.get("/orders/<order_id>")
@tracer.capture_method
def get_order(order_id: str) -> Response:
    return _json(200, service.get(order_id))


@app.delete("/orders/<order_id>")
@tracer.capture_method
def cancel_order(order_id: str) -> Response:
    logger.append_keys(order_id=order_id)
    result = service.cancel(order_id, correlation_id=logger.get_correlation_id() or order_id)
    metrics.add_metric(name="OrdersCancelled", unit=MetricUnit.Count, value=1)
    logger.info("order cancelled")
    return _json(200, result)


@app.post("/orders/<order_id>/checkout")
@tracer.capture_method
def checkout(order_id: str) -> Response:
    logger.append_keys(order_id=order_id)
    request = parse(event=_body(), model=CheckoutRequest)
    result = service.checkout(order_id, request, correlation_id=logger.get_correlation_id() or order_id)
    metrics.add_metric(name="CheckoutsStarted", unit=MetricUnit.Count, value=0 if result["already_started"] else 1)
    logger.info("checkout started", extra={"execution_arn": result["execution_arn"]})
    return _json(202, result)


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    return app.resolve(event, context)
