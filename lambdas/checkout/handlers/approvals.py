"""Approvals: the Step Functions task that parks a token (`request_approval`) and the REST API an
approver uses (`lambda_handler`: GET /approvals, POST /approvals/{order_id})."""

# No `from __future__ import annotations`: Powertools reads the route signatures at run time to
# validate requests and to generate the OpenAPI document.
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from checkout import approvals as service
from checkout.models import ApprovalTask
from checkout.repository import Approvals
from contracts.api import ApprovalDecided, ApprovalDecision, PendingApprovals
from contracts.errors import ApprovalAlreadyDecided, ApprovalNotPending
from contracts.types import OrderId
from plumbing import aws
from plumbing.http import BACK_OFFICE, CORRELATION_ID_PATH, answers, json_response, rest_resolver

logger = Logger()
tracer = Tracer()
app = rest_resolver(logger)
approvals = Approvals(aws.env("ORDERS_TABLE"))


def _json(status: int, body: Any) -> Response[Any]:
    return json_response(status, body, logger.get_correlation_id())


@app.exception_handler(ApprovalNotPending)
def _not_pending(error: ApprovalNotPending) -> Response:
    return _json(404, {"message": str(error)})


@app.exception_handler(ApprovalAlreadyDecided)
def _decided(error: ApprovalAlreadyDecided) -> Response:
    return _json(409, {"message": str(error)})


@app.get(
    "/approvals",
    summary="List pending approvals",
    responses=answers(200, PendingApprovals, "Oldest first"),
    security=BACK_OFFICE,
)
@tracer.capture_method
def list_approvals() -> Response[PendingApprovals]:
    return _json(200, service.pending(approvals))


@app.post(
    "/approvals/<order_id>",
    summary="Approve or reject a large order",
    description="Completes the checkout's waiting approval task (SendTaskSuccess / SendTaskFailure).",
    responses=answers(200, ApprovalDecided, "Decided; the checkout goes on", 404, 409),
    security=BACK_OFFICE,
)
@tracer.capture_method
def decide(
    order_id: Annotated[OrderId, Path(description="The order waiting for approval")],
    decision: Annotated[ApprovalDecision, Body()],
) -> Response[ApprovalDecided]:
    logger.append_keys(order_id=order_id, decision=decision.decision)
    result = service.decide(order_id, decision, approvals, aws.client("stepfunctions"))
    logger.info("approval decided")
    return _json(200, result)


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH, clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=ApprovalTask)
def request_approval(event: ApprovalTask, context: LambdaContext) -> dict[str, str]:
    logger.append_keys(order_id=event.order_id)
    result = service.request(event, approvals)
    logger.info("approval requested")
    return result
