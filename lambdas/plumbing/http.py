"""The REST handlers' shared wiring: a Powertools resolver that validates requests against the contract's
models (and so can publish them as OpenAPI), the errors every route translates, and JSON answers that
echo the correlation id."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, SecurityScheme
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from contracts.api import API_KEY_HEADER, CORRELATION_HEADER, ERROR_STATUSES, ConflictBody, ErrorBody
from contracts.types import describe_validation_error

# For Logger.inject_lambda_context: the caller's correlation id when it sends one (either header
# spelling), else API Gateway's request id. Every log line and published event carries it.
CORRELATION_ID_PATH = 'headers."X-Correlation-Id" || headers."x-correlation-id" || requestContext.requestId'

API_KEY_SCHEME = "apiKey"
# `in_` by its alias: mypy sees only the alias as the constructor's parameter (populate_by_name is runtime-only).
SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    API_KEY_SCHEME: APIKey.model_validate(
        {"name": API_KEY_HEADER, "in": APIKeyIn.header, "description": "API Gateway API key"}
    )
}
SECURITY: list[dict[str, list[str]]] = [{API_KEY_SCHEME: []}]
# The back office (staff routes: approvals) signs with SigV4 as the back-office role instead; API Gateway's
# own way to document it is an apiKey scheme on the Authorization header marked `awsSigv4`.
SIGV4_SCHEME = "sigv4"
SECURITY_SCHEMES[SIGV4_SCHEME] = APIKey.model_validate(
    {
        "name": "Authorization",
        "in": APIKeyIn.header,
        "description": "AWS Signature Version 4 (service execute-api) with the back-office role's credentials",
        "x-amazon-apigateway-authtype": "awsSigv4",
    }
)
BACK_OFFICE: list[dict[str, list[str]]] = [{SIGV4_SCHEME: []}]
# Customers (the storefront's signed-in users) send their Cognito ID token; API Gateway's Cognito user
# pool authorizer verifies it (contracts/identity.py says what a token is).
CUSTOMER_SCHEME = "cognito"
SECURITY_SCHEMES[CUSTOMER_SCHEME] = APIKey.model_validate(
    {
        "name": "Authorization",
        "in": APIKeyIn.header,
        "description": "Amazon Cognito ID token of the signed-in customer (the web tier's GET /session `token`)",
        "x-amazon-apigateway-authtype": "cognito_user_pools",
    }
)
CUSTOMER: list[dict[str, list[str]]] = [{CUSTOMER_SCHEME: []}]


def json_response(status: int, body: BaseModel | dict[str, Any], correlation_id: str | None) -> Response:
    """A JSON response that echoes the correlation id, so a client can quote it in a support request."""
    payload = body.model_dump(mode="json", exclude_none=True) if isinstance(body, BaseModel) else body
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=payload,
        headers={CORRELATION_HEADER: correlation_id or ""},
    )


def answers(success: int, model: type[BaseModel], description: str, *errors: int) -> dict[int, Any]:
    """The OpenAPI `responses` of a route: its success answer and each error status it (or API Gateway in
    front of it: 403, 429) can give, with the contract's body models."""
    documented: dict[int, Any] = {
        success: {"description": description, "content": {"application/json": {"model": model}}}
    }
    for status in (400, 403, *errors, 429, 503):
        body = ConflictBody if status == 409 else ErrorBody
        documented[status] = {"description": ERROR_STATUSES[status], "content": {"application/json": {"model": body}}}
    return dict(sorted(documented.items()))


def _validation_message(errors: Any) -> str:
    """Powertools' validation errors are pydantic's, located under `body`/`header`/`path`; name the field
    the way a client can find it (`items.0.quantity`, `header idempotency-key`: Powertools matches
    header names case-insensitively and reports them in lower case)."""
    problems = []
    for detail in errors:
        location = [str(part) for part in detail.get("loc", ())]
        if location[:1] == ["body"]:
            location = location[1:]
        elif location[:1] in (["header"], ["path"], ["query"]):
            location = [f"{location[0]} {'.'.join(location[1:])}"]
        problems.append(f"{'.'.join(location) or 'body'}: {detail.get('msg', 'invalid')}")
    return "; ".join(problems)


def rest_resolver(logger: Logger) -> APIGatewayRestResolver:
    """A resolver with request validation (Powertools' OpenAPI middleware) whose failures, malformed
    JSON and failed AWS calls answer with the contract's error bodies."""
    app = APIGatewayRestResolver(enable_validation=True)

    def error(status: int, message: str) -> Response:
        return json_response(status, ErrorBody(message=message), logger.get_correlation_id())

    @app.exception_handler(RequestValidationError)
    def _invalid_request(failure: RequestValidationError) -> Response:
        # Powertools reports a malformed body as a validation error located at ("body", <char offset>).
        if any(detail.get("type") == "json_invalid" for detail in failure.errors()):
            return error(400, "Invalid request: the body is not valid JSON")
        return error(400, f"Invalid request: {_validation_message(failure.errors())}")

    @app.exception_handler(ValidationError)
    def _invalid_body(failure: ValidationError) -> Response:
        return error(400, f"Invalid request: {describe_validation_error(failure)}")

    @app.exception_handler(ClientError)
    def _dependency_failed(_failure: ClientError) -> Response:
        logger.exception("AWS call failed")
        return error(503, "Temporarily unavailable; retry (with the same Idempotency-Key)")

    return app
