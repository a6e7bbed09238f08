"""Structured JSON logs and the correlation id that ties one request together across tiers.

The correlation id arrives in the `X-Correlation-Id` header (or is minted here), is echoed in the
response, forwarded by the web tier to the backend, and published by the backend as the SNS
`correlation_id` attribute, so one id finds the request in web logs, backend logs and every consumer's
logs. It lives in a ContextVar, so concurrent requests on the server's threads never mix ids.

A small stdlib formatter rather than a logging library: one JSON object per line is all CloudWatch
Logs Insights needs, and the instances carry one dependency fewer.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from flask import Flask, g, request

CORRELATION_HEADER = "X-Correlation-Id"
SERVED_BY_HEADER = "X-Served-By"
# Accept a caller's id only if it is short and plain: it is written into logs and message attributes.
_VALID_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
_STANDARD_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def correlation_id() -> str | None:
    return _correlation_id.get()


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": _correlation_id.get(),
        }
        # Fields passed with `extra={...}` become top-level keys.
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def install_request_hooks(app: Flask, served_by: str) -> None:
    """Correlation id in, correlation id + `X-Served-By` out, one access-log line per request."""
    access_log = logging.getLogger(f"{app.name}.access")

    @app.before_request
    def _begin() -> None:
        incoming = request.headers.get(CORRELATION_HEADER, "")
        cid = incoming if _VALID_CORRELATION_ID.match(incoming) else str(uuid.uuid4())
        g.correlation_token = _correlation_id.set(cid)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        response.headers[SERVED_BY_HEADER] = served_by
        cid = _correlation_id.get()
        if cid:
            response.headers[CORRELATION_HEADER] = cid
        if request.path != "/health":  # load-balancer probes would drown the useful lines
            access_log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
                },
            )
        return response

    @app.teardown_request
    def _reset(_error) -> None:
        token = g.pop("correlation_token", None)
        if token is not None:
            _correlation_id.reset(token)
