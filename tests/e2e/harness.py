"""What the end-to-end tests use: the public entry points (API, web ALB) to act, and the emulator's
AWS APIs to observe (queue depths, DynamoDB items) and to take consumers offline.

Consumers are taken offline the way an operator would: by disabling their SQS event source mapping.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import boto3
from boto3.dynamodb.conditions import Key

from localcloud import consumers as consumer_ops
from localcloud.cli import UpResult
from localcloud.consumers import CONSUMERS, FANOUT
from localcloud.settings import REGION, Settings
from localcloud.storefront import (
    Deployed,
    HttpClient,
    api_client,
    back_office_client,
    idempotency_key,
    wait_for,
    web_client,
)


class Harness:
    def __init__(self, settings: Settings, result: UpResult) -> None:
        self.settings = settings
        self.result = result
        self.deployed = Deployed(settings, settings.cdk_out)
        self.api: HttpClient = api_client(settings, self.deployed)
        self.sqs = settings.client("sqs")
        self.sns = settings.client("sns")
        self.lambda_ = settings.client("lambda")
        self.sfn = settings.client("stepfunctions")
        self.s3 = settings.client("s3")
        self.logs = settings.client("logs")
        self.dynamodb = boto3.resource(
            "dynamodb",
            endpoint_url=settings.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    # --- entry points ------------------------------------------------------------------------

    @functools.cached_property
    def back_office(self) -> HttpClient:
        """An operator on the staff routes: SigV4-signed as the back-office role, no API key."""
        return back_office_client(self.settings, self.deployed)

    def browser(self) -> HttpClient:
        """A new browser session against the internet-facing ALB."""
        return web_client(self.settings, self.result.tiers["web"].load_balancer_name)

    def place_order(
        self, items: list[dict], *, customer_id: str = "e2e-customer", key: str | None = None, **extra
    ) -> tuple[int, dict]:
        response = self.api.post(
            "/orders",
            {"customer_id": customer_id, "items": items, "currency": "EUR", **extra},
            headers={"Idempotency-Key": key or idempotency_key()},
        )
        return response.status, response.body

    # --- resources ---------------------------------------------------------------------------

    def queue_url(self, consumer: str) -> str:
        return self.deployed.physical_id(f"{CONSUMERS[consumer][1]}/Queue")

    def dlq_url(self, consumer: str) -> str:
        return self.deployed.physical_id(f"{CONSUMERS[consumer][1]}/Dlq")

    def topic_arn(self) -> str:
        return self.deployed.physical_id("Messaging/OrderEventsTopic")

    def table(self, name: str):
        """`Orders`, `Idempotency` or `Inventory`."""
        return self.dynamodb.Table(self.deployed.physical_id(f"Data/{name}Table"))

    def handoff_bucket(self) -> str:
        return self.deployed.physical_id("Data/HandoffBucket")

    def declared(self, path: str) -> dict:
        """The resource at construct path `path` as the template its stack was deployed with declares it."""
        stack, logical_id = self.deployed.locate(path)
        body = self.settings.client("cloudformation").get_template(StackName=stack)["TemplateBody"]
        return (json.loads(body) if isinstance(body, str) else body)["Resources"][logical_id]

    def esm_uuid(self, consumer: str) -> str:
        return consumer_ops.esm_uuid(self.deployed, consumer)

    # --- observation -------------------------------------------------------------------------

    def depth(self, queue_url: str) -> int:
        """Messages in the queue: visible, in flight and delayed."""
        return consumer_ops.depth(self.sqs, queue_url)

    def visible(self, queue_url: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(attrs["Attributes"]["ApproximateNumberOfMessages"])

    def order(self, order_id: str) -> dict | None:
        return self.table("Orders").get_item(Key={"pk": f"ORDER#{order_id}", "sk": "META"}).get("Item")

    def wait_for_recorded(self, order_id: str, timeout: float = 60) -> dict:
        """The order's META item once fulfilment has written it."""
        return wait_for(lambda: self.order(order_id), timeout, f"order {order_id} recorded")

    def order_record(self, order_id: str) -> dict:
        """The order's META item, which must be there."""
        order = self.order(order_id)
        assert order is not None, f"order {order_id} is not recorded"
        return order

    def order_items(self, order_id: str) -> dict[str, dict]:
        """Every item of one order's partition, by sort key (META, NOTIFICATION, APPROVAL, ...)."""
        items = self.table("Orders").query(KeyConditionExpression=Key("pk").eq(f"ORDER#{order_id}"))["Items"]
        return {item["sk"]: item for item in items}

    def analytics(self, event_type: str, day: str | None = None) -> dict:
        day = day or datetime.now(UTC).strftime("%Y-%m-%d")
        return self.table("Orders").get_item(Key={"pk": f"ANALYTICS#{day}", "sk": event_type}).get("Item") or {}

    def log_events(self, log_group: str, since: float) -> list[dict]:
        """Events of the log group at construct path `log_group` stamped at or after `since` (epoch
        seconds), oldest first. A Lambda invocation's lines are all stamped when it ends."""
        name = self.deployed.physical_id(log_group)
        start = int(since * 1000)
        events = [
            event
            for page in self.logs.get_paginator("filter_log_events").paginate(logGroupName=name, startTime=start)
            for event in page["events"]
            if event["timestamp"] >= start
        ]
        return sorted(events, key=lambda event: event["timestamp"])

    def wait_until_drained(self, consumers=FANOUT, timeout: float = 120) -> None:
        """Every listed work queue empty: earlier tests' messages cannot leak into this one."""
        urls = [self.queue_url(c) for c in consumers]
        wait_for(lambda: all(self.depth(u) == 0 for u in urls), timeout, f"queues of {consumers} to drain")

    # --- consumers offline / back ------------------------------------------------------------

    def set_consumer(self, consumer: str, enabled: bool) -> None:
        consumer_ops.set_consumer(self.settings, self.deployed, consumer, enabled)

    @contextlib.contextmanager
    def consumers_offline(self, *consumers: str) -> Iterator[None]:
        for consumer in consumers:
            self.set_consumer(consumer, False)
        time.sleep(1.5)  # a batch the poller took before the switch finishes first
        try:
            yield
        finally:
            for consumer in consumers:
                self.set_consumer(consumer, True)

    def resume_all_consumers(self) -> None:
        for consumer in CONSUMERS:
            uuid = self.esm_uuid(consumer)
            if self.lambda_.get_event_source_mapping(UUID=uuid)["State"] != "Enabled":
                self.set_consumer(consumer, True)

    # --- inventory and checkout ----------------------------------------------------------------

    def stock(self, sku: str, on_hand: int) -> None:
        """The warehouse's part (not an API of the storefront): this SKU has exactly `on_hand` units."""
        self.table("Inventory").put_item(Item={"sku": sku, "on_hand": on_hand, "reserved": 0})

    def inventory(self, sku: str) -> tuple[int, int]:
        item = self.table("Inventory").get_item(Key={"sku": sku}, ConsistentRead=True)["Item"]
        return int(item["on_hand"]), int(item.get("reserved", 0))

    def recorded_order(self, items: list[dict], **extra) -> str:
        """An order placed through the API and recorded by fulfilment: ready for checkout."""
        status, body = self.place_order(items, **extra)
        assert status == 202, body
        wait_for(lambda: self.order(body["order_id"]), 60, f"order {body['order_id']} recorded")
        return body["order_id"]

    def checkout(self, order_id: str, **payment) -> str:
        response = self.api.post(f"/orders/{order_id}/checkout", payment)
        assert response.status == 202, response.body
        return response.body["execution_arn"]

    def finished_execution(self, execution_arn: str, timeout: float = 90) -> dict:
        return wait_for(
            lambda: (e := self.sfn.describe_execution(executionArn=execution_arn))["status"] != "RUNNING" and e,
            timeout,
            f"checkout execution {execution_arn.rsplit(':', 1)[-1]} to finish",
        )

    def history(self, execution_arn: str) -> list[dict]:
        events = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return events

    def states_entered(self, execution_arn: str) -> list[str]:
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history(execution_arn)
            if "stateEnteredEventDetails" in e
        ]
