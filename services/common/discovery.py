"""Service discovery through SSM Parameter Store (seed 003: producers and consumers find each other
through a registry, never through hard-wired addresses).

All parameters under the prefix are read with one paginated GetParametersByPath call and cached for a
short TTL: a changed parameter (a new backend URL, a moved Redis endpoint) is picked up within the TTL
without a restart, and SSM sees one call per TTL per process instead of one per request. If SSM cannot
be reached when the cache expires, the last known values keep serving (and a warning is logged): a
registry blip must not take the tier down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3

logger = logging.getLogger(__name__)


class DiscoveryError(LookupError):
    """A required discovery parameter is missing (or the registry was never reachable)."""


class Discovery:
    def __init__(
        self,
        prefix: str,
        *,
        ttl_seconds: float = 30.0,
        ssm_client: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self.ttl_seconds = ttl_seconds
        self._ssm = ssm_client or boto3.client("ssm")
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, str] | None = None
        self._expires_at = 0.0

    def _fetch(self) -> dict[str, str]:
        values: dict[str, str] = {}
        paginator = self._ssm.get_paginator("get_parameters_by_path")
        for page in paginator.paginate(Path=self.prefix + "/", Recursive=False, WithDecryption=True):
            for parameter in page["Parameters"]:
                values[parameter["Name"].rsplit("/", 1)[-1]] = parameter["Value"]
        return values

    def snapshot(self) -> dict[str, str]:
        """All parameters under the prefix (name without prefix -> value), at most `ttl_seconds` old."""
        with self._lock:
            now = self._clock()
            if self._values is None or now >= self._expires_at:
                try:
                    self._values = self._fetch()
                except Exception as error:  # botocore raises many types; any of them means "registry unreachable"
                    if self._values is None:
                        raise DiscoveryError(f"cannot read {self.prefix}/ from SSM: {error}") from error
                    logger.warning("discovery refresh failed, serving cached values", extra={"error": str(error)})
                self._expires_at = now + self.ttl_seconds
            return dict(self._values)

    def get(self, name: str) -> str:
        value = self.snapshot().get(name)
        if not value:
            raise DiscoveryError(f"SSM parameter {self.prefix}/{name} is not set")
        return value

    def optional(self, name: str) -> str | None:
        return self.snapshot().get(name) or None
