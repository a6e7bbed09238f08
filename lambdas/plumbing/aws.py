"""boto3 clients, created on first use and then reused for the life of the execution environment.

Creating them lazily (not at import) keeps a cold start from paying for clients a code path never uses,
and lets tests start moto's `mock_aws` before the first client exists; `reset()` drops the cache between
tests. Standard retry mode: jittered exponential backoff on throttling and transient errors.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import boto3
from botocore.config import Config

BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)


def env(name: str) -> str:
    """A required environment variable; a missing one names itself instead of raising a bare KeyError."""
    try:
        return os.environ[name]
    except KeyError:
        raise RuntimeError(f"environment variable {name} is not set (see docs/design.md)") from None


@functools.cache
def client(service: str) -> Any:
    return boto3.client(service, config=BOTO_CONFIG)


@functools.cache
def table(name: str) -> Any:
    """A DynamoDB Table resource (numbers as Decimal, plain Python values in and out)."""
    return boto3.resource("dynamodb", config=BOTO_CONFIG).Table(name)


def reset() -> None:
    """Forget every cached client (tests call this when a new moto mock starts)."""
    client.cache_clear()
    table.cache_clear()
