"""The Redis (ElastiCache) connection, found through discovery.

- `redis-endpoint` (host:port) says where; when it changes, the next call returns a client for the
  new endpoint (a replaced cluster is picked up without restarting the instances).
- `redis-auth-secret-arn`, when present, names the Secrets Manager secret that holds the AUTH token;
  it is read when the client is (re)built, so it never sits in SSM, user data or the environment.
- REDIS_TLS=true (set on EC2) turns on in-transit encryption with certificate verification.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from services.common.discovery import Discovery

# Fail fast: a request should get a clear error within seconds, not hang on a dead node. redis-py's
# default retry policy backs off for tens of seconds (and counts a refused AUTH as a connection error);
# two quick retries ride out a failover's reconnect without holding a browser's request hostage.
SOCKET_TIMEOUT_SECONDS = 2.0
RETRY = Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2)


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"redis-endpoint must be host:port, got {endpoint!r}")
    return host, int(port)


def auth_token(secret_string: str) -> str:
    """The token from a secret that is either the bare token or JSON with `password`/`authToken`/`token`."""
    try:
        document = json.loads(secret_string)
    except ValueError:
        return secret_string
    if isinstance(document, dict):
        for key in ("password", "authToken", "token"):
            if document.get(key):
                return str(document[key])
        raise ValueError("the Redis auth secret has no password/authToken/token field")
    return secret_string


class RedisProvider:
    def __init__(self, discovery: Discovery, *, tls: bool, secrets_client: Any = None) -> None:
        self._discovery = discovery
        self._tls = tls
        self._secrets = secrets_client
        self._lock = threading.Lock()
        self._key: tuple[str, str | None] | None = None
        self._client: redis.Redis | None = None

    def _build(self, endpoint: str, secret_arn: str | None) -> redis.Redis:
        host, port = parse_endpoint(endpoint)
        password = None
        if secret_arn:
            secrets = self._secrets or boto3.client("secretsmanager")
            password = auth_token(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])
        return redis.Redis(
            host=host,
            port=port,
            password=password,
            ssl=self._tls,
            ssl_cert_reqs="required",
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            health_check_interval=30,
            retry=RETRY,
        )

    def client(self) -> redis.Redis:
        """The client for the currently discovered endpoint (cheap: discovery is cached)."""
        key = (self._discovery.get("redis-endpoint"), self._discovery.optional("redis-auth-secret-arn"))
        with self._lock:
            if self._client is None or key != self._key:
                # The old client is not closed here: other threads may be mid-command on it; it is
                # released when the last reference goes.
                self._client, self._key = self._build(*key), key
            return self._client

    def reachable(self) -> bool:
        try:
            return bool(self.client().ping())
        except (redis.RedisError, OSError, LookupError, ValueError):
            return False
