"""The backend tier's Flask app: accept orders and announce them; never call a consumer.

POST /orders is the whole synchronous path: validate against the contract, publish `OrderPlaced` to
SNS, answer 202. That publish is the only write: the fan-out to fulfilment / notification / analytics and
the cancel window (a delay queue subscribed to the topic) happen there. Whatever happens to the order
next is the consumers' business, asynchronously.
"""

from __future__ import annotations

import logging
import re
import uuid
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

from contracts.orders import Channel
from contracts.tables import order_key
from services.backend.orders import InvalidOrder, order_placed_event, parse_order
from services.common.discovery import Discovery, DiscoveryError
from services.common.observability import correlation_id, install_request_hooks
from services.common.settings import ServiceSettings

logger = logging.getLogger("backend")
CHANNEL: Channel = "web"  # the backend takes orders from the web tier only; the API front door is a Lambda
_ORDER_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HIDDEN_ATTRIBUTES = {"pk", "sk", "expires_at"}
_deserializer = TypeDeserializer()


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

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "service": "backend"})

    @app.post("/orders")
    def place_order():
        try:
            order = parse_order(request.get_data())
        except InvalidOrder as error:
            return _error(400, f"invalid order: {error}")
        event = order_placed_event(order, channel=CHANNEL, correlation_id=correlation_id() or str(uuid.uuid4()))
        # The event is the commitment: once SNS has it, the order exists for every consumer.
        sns.publish(
            TopicArn=discovery.get("order-events-topic-arn"),
            Message=event.model_dump_json(),
            MessageAttributes=event.message_attributes(),
        )
        logger.info("order accepted", extra={"order_id": event.order_id, "total": float(event.total)})
        return jsonify({"order_id": event.order_id, "status": "RECEIVED"}), 202

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
