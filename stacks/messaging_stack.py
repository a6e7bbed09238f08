"""Asynchronous messaging: the order-events topic, its fan-out queues, a FIFO queue and a delay queue.

Producers (the backend tier, the orders API) publish one event to SNS and nothing else, and never call a
consumer. Each subscribed queue receives only the events its filter policy admits (seed 004: fan-out +
filtering); the policies are generated from the contract's subscription table (contracts/events.py). The
cancel window is a subscriber too: a delay queue that receives OrderPlaced and holds it for the grace
period, so placing an order is one write (the publish), not a publish plus a send.
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from contracts.events import EVENT_TYPE_ATTRIBUTE, SUBSCRIPTIONS
from stacks.config import StageConfig
from stacks.constructs.queue_with_dlq import QueueWithDlq, QueueWithDlqProps
from stacks.stage_defaults import removal_policy

# Subscribers of the order-events topic (contracts.events.SUBSCRIPTIONS): the fan-out queues, each with
# its consumer, and the cancel window's delay queue.
FANOUT_QUEUES = ("fulfilment", "notification", "analytics")
CANCEL_WINDOW = "cancel_window"
CANCEL_WINDOW_RECEIVES = 8

# Timeout of every queue-consuming Lambda; each queue's visibility timeout is 6x this.
CONSUMER_TIMEOUT = Duration.seconds(30)


class MessagingStack(Stack):
    """SNS topic + filtered SQS fan-out, inventory FIFO queue, order-cancel delay queue, activity queue."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = removal_policy(config)

        # Customer managed key: SNS needs a key whose policy lets the service use it for SQS delivery.
        self.topic_key = kms.Key(
            self,
            "OrderEventsKey",
            description="Encrypts the order-events topic",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.order_events_topic = sns.Topic(
            self,
            "OrderEventsTopic",
            master_key=self.topic_key,
            enforce_ssl=True,
        )

        def queue(name: str, **props) -> QueueWithDlq:
            return QueueWithDlq(
                self,
                name,
                props=QueueWithDlqProps(consumer_timeout=CONSUMER_TIMEOUT, removal_policy=removal, **props),
            )

        # SNS -> SQS deliveries that fail (queue policy, KMS) land here instead of being dropped.
        self.subscription_dlq = queue("SubscriptionDeliveryFailures")
        self.fanout: dict[str, QueueWithDlq] = {
            name: queue(f"{name.capitalize()}Queue") for name in SUBSCRIPTIONS if name in FANOUT_QUEUES
        }
        # Delay queue: an order becomes final only after the cancel grace period has passed. The queue's
        # delivery delay applies to what SNS delivers, so OrderPlaced waits there for the grace period.
        # The finaliser may be ahead of the fulfilment consumer (both hear the same OrderPlaced): it asks
        # again with backoff (5 s doubling, lambdas/orders/handlers/finaliser.py), and 8 receives give the
        # record about 8 minutes to appear before the message goes to the DLQ.
        self.cancel_delay_queue = queue(
            "OrderCancelWindowQueue",
            delivery_delay=Duration.seconds(config.cancel_grace_seconds),
            max_receive_count=CANCEL_WINDOW_RECEIVES,
        )
        subscribers = {**self.fanout, CANCEL_WINDOW: self.cancel_delay_queue}
        for name, event_types in SUBSCRIPTIONS.items():
            self.order_events_topic.add_subscription(
                subs.SqsSubscription(
                    subscribers[name].queue,
                    raw_message_delivery=True,
                    filter_policy={
                        EVENT_TYPE_ATTRIBUTE: sns.SubscriptionFilter.string_filter(allowlist=list(event_types))
                    },
                    dead_letter_queue=self.subscription_dlq.queue,
                )
            )
        # SNS (a service principal) must be able to use the topic key when delivering to the queues.
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )

        # Ordered inventory and payment events: one message group per SKU / order, exactly-once processing.
        self.inventory_fifo = queue("InventoryEventsQueue", fifo=True, content_based_deduplication=True)

        # Partner delivery updates: API Gateway sends them here itself (POST /partners/deliveries, a
        # mapping template, no Lambda in the path); the delivery consumer applies them to the orders.
        self.delivery_updates = queue("DeliveryUpdatesQueue")

        # Storefront activity (contracts.activity): the web tier sends one event per view, search and cart
        # add; not an order event, so not on the topic. Its consumer counts each batch with the Express
        # machine (stacks/workflow_stack.py); poison goes to the DLQ after 3 receives.
        self.activity = queue("ActivityQueue")

        # Partner inbound (seed 002: resource-based permissions; the owner pays): carriers and other
        # partners send to this queue from their own accounts. Its own queue, not one of the internal
        # ones, so a partner can never inject order or payment events.
        self.partner_inbound = queue("PartnerInboundQueue")
        self._share_with_partners(self.partner_inbound, config.partner_account_ids)

    @staticmethod
    def _share_with_partners(pair: QueueWithDlq, account_ids: list[str]) -> None:
        """Only the listed accounts may send, and only over TLS (QueueWithDlq already denies plain HTTP
        to everyone); they may not receive, delete or change the queue. No accounts: no statement."""
        if not account_ids:
            return
        pair.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PartnersMaySendOverTls",
                principals=[iam.AccountPrincipal(account) for account in account_ids],
                actions=["sqs:SendMessage"],
                resources=[pair.queue.queue_arn],
                conditions={"Bool": {"aws:SecureTransport": "true"}},
            )
        )
