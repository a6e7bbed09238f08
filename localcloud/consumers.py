"""The SQS consumers as an operator sees them: which queue each drains, how deep a queue is, and the
switch that takes a consumer offline (its event source mapping), as the operator would flip it.

Shared by the end-to-end tests (tests/e2e/harness.py) and the game day (localcloud/gameday.py).
"""

from __future__ import annotations

from localcloud.settings import Settings
from localcloud.storefront import Deployed, wait_for

# consumer -> (construct of its function, construct of the queue it drains)
CONSUMERS = {
    "fulfilment": ("Processing/FulfilmentConsumer", "Messaging/FulfilmentQueue"),
    "notification": ("Processing/NotificationConsumer", "Messaging/NotificationQueue"),
    "analytics": ("Processing/AnalyticsConsumer", "Messaging/AnalyticsQueue"),
    "order_finaliser": ("Processing/OrderFinaliserConsumer", "Messaging/OrderCancelWindowQueue"),
    "inventory_ledger": ("Processing/InventoryLedgerConsumer", "Messaging/InventoryEventsQueue"),
    "delivery_updates": ("Processing/DeliveryUpdatesConsumer", "Messaging/DeliveryUpdatesQueue"),
    "activity": ("Processing/ActivityConsumer", "Messaging/ActivityQueue"),
}
FANOUT = ("fulfilment", "notification", "analytics")
DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def queue_url(deployed: Deployed, consumer: str) -> str:
    return deployed.physical_id(f"{CONSUMERS[consumer][1]}/Queue")


def dlq_url(deployed: Deployed, consumer: str) -> str:
    return deployed.physical_id(f"{CONSUMERS[consumer][1]}/Dlq")


def dead_letter_queues(deployed: Deployed) -> dict[str, str]:
    """Construct path -> URL of every queue where messages end that failed for good: each work
    queue's DLQ, the SNS subscriptions' delivery-failure queue and the async-invoke failure queues."""
    paths = deployed.paths(r"(/Dlq|/SubscriptionDeliveryFailures/Queue|/AsyncInvokeFailures)(/Resource)?$")
    return {path: deployed.physical_id(path) for path in paths}


def depth(sqs, url: str) -> int:
    """Messages in the queue: visible, in flight and delayed."""
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return sum(int(attrs.get(name, 0)) for name in DEPTH_ATTRIBUTES)


def esm_uuid(deployed: Deployed, consumer: str) -> str:
    function = CONSUMERS[consumer][0]
    paths = deployed.paths(rf"^{function}/Function/SqsEventSource")
    if len(paths) != 1:
        raise LookupError(f"expected one SQS event source of {function}, found {paths}")
    return deployed.physical_id(paths[0])


def set_consumer(settings: Settings, deployed: Deployed, consumer: str, enabled: bool, timeout: float = 30) -> None:
    """Enable or disable the consumer's event source mapping and wait until Lambda reports it so."""
    lambda_ = settings.client("lambda")
    uuid = esm_uuid(deployed, consumer)
    lambda_.update_event_source_mapping(UUID=uuid, Enabled=enabled)
    wanted = "Enabled" if enabled else "Disabled"
    wait_for(
        lambda: lambda_.get_event_source_mapping(UUID=uuid)["State"] == wanted,
        timeout,
        f"{consumer} event source mapping {wanted}",
    )


def consumer_enabled(settings: Settings, deployed: Deployed, consumer: str) -> bool:
    return settings.client("lambda").get_event_source_mapping(UUID=esm_uuid(deployed, consumer))["State"] == "Enabled"
