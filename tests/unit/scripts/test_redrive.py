"""`make redrive` (scripts/redrive.py) against moto's SQS. moto has no StartMessageMoveTask (it raises
NotImplementedError), so the loop is tested end to end here and the task path's selection on its own;
the e2e test (tests/e2e/test_redrive.py) takes the `auto` path against MiniStack."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from scripts import redrive


@pytest.fixture
def sqs():
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def a_pair(sqs, name: str = "orders", fifo: bool = False) -> tuple[str, str]:
    suffix = ".fifo" if fifo else ""
    extra = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=extra)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    queue = sqs.create_queue(QueueName=f"{name}{suffix}", Attributes={"RedrivePolicy": policy, **extra})["QueueUrl"]
    return queue, dlq


def bodies(sqs, url: str) -> list[dict]:
    got: list[dict] = []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], AttributeNames=["All"]
    ).get("Messages", []):
        got.extend(batch)
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
        )
    return got


def test_every_message_goes_back_to_its_source_once_with_body_and_attributes(sqs):
    queue, dlq = a_pair(sqs)
    for n in range(23):
        sqs.send_message(
            QueueUrl=dlq,
            MessageBody=json.dumps({"order_id": f"o-{n}"}),
            MessageAttributes={"event_type": {"DataType": "String", "StringValue": "OrderPlaced"}},
        )
    route, result = redrive.redrive(sqs, "orders-dlq", method="loop", rate=500)
    assert (route.source_url, route.dlq_url) == (queue, dlq)
    assert (result.found, result.moved, result.failed) == (23, 23, 0)
    moved = bodies(sqs, queue)
    assert sorted(json.loads(m["Body"])["order_id"] for m in moved) == sorted(f"o-{n}" for n in range(23))
    assert {m["MessageAttributes"]["event_type"]["StringValue"] for m in moved} == {"OrderPlaced"}
    assert bodies(sqs, dlq) == []


def test_the_dlq_is_found_from_its_work_queue_by_name_or_url(sqs):
    queue, dlq = a_pair(sqs)
    a_pair(sqs, "other")
    for given in ("orders", queue, "orders-dlq", dlq):
        route = redrive.resolve(sqs, given)
        assert (route.source_url, route.dlq_url) == (queue, dlq), given


def test_a_queue_that_is_nobodys_dlq_is_refused(sqs):
    sqs.create_queue(QueueName="lonely")
    with pytest.raises(SystemExit, match="exactly one queue, found none"):
        redrive.resolve(sqs, "lonely")


def test_dry_run_counts_and_moves_nothing(sqs):
    queue, dlq = a_pair(sqs)
    for n in range(4):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"m-{n}")
    route, result = redrive.redrive(sqs, "orders", method="loop", dry_run=True)
    assert (result.found, result.moved, result.dry_run) == (4, 0, True)
    assert "4 messages would be moved; nothing was moved" in redrive.describe(route, result, 50)
    assert redrive.waiting(sqs, dlq) == 4
    assert redrive.waiting(sqs, queue) == 0


def test_fifo_messages_keep_their_group_and_order(sqs):
    queue, dlq = a_pair(sqs, "ledger", fifo=True)
    for n in range(5):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"sku-a-{n}", MessageGroupId="SKU-A", MessageDeduplicationId=str(n))
    _, result = redrive.redrive(sqs, "ledger.fifo", method="loop")
    assert result.moved == 5
    moved = bodies(sqs, queue)
    assert [m["Body"] for m in moved] == [f"sku-a-{n}" for n in range(5)]
    assert {m["Attributes"]["MessageGroupId"] for m in moved} == {"SKU-A"}


def test_only_the_messages_found_at_the_start_are_moved(sqs):
    """A message that dies again while the redrive runs is not taken twice in one run."""
    _, dlq = a_pair(sqs)
    for n in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"m-{n}")
    route = redrive.resolve(sqs, "orders-dlq")

    class OneMoreArrives(redrive.RateLimit):
        def take(self, count: int) -> None:
            super().take(count)
            sqs.send_message(QueueUrl=dlq, MessageBody="died again meanwhile")

    result = redrive.move_with_loop(sqs, route, rate=2, limit=OneMoreArrives(500))
    assert (result.found, result.moved) == (3, 3)
    assert redrive.waiting(sqs, dlq) >= 1


def test_the_rate_limit_spaces_the_messages_evenly():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limit = redrive.RateLimit(5, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        limit.take(5)  # 20 messages at 5/s: 4 s in all
    assert now[0] == pytest.approx(4.0)
    assert slept == pytest.approx([1.0, 1.0, 1.0, 1.0])


def test_the_loop_never_takes_more_per_receive_than_the_rate(sqs):
    _, dlq = a_pair(sqs)
    for n in range(6):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"m-{n}")
    sizes: list[int] = []

    class Counting(redrive.RateLimit):
        def take(self, count: int) -> None:
            sizes.append(count)

    redrive.move_with_loop(sqs, redrive.resolve(sqs, "orders"), rate=2, limit=Counting(2))
    assert sizes == [2, 2, 2]


def an_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "..."}}, "ListMessageMoveTasks")


@pytest.mark.parametrize(
    ("code", "unsupported"),
    [
        ("InvalidAction", True),  # MiniStack
        ("AWS.SimpleQueueService.UnsupportedOperation", True),
        ("AccessDenied", False),  # a refusal is not an absent feature: it must surface
        ("AWS.SimpleQueueService.NonExistentQueue", False),
    ],
)
def test_only_an_absent_operation_selects_the_loop(code: str, unsupported: bool):
    assert redrive.is_unsupported(an_error(code)) is unsupported


def test_auto_takes_the_service_task_where_offered_and_an_explicit_method_is_kept():
    assert redrive.choose("auto", lambda: True) == "task"
    assert redrive.choose("auto", lambda: False) == "loop"
    assert redrive.choose("loop", lambda: True) == "loop"
    assert redrive.choose("task", lambda: False) == "task"


def test_a_rate_outside_the_services_bounds_is_refused(sqs):
    a_pair(sqs)
    with pytest.raises(SystemExit, match="1-500"):
        redrive.redrive(sqs, "orders", rate=501)


def test_without_a_queue_every_dlq_is_listed_with_its_depth_and_source(sqs, monkeypatch, capsys):
    _, dlq = a_pair(sqs)
    a_pair(sqs, "other")
    sqs.send_message(QueueUrl=dlq, MessageBody="x")
    monkeypatch.setattr(redrive, "client", lambda local: sqs)
    assert redrive.main([]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "orders-dlq  1 waiting  <- orders",
        "other-dlq  0 waiting  <- other",
    ]
    assert redrive.main(["orders", "--method", "loop"]) == 0
    assert "found 1, moved 1, failed 0" in capsys.readouterr().out
