"""Seed 002, request/response data transformation with no compute in the path: a carrier posts a
delivery update with its own API key; API Gateway validates it, maps it with a VTL template to an SQS
message with attributes, and the delivery consumer moves the shipped order to DELIVERED, once. A bad
body is a 400 and nothing is queued."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from contracts.deliveries import CARRIER_ATTRIBUTE, DELIVERY_UPDATED, EVENT_TYPE_ATTRIBUTE
from localcloud.settings import PREFIX, STAGE
from localcloud.storefront import HttpClient, local_api_url, wait_for
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

CONSUMER = "delivery_updates"


@pytest.fixture
def partner(store: Harness) -> HttpClient:
    """A carrier's client: the partners' API key, not the storefront clients' one."""
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in store.settings.client("cloudformation").describe_stacks(StackName=f"{PREFIX}-{STAGE}-api")["Stacks"][
            0
        ]["Outputs"]
    }
    assert outputs["PartnerApiKeyId"] != outputs["ApiKeyId"]
    key = store.settings.client("apigateway").get_api_key(apiKey=outputs["PartnerApiKeyId"], includeValue=True)["value"]
    return HttpClient(local_api_url(store.settings, store.deployed.parameter("api-url")), headers={"x-api-key": key})


def _shipped_order(store: Harness) -> str:
    sku = f"SKU-E2E-DELIVERY-{uuid.uuid4().hex[:6].upper()}"
    store.stock(sku, 10)
    order_id = store.recorded_order([{"sku": sku, "quantity": 1, "unit_price": 12}])
    assert store.finished_execution(store.checkout(order_id))["status"] == "SUCCEEDED"
    assert store.order_record(order_id)["status"] == "COMPLETED"
    return order_id


def _update(order_id: str, tracking_id: str = "TRK-0001") -> dict:
    return {
        "order_id": order_id,
        "carrier": "parcel-co",
        "tracking_id": tracking_id,
        "status": "DELIVERED",
        "delivered_at": "2026-12-01T15:00:00Z",
    }


def test_a_delivery_update_goes_through_the_queue_and_delivers_the_order_once(store: Harness, partner: HttpClient):
    order_id = _shipped_order(store)

    started = time.perf_counter()
    answer = partner.post("/partners/deliveries", _update(order_id))
    answered = time.perf_counter() - started
    assert answer.status == 202, answer.body
    assert answer.body["message_id"]
    delivered = wait_for(lambda: (o := store.order_record(order_id))["status"] == "DELIVERED" and o, 60, "DELIVERED")
    applied = time.perf_counter() - started

    # The carrier repeats itself (and SQS delivers at least once): nothing changes again.
    repeats = [partner.post("/partners/deliveries", _update(order_id)).status for _ in range(3)]
    assert repeats == [202, 202, 202]
    wait_for(lambda: store.depth(store.queue_url(CONSUMER)) == 0, 60, "the repeats consumed")
    time.sleep(1)
    assert store.order_record(order_id) == delivered  # same status, same updated_at
    assert store.depth(store.dlq_url(CONSUMER)) == 0
    print(
        f"\npartner delivery: 202 in {answered * 1000:.0f} ms, DELIVERED {applied:.2f} s after the POST; 3 repeats, 0 changes"
    )


def test_the_mapping_template_queues_the_body_as_sent_with_attributes(store: Harness, partner: HttpClient):
    body = _update(str(uuid.uuid4()), "TRK-ATTRS")
    with store.consumers_offline(CONSUMER):
        assert partner.post("/partners/deliveries", body).status == 202
        url = store.queue_url(CONSUMER)
        messages = store.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=2
        )["Messages"]
        [message] = [m for m in messages if json.loads(m["Body"]).get("tracking_id") == "TRK-ATTRS"]
        store.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])  # an unknown order
    assert json.loads(message["Body"]) == body
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {EVENT_TYPE_ATTRIBUTE: DELIVERY_UPDATED, CARRIER_ATTRIBUTE: "parcel-co"}


BAD_BODIES: dict[str, dict[str, object]] = {
    "status not DELIVERED": {"status": "LOST"},
    "no tracking id": {"tracking_id": None},
    "unknown field": {"signature": "x"},
    "carrier upper case": {"carrier": "PARCEL CO"},
}


def test_a_bad_body_is_a_400_and_nothing_is_queued(store: Harness, partner: HttpClient):
    with store.consumers_offline(CONSUMER):  # anything queued would wait here
        before = store.depth(store.queue_url(CONSUMER))
        answers = {}
        for name, change in BAD_BODIES.items():
            body = {**_update(str(uuid.uuid4())), **change}
            answers[name] = partner.post("/partners/deliveries", {k: v for k, v in body.items() if v is not None})
        answers["not JSON"] = partner.post("/partners/deliveries", "{not json")
        assert {name: a.status for name, a in answers.items()} == {name: 400 for name in answers}, {
            name: a.body for name, a in answers.items()
        }
        time.sleep(1)
        assert store.depth(store.queue_url(CONSUMER)) == before
