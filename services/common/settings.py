"""Process settings, read once from the environment (the EC2 systemd unit or the local cloud sets them)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ServiceSettings:
    service: str
    host: str
    port: int
    discovery_prefix: str
    discovery_ttl_seconds: float
    redis_tls: bool
    alb_gateway: str | None
    instance_id: str
    # Where the Cognito user pool's JWKS is served when not on AWS (an emulator's endpoint; contracts/identity.py).
    cognito_jwks_endpoint: str | None = None
    # An emulator's API Gateway endpoint: WebSocket APIs are then served at
    # ws://<host>/_aws/execute-api/<api id>/<stage> instead of wss://<api id>.execute-api.<region>.amazonaws.com/<stage>.
    execute_api_endpoint: str | None = None

    @property
    def served_by(self) -> str:
        """Value of the `X-Served-By` response header: which instance (and port) answered."""
        return f"{self.instance_id}:{self.port}"

    @classmethod
    def from_env(cls, service: str, environ: dict[str, str] | None = None) -> ServiceSettings:
        env = os.environ if environ is None else environ
        prefix = env.get("DISCOVERY_PREFIX", "").rstrip("/")
        if not prefix.startswith("/"):
            raise RuntimeError("DISCOVERY_PREFIX must be an SSM path such as /lc/sandbox/discovery")
        return cls(
            service=service,
            # Loopback by default: only the EC2 unit opts in to 0.0.0.0 (its security group admits the ALB only).
            host=env.get("SERVICE_HOST", "127.0.0.1"),
            port=int(env.get("SERVICE_PORT", "8080")),
            discovery_prefix=prefix,
            discovery_ttl_seconds=float(env.get("DISCOVERY_TTL_SECONDS", "30")),
            redis_tls=_flag(env.get("REDIS_TLS")),
            alb_gateway=env.get("ALB_GATEWAY") or None,
            # INSTANCE_ID may be set by the unit from instance metadata; the host name identifies an EC2 host too.
            instance_id=env.get("INSTANCE_ID") or socket.gethostname(),
            cognito_jwks_endpoint=env.get("COGNITO_JWKS_ENDPOINT") or None,
            execute_api_endpoint=env.get("EXECUTE_API_ENDPOINT") or None,
        )
