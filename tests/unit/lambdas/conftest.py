"""Fixtures for the Lambda unit tests: moto-backed AWS resources laid out as in docs/design.md, a
Powertools-friendly Lambda context, and builders for the events Lambda hands to the handlers.

Everything goes through real boto3 calls against moto (`mock_aws`); handler modules are (re)imported
inside the mock, so the clients they create at import time talk to moto, never to AWS.
"""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from contracts.events import EVENT_TYPE_ATTRIBUTE, SUBSCRIPTIONS
from plumbing import aws as plumbing_aws
from tests.unit.lambdas.helpers import ACCOUNT, HANDLER_MODULES, REGION, sqs_record

# The topic's subscribers are the contract's (contracts.events.SUBSCRIPTIONS, which the messaging stack
# builds its filter policies from too); each gets a queue of this name (the cancel window's is `cancel`).
QUEUE_OF_SUBSCRIBER = {
    "fulfilment": "fulfilment",
    "notification": "notification",
    "analytics": "analytics",
    "cancel_window": "cancel",
}


@dataclass
class LambdaContext:
    """The attributes Powertools reads from the Lambda context object."""

    function_name: str = "storefront-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:storefront-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/storefront-test"
    log_stream_name: str = "2025/01/01/[$LATEST]0123456789abcdef"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@dataclass
class Cloud:
    """Handles to the mocked resources, plus helpers to observe them."""

    sqs: Any
    sns: Any
    s3: Any
    sfn: Any
    dynamodb: Any
    topic_arn: str
    queues: dict[str, str]  # name -> URL: fulfilment, notification, analytics, cancel, probe, inventory
    state_machine_arn: str
    bucket: str
    tables: dict[str, str]

    def table(self, name: str) -> Any:
        return self.dynamodb.Table(self.tables[name])

    def receive(self, queue: str, max_messages: int = 10) -> list[dict[str, Any]]:
        """Every message currently visible in the queue (up to max_messages), with attributes."""
        messages: list[dict[str, Any]] = []
        while len(messages) < max_messages:
            batch = self.sqs.receive_message(
                QueueUrl=self.queues[queue],
                MaxNumberOfMessages=min(10, max_messages - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                break
            messages.extend(batch)
        return messages

    def sqs_event(self, queue: str, max_messages: int = 10) -> dict[str, Any]:
        """Receive the queue's messages and shape them as Lambda's SQS event source does."""
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queues[queue], AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return {"Records": [sqs_record(message, arn) for message in self.receive(queue, max_messages)]}

    def items(self, table: str = "orders") -> list[dict[str, Any]]:
        return self.table(table).scan(ConsistentRead=True)["Items"]


@pytest.fixture(autouse=True)
def lambda_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the stacks give every function (docs/design.md); resource names match the `aws` fixture."""
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "storefront-test",
        "POWERTOOLS_METRICS_NAMESPACE": "Storefront",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "ORDERS_TABLE": "orders",
        "IDEMPOTENCY_TABLE": "idempotency",
        "INVENTORY_TABLE": "inventory",
        "HANDOFF_BUCKET": "handoff",
        "RECOMMENDATIONS_FUNCTION_NAME": "recommendations",
        "ACTIVITY_STATE_MACHINE_ARN": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:activity-counters",
        "CONNECTIONS_TABLE": "connections",
        "USER_POOL_ID": "us-east-1_TestPool",
        "USER_POOL_CLIENT_ID": "storefront-web",
        "WEBSOCKET_CALLBACK_URL": "https://abc123defg.execute-api.us-east-1.amazonaws.com/live",
    }.items():
        monkeypatch.setenv(name, value)


def _table(dynamodb: Any, name: str, *keys: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in zip(keys, ("HASH", "RANGE"), strict=False)],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture(scope="session")
def boto_clients() -> dict[str, Any]:
    """The tests' own clients, created once: moto intercepts every client made after `moto` was
    imported, whether or not a mock was active then, and each `mock_aws()` starts from an empty
    account. (Creating boto3 clients is the slowest part of a test's setup.)"""
    return {
        "sqs": boto3.client("sqs", region_name=REGION),
        "sns": boto3.client("sns", region_name=REGION),
        "s3": boto3.client("s3", region_name=REGION),
        "sfn": boto3.client("stepfunctions", region_name=REGION),
        "dynamodb": boto3.resource("dynamodb", region_name=REGION),
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, boto_clients: dict[str, Any]) -> Iterator[Cloud]:
    """A fresh mocked account: the three tables, the topic with one filtered raw-delivery subscription
    per entry of contracts.events.SUBSCRIPTIONS (the fan-out queues and the cancel-window queue, which
    receives OrderPlaced only) plus an unfiltered `probe` queue that sees every publish, the inventory
    FIFO queue, a state machine and the hand-off bucket. The handlers' cached clients (plumbing.aws) are
    kept across tests for the same reason as `boto_clients`; the state behind them is new in every test."""
    with mock_aws():
        sqs, sns, s3, sfn, dynamodb = (boto_clients[name] for name in ("sqs", "sns", "s3", "sfn", "dynamodb"))
        _table(dynamodb.meta.client, "orders", "pk", "sk")
        _table(dynamodb.meta.client, "idempotency", "id")
        _table(dynamodb.meta.client, "inventory", "sku")
        _table(dynamodb.meta.client, "connections", "customer_id", "connection_id")

        topic_arn = sns.create_topic(Name="order-events")["TopicArn"]
        queues: dict[str, str] = {}
        for subscriber, event_types in [*SUBSCRIPTIONS.items(), ("probe", None)]:
            name = QUEUE_OF_SUBSCRIBER.get(subscriber, subscriber)
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes = {"RawMessageDelivery": "true"}
            if event_types:
                attributes["FilterPolicy"] = json.dumps({EVENT_TYPE_ATTRIBUTE: list(event_types)})
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
            queues[name] = url
        queues["inventory"] = sqs.create_queue(
            QueueName="inventory-events.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
        )["QueueUrl"]

        state_machine_arn = sfn.create_state_machine(
            name="checkout",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/checkout",
        )["stateMachineArn"]
        s3.create_bucket(Bucket="handoff")

        monkeypatch.setenv("ORDER_EVENTS_TOPIC_ARN", topic_arn)
        monkeypatch.setenv("INVENTORY_EVENTS_QUEUE_URL", queues["inventory"])
        monkeypatch.setenv("CHECKOUT_STATE_MACHINE_ARN", state_machine_arn)
        monkeypatch.setenv("CANCEL_WINDOW_QUEUE_URL", queues["cancel"])
        yield Cloud(
            sqs=sqs,
            sns=sns,
            s3=s3,
            sfn=sfn,
            dynamodb=dynamodb,
            topic_arn=topic_arn,
            queues=queues,
            state_machine_arn=state_machine_arn,
            bucket="handoff",
            tables={
                "orders": "orders",
                "idempotency": "idempotency",
                "inventory": "inventory",
                "connections": "connections",
            },
        )


@pytest.fixture
def load_handler(aws: Cloud) -> Callable[[str], ModuleType]:
    """Import a handler module inside the mock (re-import if an earlier test loaded it), so its
    module-level clients, repositories and idempotency store are bound to this test's moto account."""

    def load(name: str) -> ModuleType:
        assert name in HANDLER_MODULES, name
        module = sys.modules.get(name)
        return importlib.reload(module) if module else importlib.import_module(name)

    return load


@pytest.fixture
def handler_calls(aws: Cloud) -> Iterator[list[tuple[str, str]]]:
    """(service, operation) of every SNS, SQS and Step Functions request the handlers make through their
    shared clients (plumbing.aws), in order, as they go over the wire. The clients outlive the test, so
    the hooks are removed again afterwards."""
    calls: list[tuple[str, str]] = []

    def record(event_name: str, **_: Any) -> None:
        _hook, service, operation = event_name.split(".")
        calls.append((service, operation))

    hooks = [
        (plumbing_aws.client(service), f"before-call.{event}")
        for service, event in (("sns", "sns"), ("sqs", "sqs"), ("stepfunctions", "sfn"))
    ]
    for client, event in hooks:
        client.meta.events.register(event, record, unique_id=f"handler-calls-{event}")
    yield calls
    for client, event in hooks:
        client.meta.events.unregister(event, unique_id=f"handler-calls-{event}")


@pytest.fixture
def log_records() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The structured log lines the handlers write, parsed. (capsys cannot see them: Powertools keeps
    the stream that was sys.stdout when the service's logger was first configured.)"""
    import logging

    service_logger = logging.getLogger("storefront-test")
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            # Format with the Powertools handler's formatter, now: it holds the appended keys
            # (correlation id, order id) as they are at the time of the call.
            powertools = next(h for h in service_logger.handlers if h is not self)
            assert powertools.formatter is not None, "the Powertools handler has its formatter"
            lines.append(powertools.formatter.format(record))

    handler = Capture()
    service_logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in lines]
    service_logger.removeHandler(handler)


@pytest.fixture(autouse=True)
def _quiet_empty_metrics() -> None:
    """A request that emits no metric (GET /orders/{id}) makes Powertools warn; expected, not a finding."""
    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
