"""Storefront activity (contracts.activity): one event per product view, search and cart add, sent to
the activity queue the `activity-queue-url` discovery parameter names.

Best effort by design: activity is counted for analytics, it is never part of an order. A send that
fails (or a stage without the parameter) is logged and the shopper's request carries on; the page
never waits longer than one SendMessage.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from contracts.activity import ActivityEvent, ActivityKind
from services.common.discovery import Discovery

logger = logging.getLogger("web.activity")
QUEUE_PARAMETER = "activity-queue-url"
# One quick attempt: a slow queue must not slow the page down.
SEND_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1, read_timeout=2)


class ActivityRecorder:
    def __init__(self, discovery: Discovery, sqs_client: Any = None) -> None:
        self.discovery = discovery
        self._sqs = sqs_client

    def _client(self) -> Any:
        if self._sqs is None:
            self._sqs = boto3.client("sqs", config=SEND_CONFIG)
        return self._sqs

    def record(
        self, kind: ActivityKind, customer_id: str | None, *, sku: str | None = None, query: str | None = None
    ) -> str | None:
        """Send one event; its event id, or None when it was not sent."""
        event = ActivityEvent(
            event_id=str(uuid.uuid4()),
            kind=kind,
            sku=sku,
            query=query,
            customer_id=customer_id,
            occurred_at=datetime.now(UTC),
        )
        try:
            queue_url = self.discovery.optional(QUEUE_PARAMETER)
            if queue_url is None:
                return None
            self._client().send_message(QueueUrl=queue_url, MessageBody=event.model_dump_json(exclude_none=True))
        except Exception as error:  # any botocore or discovery failure: the page goes on without it
            logger.warning("activity not recorded", extra={"kind": kind, "error": str(error)})
            return None
        return event.event_id
