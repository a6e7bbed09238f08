"""`$connect` and `$disconnect` of the live-status WebSocket API: store and remove the connection under
the customer the authorizer verified (its context reaches every route of the connection)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from live.connections import Connections
from plumbing.aws import env

logger = Logger()
connections = Connections(env("CONNECTIONS_TABLE"))


def _caller(event: dict[str, Any]) -> tuple[str, str]:
    request = event["requestContext"]
    authorizer = request.get("authorizer") or {}
    customer = authorizer.get("customer") or (authorizer.get("lambda") or {}).get("customer")
    if not customer:
        raise PermissionError("no verified customer on this connection")  # the authorizer guards $connect
    return customer, request["connectionId"]


@logger.inject_lambda_context(clear_state=True)
def connect(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    customer, connection_id = _caller(event)
    connections.add(customer, connection_id)
    logger.info("connected", extra={"connection_id": connection_id})
    return {"statusCode": 200}


@logger.inject_lambda_context(clear_state=True)
def disconnect(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    customer, connection_id = _caller(event)
    connections.remove(customer, connection_id)
    logger.info("disconnected", extra={"connection_id": connection_id})
    return {"statusCode": 200}
