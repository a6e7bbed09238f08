"""The backend tier's Flask app: accept orders and announce them; never call a consumer.

POST /orders is the whole synchronous path: validate against the contract, publish `OrderPlaced` to
SNS, answer 202. With an `Idempotency-Key` header (the web tier always sends one) that happens once per
key: a repeat gets the first answer (services/backend/idempotency.py). That publish is the only write: the fan-out to fulfilment / notification / analytics and
the cancel window (a delay queue subscribed to the topic) happen there. Whatever happens to the order
next is the consumers' business, asynchronously.

A request without `Idempotency-Key` is still accepted and placed (with a fresh order id): the backend
is internal, reached through the internal ALB by the web tier only, and usable by hand or by a future
caller without one. Such a request is simply not deduplicated, and the web tier never retries it.
"""

from __future__ import annotations

import logging
import re
import uuid
from decimal import Decimal
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, jsonify, request
from pydantic import TypeAdapter, ValidationError
from werkzeug.exceptions import HTTPException, InternalServerError

from contracts import limits
from contracts.api import IDEMPOTENCY_HEADER, IdempotencyKey
from contracts.orders import Channel, OrderRequest
from contracts.tables import order_key
from services.backend.idempotency import IdempotentOrders
from services.backend.orders import InvalidOrder, order_placed_event, parse_order
from services.common.discovery import Discovery, DiscoveryError
from services.common.observability import correlation_id, install_request_hooks
from services.common.settings import ServiceSettings

logger = logging.getLogger("backend")
CHANNEL: Channel = "web"  # the backend takes orders from the web tier only; the API front door is a Lambda
_ORDER_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HIDDEN_ATTRIBUTES = {"pk", "sk", "expires_at"}
_deserializer = TypeDeserializer()
_idempotency_key = TypeAdapter(IdempotencyKey)


def _plain(value: Any) -> Any:
    """DynamoDB values -> JSON values (Decimal -> int or float)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [_plain(v) for v in value]
    return value


def _error(http_status: int, message: str, **extra: Any):
    return jsonify({"error": message, **extra}), http_status


def create_app(settings: ServiceSettings, *, discovery: Discovery | None = None) -> Flask:
    app = Flask("backend")
    discovery = discovery or Discovery(settings.discovery_prefix, ttl_seconds=settings.discovery_ttl_seconds)
    sns, dynamodb = boto3.client("sns"), boto3.client("dynamodb")
    idempotent = IdempotentOrders(dynamodb)
    install_request_hooks(app, settings.served_by)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        return _error(error.code or 500, error.description or error.name)

    @app.errorhandler(InternalServerError)
    def _internal_error(_error_: InternalServerError):
        return _error(500, "internal error")

    @app.errorhandler(DiscoveryError)
    @app.errorhandler(BotoCoreError)
    @app.errorhandler(ClientError)
    def _aws_down(error: Exception):
        logger.error("AWS dependency failed", extra={"error": str(error)})
        return _error(503, "order service temporarily unavailable")

    # The same answers as the API channel's POST /orders (lambdas/orders/handlers/api.py).
    @app.errorhandler(IdempotencyValidationError)
    def _key_reused(_error_: IdempotencyValidationError):
        return _error(422, f"this {IDEMPOTENCY_HEADER} was already used with a different order")

    @app.errorhandler(IdempotencyAlreadyInProgressError)
    def _in_progress(_error_: IdempotencyAlreadyInProgressError):
        return _error(409, f"an order with this {IDEMPOTENCY_HEADER} is still being placed; retry in a few seconds")

    @app.errorhandler(IdempotencyPersistenceLayerError)
    def _idempotency_store_failed(error: IdempotencyPersistenceLayerError):
        logger.error("idempotency store failed", extra={"error": str(error)})
        return _error(503, f"order service temporarily unavailable; retry with the same {IDEMPOTENCY_HEADER}")

    def publish(order: OrderRequest, order_id: str | None = None) -> dict[str, Any]:
        event = order_placed_event(
            order, channel=CHANNEL, correlation_id=correlation_id() or str(uuid.uuid4()), order_id=order_id
        )
        # The event is the commitment: once SNS has it, the order exists for every consumer.
        sns.publish(
            TopicArn=discovery.get("order-events-topic-arn"),
            Message=event.model_dump_json(),
            MessageAttributes=event.message_attributes(),
        )
        logger.info("order accepted", extra={"order_id": event.order_id, "total": float(event.total)})
        return {"order_id": event.order_id, "status": "RECEIVED"}

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "service": "backend"})

    @app.post("/orders")
    def place_order():
        try:
            order = parse_order(request.get_data())
        except InvalidOrder as error:
            return _error(400, f"invalid order: {error}")
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return jsonify(publish(order)), 202
        try:
            key = _idempotency_key.validate_python(key)
        except ValidationError:
            return _error(
                400,
                f"invalid {IDEMPOTENCY_HEADER} header: 1 to {limits.MAX_IDEMPOTENCY_KEY_LENGTH} characters, "
                "no surrounding spaces",
            )
        # Validated before the idempotency layer: a bad request stores no record and publishes nothing.
        accepted = idempotent.place(
            discovery.get("idempotency-table"),
            key,
            request.get_json(force=True),  # valid JSON: parse_order accepted it
            lambda order_id: publish(order, order_id),
        )
        return jsonify(accepted), 202

    @app.get("/orders/<order_id>")
    def get_order(order_id: str):
        if not _ORDER_ID.match(order_id):
            return _error(404, "no such order", order_id=order_id)
        item = dynamodb.get_item(
            TableName=discovery.get("orders-table"),
            Key={name: {"S": value} for name, value in order_key(order_id).items()},
        ).get("Item")
        if item is None:
            # Accepted orders are recorded by the fulfilment consumer a moment later.
            return _error(404, "order not recorded (yet)", order_id=order_id, status="PENDING")
        order = {k: _plain(_deserializer.deserialize(v)) for k, v in item.items() if k not in _HIDDEN_ATTRIBUTES}
        return jsonify({"order_id": order_id, **order})

    return app
