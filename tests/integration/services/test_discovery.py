"""Service discovery through SSM (moto server), the Redis connection built from it (real
redis-server, AUTH token from Secrets Manager), and the local-ALB routing of backend calls."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.config import Config

from services.common.discovery import Discovery, DiscoveryError
from services.common.redis_client import RedisProvider, auth_token, parse_endpoint
from services.web.backend_client import route
from tests.integration.services.conftest import REGION, free_port, start_redis


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def prefix(aws) -> str:
    """A fresh discovery namespace per test."""
    return f"/lc/unit{uuid.uuid4().hex[:8]}/discovery"


def put(aws, prefix: str, name: str, value: str) -> None:
    aws("ssm").put_parameter(Name=f"{prefix}/{name}", Value=value, Type="String", Overwrite=True)


def test_a_changed_parameter_is_served_from_cache_until_the_ttl_and_then_picked_up(aws, prefix):
    put(aws, prefix, "backend-url", "http://old")
    clock = Clock()
    discovery = Discovery(prefix, ttl_seconds=30, ssm_client=aws("ssm"), clock=clock)
    assert discovery.get("backend-url") == "http://old"

    put(aws, prefix, "backend-url", "http://new")
    clock.now += 29.9
    assert discovery.get("backend-url") == "http://old"  # cached: no SSM call per request
    clock.now += 0.1
    assert discovery.get("backend-url") == "http://new"  # no restart needed


def test_only_parameters_directly_under_the_prefix_are_discovered(aws, prefix):
    put(aws, prefix, "orders-table", "orders")
    put(aws, prefix + "-other", "orders-table", "someone-elses")
    discovery = Discovery(prefix, ssm_client=aws("ssm"))
    assert discovery.snapshot() == {"orders-table": "orders"}
    assert discovery.optional("redis-auth-secret-arn") is None
    with pytest.raises(DiscoveryError, match="backend-url"):
        discovery.get("backend-url")


def test_last_known_values_keep_serving_when_ssm_becomes_unreachable(aws, prefix):
    put(aws, prefix, "backend-url", "http://known")
    clock = Clock()
    discovery = Discovery(prefix, ttl_seconds=1, ssm_client=aws("ssm"), clock=clock)
    assert discovery.get("backend-url") == "http://known"

    # From now on the registry is unreachable (nothing listens on this port).
    discovery._ssm = boto3.client(
        "ssm",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}, connect_timeout=0.5),
    )
    clock.now += 5
    assert discovery.get("backend-url") == "http://known"


def test_a_registry_that_was_never_reachable_is_a_clear_error(prefix):
    dead = boto3.client(
        "ssm",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}, connect_timeout=0.5),
    )
    with pytest.raises(DiscoveryError, match="cannot read"):
        Discovery(prefix, ssm_client=dead).get("backend-url")


def test_redis_auth_token_comes_from_secrets_manager_and_a_moved_endpoint_is_followed(aws, prefix):
    token = "s3cret-" + uuid.uuid4().hex
    first, second = start_redis("--requirepass", token), start_redis("--requirepass", token)
    try:
        secret_arn = aws("secretsmanager").create_secret(
            Name=f"redis-auth-{uuid.uuid4().hex[:8]}", SecretString=json.dumps({"password": token})
        )["ARN"]
        put(aws, prefix, "redis-endpoint", first.endpoint)
        clock = Clock()
        discovery = Discovery(prefix, ttl_seconds=10, ssm_client=aws("ssm"), clock=clock)
        provider = RedisProvider(discovery, tls=False, secrets_client=aws("secretsmanager"))

        assert not provider.reachable()  # no secret discovered yet: the server refuses (NOAUTH)

        put(aws, prefix, "redis-auth-secret-arn", secret_arn)
        clock.now += 10
        assert provider.reachable()
        provider.client().set("where", "first")

        put(aws, prefix, "redis-endpoint", second.endpoint)
        clock.now += 10
        assert provider.client().get("where") is None  # a new client, on the new endpoint
        assert first.client(password=token).get("where") == b"first"
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize(
    ("secret", "token"),
    [("plain-token", "plain-token"), ('{"password": "p"}', "p"), ('{"authToken": "a"}', "a"), ('{"token": "t"}', "t")],
)
def test_the_auth_token_is_read_from_a_bare_or_json_secret(secret, token):
    assert auth_token(secret) == token


def test_a_malformed_redis_endpoint_is_refused():
    assert parse_endpoint("cache.example:6379") == ("cache.example", 6379)
    for bad in ("cache.example", ":6379", "cache.example:port"):
        with pytest.raises(ValueError):
            parse_endpoint(bad)


def test_backend_calls_go_to_the_url_or_through_the_local_alb_gateway_with_its_host_header():
    url = "http://internal-lc-backend-1.us-east-1.elb.amazonaws.com:8080/api/"
    direct = route(url, None)
    assert (direct.host, direct.port, direct.host_header, direct.path_prefix) == (
        "internal-lc-backend-1.us-east-1.elb.amazonaws.com",
        8080,
        None,
        "/api",
    )
    local = route(url, "127.0.0.1:4566")
    assert (local.host, local.port, local.host_header, local.path_prefix) == (
        "127.0.0.1",
        4566,
        "internal-lc-backend-1.us-east-1.elb.amazonaws.com:8080",
        "/api",
    )
