"""Real dependencies for the tier-service tests: a redis-server process, moto in server mode (SSM,
SNS, SQS, DynamoDB, Secrets Manager over HTTP, as the services' boto3 clients see AWS), and the web and
backend services as real `python -m services.<tier>` subprocesses."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from moto.server import ThreadedMotoServer

from contracts.events import EVENT_TYPE_ATTRIBUTE, SUBSCRIPTIONS
from localcloud.identity import DEMO_USERS

ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
DISCOVERY_TTL_SECONDS = 1  # short, so the TTL test is quick; the default is 30 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


# --- redis-server --------------------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **kw) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=5)


def start_redis(*extra_args: str) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run `make redis` (Debian package redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *extra_args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, process)

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_until(up, 10, "redis-server")
    return server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


# --- moto server and the AWS resources the services discover -------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines drown failures
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def aws_env(moto_endpoint) -> dict[str, str]:
    """What a service process needs to reach 'AWS' (the moto server) and nothing else."""
    return {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


@pytest.fixture(scope="session")
def aws(moto_endpoint):
    """boto3 clients on the moto server, for arranging and observing."""

    def client(name: str):
        return boto3.client(
            name,
            endpoint_url=moto_endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return client


@dataclass(frozen=True)
class UserPool:
    """A Cognito user pool in moto with the demo users, and the web tier's app client (USER_PASSWORD_AUTH)."""

    pool_id: str
    client_id: str

    def register(self, ssm, prefix: str) -> None:
        """Publish it under a discovery prefix, as the Identity stack does."""
        for name, value in {"user-pool-id": self.pool_id, "user-pool-client-id": self.client_id}.items():
            ssm.put_parameter(Name=f"{prefix}/{name}", Value=value, Type="String", Overwrite=True)


@pytest.fixture(scope="session")
def user_pool(aws) -> UserPool:
    cognito = aws("cognito-idp")
    pool_id = cognito.create_user_pool(
        PoolName=f"customers-{uuid.uuid4().hex[:8]}",
        Policies={
            "PasswordPolicy": {
                "MinimumLength": 12,
                "RequireUppercase": True,
                "RequireLowercase": True,
                "RequireNumbers": True,
                "RequireSymbols": True,
            }
        },
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="storefront-web",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    for name, password in DEMO_USERS.items():
        cognito.admin_create_user(UserPoolId=pool_id, Username=name, MessageAction="SUPPRESS")
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=name, Password=password, Permanent=True)
    return UserPool(pool_id, client_id)


@dataclass
class Cloud:
    """The deployed resources as the services find them: SSM parameters under `prefix`."""

    prefix: str
    topic_arn: str
    observer_queue_url: str  # subscribed to the topic with raw delivery: what consumers would receive
    cancel_queue_url: str  # subscribed with the contract's filter, as the Messaging stack does
    orders_table: str
    idempotency_table: str
    aws: Any

    def put_parameter(self, name: str, value: str) -> None:
        self.aws("ssm").put_parameter(Name=f"{self.prefix}/{name}", Value=value, Type="String", Overwrite=True)

    def drain(self, queue_url: str, settle_seconds: float = 0.3) -> list[dict]:
        """Every message now in the queue (received and deleted), waiting `settle_seconds` for stragglers."""
        sqs, messages = self.aws("sqs"), []
        deadline = time.monotonic() + settle_seconds
        while True:
            batch = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            for message in batch:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            messages.extend(batch)
            if not batch:
                if time.monotonic() >= deadline:
                    return messages
                time.sleep(0.05)

    def published(self) -> list[dict]:
        return self.drain(self.observer_queue_url)

    def cancel_window(self) -> list[dict]:
        return self.drain(self.cancel_queue_url)


@pytest.fixture(scope="session")
def cloud(aws, redis_server, user_pool) -> Cloud:
    run = uuid.uuid4().hex[:8]
    prefix = f"/lc/test{run}/discovery"
    sns, sqs, ddb = aws("sns"), aws("sqs"), aws("dynamodb")
    topic_arn = sns.create_topic(Name=f"order-events-{run}")["TopicArn"]
    observer_url = sqs.create_queue(QueueName=f"observer-{run}")["QueueUrl"]
    observer_arn = sqs.get_queue_attributes(QueueUrl=observer_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=observer_arn, Attributes={"RawMessageDelivery": "true"})
    cancel_url = sqs.create_queue(QueueName=f"cancel-window-{run}")["QueueUrl"]
    cancel_arn = sqs.get_queue_attributes(QueueUrl=cancel_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=cancel_arn,
        Attributes={
            "RawMessageDelivery": "true",
            "FilterPolicy": json.dumps({EVENT_TYPE_ATTRIBUTE: list(SUBSCRIPTIONS["cancel_window"])}),
        },
    )
    table = f"orders-{run}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    idempotency_table = f"idempotency-{run}"  # the Data stack's layout: partition key `id`, TTL `expiration`
    ddb.create_table(
        TableName=idempotency_table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    result = Cloud(prefix, topic_arn, observer_url, cancel_url, table, idempotency_table, aws)
    for name, value in {
        "redis-endpoint": redis_server.endpoint,
        "order-events-topic-arn": topic_arn,
        "orders-table": table,
        "idempotency-table": idempotency_table,
    }.items():
        result.put_parameter(name, value)
    user_pool.register(aws("ssm"), prefix)
    return result


def create_sessions_table(ddb, name: str) -> str:
    """The Sessions stack's table when `sessionStore: dynamodb`: partition key `id`, TTL `expires_at`."""
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    return name


# --- the services as processes -------------------------------------------------------------------


@dataclass
class ServiceProcess:
    tier: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.tier}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def healthy(self) -> bool:
        assert self.process is not None, f"{self.tier}:{self.port} was never spawned"
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.tier}:{self.port} exited:\n{self.log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 20) -> None:
        wait_until(self.healthy, timeout, f"{self.tier}:{self.port} /health")

    def start(self) -> ServiceProcess:
        self.spawn()
        self.wait_healthy()
        return self

    def kill(self) -> None:
        """SIGKILL: the instance dies without any chance to clean up, as a failed EC2 host would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=5)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Tiers:
    web: list[ServiceProcess]
    backend: ServiceProcess
    cloud: Cloud


def service_env(aws_env: dict[str, str], prefix: str, port: int) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR"}}
    return {
        **inherited,
        **aws_env,
        "DISCOVERY_PREFIX": prefix,
        "DISCOVERY_TTL_SECONDS": str(DISCOVERY_TTL_SECONDS),
        # moto serves the user pool's JWKS itself, like MiniStack (contracts/identity.py)
        "COGNITO_JWKS_ENDPOINT": aws_env["AWS_ENDPOINT_URL"],
        "SERVICE_HOST": "127.0.0.1",
        "SERVICE_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.fixture(scope="session")
def dynamodb_web(cloud, tiers, aws_env, tmp_path_factory) -> Iterator[Tiers]:
    """Two more web instances, on the DynamoDB session store (`session-store` = dynamodb in their own
    discovery namespace, which also names the same backend): no Redis endpoint is published there."""
    run = uuid.uuid4().hex[:8]
    prefix = f"/lc/ddb{run}/discovery"
    table = create_sessions_table(cloud.aws("dynamodb"), f"sessions-{run}")
    ssm = cloud.aws("ssm")
    for name, value in {
        "session-store": "dynamodb",
        "sessions-table": table,
        "backend-url": tiers.backend.url,
        "user-pool-id": cloud.aws("ssm").get_parameter(Name=f"{cloud.prefix}/user-pool-id")["Parameter"]["Value"],
        "user-pool-client-id": cloud.aws("ssm").get_parameter(Name=f"{cloud.prefix}/user-pool-client-id")["Parameter"][
            "Value"
        ],
    }.items():
        ssm.put_parameter(Name=f"{prefix}/{name}", Value=value, Type="String", Overwrite=True)
    logs = tmp_path_factory.mktemp("dynamodb-web-logs")
    web = []
    for index in (1, 2):
        port = free_port()
        web.append(ServiceProcess("web", port, service_env(aws_env, prefix, port), logs / f"web-{index}.log"))
    try:
        for proc in web:
            proc.spawn()
        for proc in web:
            proc.wait_healthy()
        yield Tiers(web, tiers.backend, cloud)
    finally:
        for proc in web:
            proc.stop()


@pytest.fixture(scope="session")
def tiers(cloud, aws_env, tmp_path_factory) -> Iterator[Tiers]:
    """One backend and two web instances, started in parallel; the backend is found via `backend-url`."""
    logs = tmp_path_factory.mktemp("service-logs")

    def make(tier: str, index: int) -> ServiceProcess:
        port = free_port()
        return ServiceProcess(tier, port, service_env(aws_env, cloud.prefix, port), logs / f"{tier}-{index}.log")

    backend = make("backend", 1)
    cloud.put_parameter("backend-url", backend.url)
    web = [make("web", 1), make("web", 2)]
    everything = [backend, *web]
    try:
        for proc in everything:  # spawn all, then wait: the start-ups overlap
            proc.spawn()
        for proc in everything:
            proc.wait_healthy()
        yield Tiers(web, backend, cloud)
    finally:
        for proc in everything:
            proc.stop()


# --- a tiny browser ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    set_cookies: list[str]


class Browser:
    """JSON over HTTP with one cookie jar, pointed at any instance per request (as an ALB would)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=15) as response:
                status, raw, msg = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, msg = error.code, error.read(), error.headers
        set_cookies = msg.get_all("Set-Cookie") or []
        for header in set_cookies:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or "1970" in morsel["expires"]:  # deleted by the server
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return Reply(status, json.loads(raw) if raw else None, dict(msg.items()), set_cookies)

    def get(self, url: str, **kw) -> Reply:
        return self.request("GET", url, **kw)

    def post(self, url: str, body: Any = None, **kw) -> Reply:
        return self.request("POST", url, body if body is not None else {}, **kw)

    def delete(self, url: str, **kw) -> Reply:
        return self.request("DELETE", url, **kw)
