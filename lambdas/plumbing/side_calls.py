"""Fire-and-forget side calls (seed 003): hand an event to another function and do not wait for it.

`InvocationType="Event"` returns as soon as Lambda has queued the event (202); what the side function
does, how long it takes and whether it fails is no longer the caller's business. Lambda retries a
failed event (the side function's async-invoke config: bounded retries, a maximum event age) and then
keeps it on the side function's on-failure queue. Even queuing the event must not fail the caller's
request: a failed `Invoke` is logged and reported as False, never raised.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

logger = logging.getLogger(__name__)

# One attempt more at most and short timeouts: the caller's latency budget is not spent on a side call.
SIDE_CALL_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1, read_timeout=2)


@functools.cache
def _lambda_client() -> Any:
    return boto3.client("lambda", config=SIDE_CALL_CONFIG)


def fire_and_forget(function_name: str, payload: BaseModel) -> bool:
    """True when Lambda accepted the event for asynchronous invocation."""
    try:
        response = _lambda_client().invoke(
            FunctionName=function_name, InvocationType="Event", Payload=payload.model_dump_json().encode()
        )
    except (ClientError, BotoCoreError):
        logger.warning("side call to %s could not be queued", function_name, exc_info=True)
        return False
    return bool(response.get("StatusCode") == 202)


def reset() -> None:
    _lambda_client.cache_clear()
