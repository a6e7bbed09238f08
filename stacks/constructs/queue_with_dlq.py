"""An SQS queue that can never lose a message silently: DLQ, long polling, encryption, SSL-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.nag import acknowledge

# Long polling: a receive waits up to 20 s for a message instead of answering empty at once.
LONG_POLL = Duration.seconds(20)


@dataclass(frozen=True)
class QueueWithDlqProps:
    """`consumer_timeout` is the consuming Lambda's timeout: the visibility timeout is 6x it, as AWS
    advises for event source mappings, so a message is not redelivered while a retry is still running.
    `visibility_timeout` replaces that rule for a consumer that extends the visibility of the message
    it works on itself (an EC2 worker's heartbeat): then the timeout only has to outlast a heartbeat."""

    consumer_timeout: Duration
    max_receive_count: int = 3
    retention: Duration = Duration.days(4)
    dlq_retention: Duration = Duration.days(14)  # the maximum: time to inspect and redrive poison messages
    fifo: bool = False
    content_based_deduplication: bool = False
    delivery_delay: Duration | None = None
    removal_policy: RemovalPolicy = RemovalPolicy.DESTROY
    visibility_timeout: Duration | None = None


class QueueWithDlq(Construct):
    """Work queue + dead-letter queue pair. `.queue` is what producers and consumers use."""

    VISIBILITY_FACTOR = 6

    def __init__(self, scope: Construct, construct_id: str, *, props: QueueWithDlqProps) -> None:
        super().__init__(scope, construct_id)
        fifo_kwargs: dict[str, Any] = {"fifo": True} if props.fifo else {}
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            retention_period=props.dlq_retention,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=props.removal_policy,
            **fifo_kwargs,
        )
        acknowledge(
            self.dlq,
            "Serverless::Serverless-SQSRedrivePolicy",
            "This queue is itself the dead-letter queue: the end of the line, watched by a depth alarm.",
        )
        if props.fifo:
            fifo_kwargs["content_based_deduplication"] = props.content_based_deduplication
        self.queue = sqs.Queue(
            self,
            "Queue",
            visibility_timeout=props.visibility_timeout
            or Duration.seconds(props.consumer_timeout.to_seconds() * self.VISIBILITY_FACTOR),
            receive_message_wait_time=LONG_POLL,
            retention_period=props.retention,
            delivery_delay=props.delivery_delay,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=props.max_receive_count),
            removal_policy=props.removal_policy,
            **fifo_kwargs,
        )
