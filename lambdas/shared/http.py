"""Conventions shared by the REST handlers: correlation ids and JSON responses."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

CORRELATION_HEADER = "X-Correlation-Id"
# For Logger.inject_lambda_context: the caller's correlation id when it sends one (either header
# spelling), else API Gateway's request id. Every log line and published event carries it.
CORRELATION_ID_PATH = 'headers."X-Correlation-Id" || headers."x-correlation-id" || requestContext.requestId'


def json_response(status: int, body: dict[str, Any], correlation_id: str | None) -> Response:
    """A JSON response that echoes the correlation id, so a client can quote it in a support request."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={CORRELATION_HEADER: correlation_id or ""},
    )
