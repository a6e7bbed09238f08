"""services.web.activity: one activity event per call on the queue that discovery names, in the
contract's shape; never an error for the shopper's request (on moto SQS and SSM)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from contracts.activity import ActivityEvent
from services.common.discovery import Discovery
from services.web.activity import QUEUE_PARAMETER, ActivityRecorder

REGION = "us-east-1"
PREFIX = "/lc/test/discovery"


@pytest.fixture
def cloud(monkeypatch):
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs, ssm = boto3.client("sqs", region_name=REGION), boto3.client("ssm", region_name=REGION)
        url = sqs.create_queue(QueueName="activity")["QueueUrl"]
        yield sqs, ssm, url


def recorder(sqs, ssm) -> ActivityRecorder:
    return ActivityRecorder(Discovery(PREFIX, ttl_seconds=0, ssm_client=ssm), sqs_client=sqs)


def received(sqs, url) -> list[ActivityEvent]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [ActivityEvent.model_validate_json(m["Body"]) for m in messages]


def test_each_action_sends_one_contract_event_to_the_discovered_queue(cloud):
    sqs, ssm, url = cloud
    ssm.put_parameter(Name=f"{PREFIX}/{QUEUE_PARAMETER}", Value=url, Type="String")
    activity = recorder(sqs, ssm)

    ids = [
        activity.record("ProductViewed", "alice", sku="SKU-TEA-001"),
        activity.record("SearchPerformed", "alice", query="green tea"),
        activity.record("CartItemAdded", "bob", sku="SKU-MUG-002"),
    ]

    events = sorted(received(sqs, url), key=lambda e: ids.index(e.event_id))
    assert [(e.kind, e.subject, e.customer_id) for e in events] == [
        ("ProductViewed", "PRODUCT#SKU-TEA-001", "alice"),
        ("SearchPerformed", "SEARCH#green tea", "alice"),
        ("CartItemAdded", "PRODUCT#SKU-MUG-002", "bob"),
    ]
    assert len(set(ids)) == 3  # a new event id per action


def test_without_the_parameter_nothing_is_sent(cloud):
    sqs, ssm, url = cloud
    ssm.put_parameter(Name=f"{PREFIX}/other", Value="x", Type="String")
    assert recorder(sqs, ssm).record("ProductViewed", "alice", sku="SKU-TEA-001") is None
    assert received(sqs, url) == []


def test_a_failed_send_is_logged_not_raised(cloud, caplog):
    sqs, ssm, url = cloud
    ssm.put_parameter(Name=f"{PREFIX}/{QUEUE_PARAMETER}", Value=url + "-gone", Type="String")
    assert recorder(sqs, ssm).record("ProductViewed", "alice", sku="SKU-TEA-001") is None
    assert "activity not recorded" in caplog.text
