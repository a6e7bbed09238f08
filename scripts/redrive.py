"""DLQ redrive: move the messages of a dead-letter queue back to the queue they came from.

    python -m scripts.redrive [QUEUE] [--dry-run] [--rate N] [--method auto|task|loop] [--local]
    make redrive QUEUE=<name> [REDRIVE_ARGS="--dry-run --local"]

QUEUE is the name or URL of a dead-letter queue, or of a work queue (its RedrivePolicy names the DLQ).
Without QUEUE, every dead-letter queue is listed with its depth and its source queue.

Two ways to move, with the same semantics (every message present when the redrive starts goes back to
its source queue, body and message attributes unchanged, and is deleted from the DLQ only after the
source queue has accepted it; at most `--rate` messages per second):

- `task`: SQS's own StartMessageMoveTask, then ListMessageMoveTasks until the task ends.
- `loop`: ReceiveMessage / SendMessageBatch / DeleteMessageBatch, for endpoints that do not offer
  message-move tasks (MiniStack answers `InvalidAction`).

`auto` (the default) asks ListMessageMoveTasks, which reads nothing and moves nothing, whether the
endpoint offers tasks, and takes the loop when it does not. `--local` talks to the local cloud
(localcloud/settings.py); otherwise boto3's usual configuration applies (AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL). Exits 1 when a message could not be moved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError

Method = Literal["auto", "task", "loop"]
# StartMessageMoveTask takes 1-500 messages per second; the loop obeys the same bounds.
MAX_RATE = 500
DEFAULT_RATE = 50
BATCH = 10  # SQS's receive, send and delete batch limit
# Error codes of an endpoint that has no message-move tasks (MiniStack: InvalidAction).
UNSUPPORTED_CODES = frozenset(
    {"InvalidAction", "UnsupportedOperation", "AWS.SimpleQueueService.UnsupportedOperation", "NotImplemented"}
)
TASK_DONE = frozenset({"COMPLETED", "CANCELLED", "FAILED"})


@dataclass(frozen=True)
class Route:
    dlq_url: str
    dlq_arn: str
    source_url: str
    source_arn: str

    @property
    def fifo(self) -> bool:
        return self.dlq_url.endswith(".fifo")


@dataclass
class Result:
    method: str
    found: int  # messages in the DLQ when the redrive started
    moved: int = 0
    failed: int = 0
    seconds: float = 0.0
    dry_run: bool = False


def name_of(url_or_arn: str) -> str:
    return url_or_arn.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _attributes(sqs: Any, url: str, *names: str) -> dict[str, str]:
    attributes: dict[str, str] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names)).get(
        "Attributes", {}
    )
    return attributes


def _queue_urls(sqs: Any) -> Iterator[str]:
    for page in sqs.get_paginator("list_queues").paginate():
        yield from page.get("QueueUrls", [])


def dead_letter_target(sqs: Any, url: str) -> str | None:
    """The ARN of the queue's DLQ, None when it has no redrive policy."""
    policy = _attributes(sqs, url, "RedrivePolicy").get("RedrivePolicy")
    return json.loads(policy)["deadLetterTargetArn"] if policy else None


def sources_of(sqs: Any, dlq_arn: str) -> list[str]:
    """URLs of the queues whose redrive policy names this DLQ. ListDeadLetterSourceQueues would answer
    this too, but not every endpoint offers it (MiniStack does not); ListQueues and GetQueueAttributes
    are everywhere."""
    return [url for url in _queue_urls(sqs) if dead_letter_target(sqs, url) == dlq_arn]


def resolve(sqs: Any, queue: str) -> Route:
    """The DLQ and its source queue, from the name or URL of either."""
    url = queue if queue.startswith(("http://", "https://")) else sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    arn = _attributes(sqs, url, "QueueArn")["QueueArn"]
    target = dead_letter_target(sqs, url)
    if target is not None:  # a work queue: its DLQ is the one to drain
        dlq_url = sqs.get_queue_url(QueueName=name_of(target))["QueueUrl"]
        return Route(dlq_url=dlq_url, dlq_arn=target, source_url=url, source_arn=arn)
    sources = sources_of(sqs, arn)
    if len(sources) != 1:
        found = ", ".join(name_of(s) for s in sources) or "none"
        raise SystemExit(f"{name_of(url)}: expected it to be the DLQ of exactly one queue, found {found}")
    source_arn = _attributes(sqs, sources[0], "QueueArn")["QueueArn"]
    return Route(dlq_url=url, dlq_arn=arn, source_url=sources[0], source_arn=source_arn)


def waiting(sqs: Any, url: str) -> int:
    """Messages the redrive can take now (visible); in-flight ones come back after their visibility timeout."""
    return int(_attributes(sqs, url, "ApproximateNumberOfMessages").get("ApproximateNumberOfMessages", 0))


def is_unsupported(error: ClientError) -> bool:
    """True when the endpoint answers that it has no such operation (as opposed to a refusal)."""
    return error.response.get("Error", {}).get("Code", "") in UNSUPPORTED_CODES


def offers_move_tasks(sqs: Any, dlq_arn: str) -> bool:
    """Probes with ListMessageMoveTasks: read-only, so --dry-run can use it too."""
    try:
        sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)
    except ClientError as error:
        if is_unsupported(error):
            return False
        raise
    return True


def choose(method: Method, supported: Callable[[], bool]) -> Literal["task", "loop"]:
    """`auto` takes the service's own task where it is offered; an explicit choice is kept."""
    if method != "auto":
        return method
    return "task" if supported() else "loop"


class RateLimit:
    """At most `per_second` messages per second, counted from the start (no burst after an idle spell)."""

    def __init__(
        self,
        per_second: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        self.clock = clock
        self.sleep = sleep
        self.started = clock()
        self.granted = 0

    def take(self, count: int) -> None:
        self.granted += count
        due = self.started + self.granted / self.per_second - self.clock()
        if due > 0:
            self.sleep(due)


def _entry(index: int, message: dict[str, Any], fifo: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    if message.get("MessageAttributes"):
        entry["MessageAttributes"] = message["MessageAttributes"]
    if fifo:  # the group keeps its order; the dedup id keeps a retried send from doubling the message
        system = message.get("Attributes", {})
        entry["MessageGroupId"] = system["MessageGroupId"]
        entry["MessageDeduplicationId"] = system.get("MessageDeduplicationId") or message["MessageId"]
    return entry


def move_with_loop(sqs: Any, route: Route, rate: int, limit: RateLimit | None = None) -> Result:
    """Receive up to 10, send them to the source, delete from the DLQ those the source accepted.
    Stops at the first empty receive, or once the messages found at the start have been moved (a
    message that dies again meanwhile is not taken twice in one redrive)."""
    started = time.monotonic()
    result = Result(method="loop", found=waiting(sqs, route.dlq_url))
    limit = limit or RateLimit(rate)
    while result.moved + result.failed < result.found:
        want = min(BATCH, result.found - result.moved - result.failed, rate)
        messages = sqs.receive_message(
            QueueUrl=route.dlq_url,
            MaxNumberOfMessages=want,
            WaitTimeSeconds=1,
            VisibilityTimeout=30,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            break
        limit.take(len(messages))
        sent = sqs.send_message_batch(
            QueueUrl=route.source_url, Entries=[_entry(i, m, route.fifo) for i, m in enumerate(messages)]
        )
        accepted = {int(entry["Id"]) for entry in sent.get("Successful", [])}
        result.failed += len(messages) - len(accepted)
        if accepted:
            deleted = sqs.delete_message_batch(
                QueueUrl=route.dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": messages[i]["ReceiptHandle"]} for i in sorted(accepted)],
            )
            # A message sent but not deleted is in both queues: report it rather than hide it.
            result.failed += len(deleted.get("Failed", []))
        result.moved += len(accepted)
    result.seconds = time.monotonic() - started
    return result


def move_with_task(sqs: Any, route: Route, rate: int, poll_seconds: float = 2.0) -> Result:
    started = time.monotonic()
    result = Result(method="task", found=waiting(sqs, route.dlq_url))
    sqs.start_message_move_task(
        SourceArn=route.dlq_arn, DestinationArn=route.source_arn, MaxNumberOfMessagesPerSecond=rate
    )
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=route.dlq_arn, MaxResults=1).get("Results", [])
        task = tasks[0] if tasks else {}
        if task.get("Status") in TASK_DONE:
            break
        time.sleep(poll_seconds)
    result.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
    if task.get("Status") != "COMPLETED":
        result.failed = max(result.found - result.moved, 1)
    result.seconds = time.monotonic() - started
    return result


def redrive(
    sqs: Any, queue: str, *, method: Method = "auto", rate: int = DEFAULT_RATE, dry_run: bool = False
) -> tuple[Route, Result]:
    if not 1 <= rate <= MAX_RATE:
        raise SystemExit(f"--rate must be 1-{MAX_RATE} messages per second (StartMessageMoveTask's bounds)")
    route = resolve(sqs, queue)
    chosen = choose(method, lambda: offers_move_tasks(sqs, route.dlq_arn))
    if dry_run:
        return route, Result(method=chosen, found=waiting(sqs, route.dlq_url), dry_run=True)
    if chosen == "task":
        return route, move_with_task(sqs, route, rate)
    return route, move_with_loop(sqs, route, rate)


def describe(route: Route, result: Result, rate: int) -> str:
    way = "StartMessageMoveTask" if result.method == "task" else "receive/send/delete loop"
    head = f"{name_of(route.dlq_url)} -> {name_of(route.source_url)} ({way}, at most {rate} msg/s)"
    if result.dry_run:
        return f"{head}\n  dry run: {result.found} messages would be moved; nothing was moved"
    return f"{head}\n  found {result.found}, moved {result.moved}, failed {result.failed} in {result.seconds:.1f}s"


def list_dead_letter_queues(sqs: Any) -> list[str]:
    """One line per DLQ: its name, depth and the queue(s) it serves."""
    urls = list(_queue_urls(sqs))
    arns = {url: _attributes(sqs, url, "QueueArn")["QueueArn"] for url in urls}
    served: dict[str, list[str]] = {}
    for url in urls:
        target = dead_letter_target(sqs, url)
        if target is not None:
            served.setdefault(target, []).append(name_of(url))
    return [
        f"{name_of(url)}  {waiting(sqs, url)} waiting  <- {', '.join(sorted(served[arns[url]]))}"
        for url in urls
        if arns[url] in served
    ]


def client(local: bool) -> Any:
    if local:
        from localcloud.settings import Settings

        return Settings.from_env().client("sqs")
    return boto3.client("sqs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.redrive", description=__doc__.split("\n\n")[0])
    parser.add_argument("queue", nargs="?", help="DLQ or work queue, name or URL (omit to list the DLQs)")
    parser.add_argument("--dry-run", action="store_true", help="count and report; move nothing")
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE, help=f"messages per second, 1-{MAX_RATE}")
    parser.add_argument("--method", choices=("auto", "task", "loop"), default="auto")
    parser.add_argument("--local", action="store_true", help="the local cloud (make local) instead of AWS")
    args = parser.parse_args(argv)
    sqs = client(args.local)
    if not args.queue:
        print("\n".join(list_dead_letter_queues(sqs)) or "no dead-letter queues")
        return 0
    route, result = redrive(sqs, args.queue, method=args.method, rate=args.rate, dry_run=args.dry_run)
    print(describe(route, result, args.rate))
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
