"""Approvals: the Step Functions task that parks a token (`request_approval`) and the REST API an
approver uses (`lambda_handler`: GET /approvals, POST /approvals/{order_id})."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.utilities.parser import event_parser, parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import ValidationError

from approvals import service
from shared import aws
from shared.errors import ApprovalAlreadyDecided, ApprovalNotPending
from shared.http import CORRELATION_ID_PATH, json_response
from shared.models import ApprovalDecision, ApprovalTask, describe_validation_error
from shared.repositories import OrdersRepository

logger = Logger()
tracer = Tracer()
app = APIGatewayRestResolver()
orders = OrdersRepository(aws.env("ORDERS_TABLE"))


def _error(status: int, message: str) -> Response:
    return json_response(status, {"message": message}, logger.get_correlation_id())


@app.exception_handler(ValidationError)
def _invalid(error: ValidationError) -> Response:
    return _error(400, f"Invalid request: {describe_validation_error(error)}")


@app.exception_handler(json.JSONDecodeError)
def _not_json(error: json.JSONDecodeError) -> Response:
    return _error(400, "Invalid request: the body is not valid JSON")


@app.exception_handler(ApprovalNotPending)
def _not_pending(error: ApprovalNotPending) -> Response:
    return _error(404, str(error))


@app.exception_handler(ApprovalAlreadyDecided)
def _decided(error: ApprovalAlreadyDecided) -> Response:
    return _error(409, str(error))


@app.exception_handler(ClientError)
def _dependency_failed(error: ClientError) -> Response:
    logger.exception("AWS call failed")  # the approval was put back to PENDING: the approver may retry
    return _error(503, "Temporarily unavailable; try again")


@app.get("/approvals")
@tracer.capture_method
def list_approvals() -> dict[str, Any]:
    return {"approvals": service.pending(orders)}


@app.post("/approvals/<order_id>")
@tracer.capture_method
def decide(order_id: str) -> dict[str, str]:
    decision = parse(event=app.current_event.json_body if app.current_event.body else {}, model=ApprovalDecision)
    logger.append_keys(order_id=order_id, decision=decision.decision)
    result = service.decide(order_id, decision, orders, aws.client("stepfunctions"))
    logger.info("approval decided")
    return result


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=ApprovalTask)
def request_approval(event: ApprovalTask, context: LambdaContext) -> dict[str, str]:
    logger.append_keys(order_id=event.order_id)
    result = service.request(event, orders)
    logger.info("approval requested")
    return result
