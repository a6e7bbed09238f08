"""SQS FIFO consumer of the inventory events queue -> the ledger.

FIFO partial failures: once a record fails, the later records *of the same message group* are not
processed and are reported as failures too (they must not overtake it); other groups carry on.
"""

from __future__ import annotations

from contracts.events import LedgerEvent
from inventory import ledger as service
from inventory.repository import Ledger
from plumbing.aws import env
from plumbing.batch import LedgerRecord
from plumbing.consumer import SqsConsumer

# `event_id` is order + step (+ sku): a step retried after SQS's 5-minute deduplication window sends a
# second message with a new sequence number, and this key still records it once.
consumer = SqsConsumer(LedgerRecord, idempotency_key="event_id", fifo=True)
ledger = Ledger(env("ORDERS_TABLE"))


@consumer.once
def record_once(event: LedgerEvent, sequence: str) -> dict[str, str]:
    return service.record(event, sequence, ledger)


def record_handler(record: LedgerRecord) -> dict[str, str]:
    event = record.body
    consumer.follow(event.order_id, event.event_type, event.correlation_id)
    consumer.logger.append_keys(message_group=event.message_group)
    if not record.attributes.SequenceNumber:
        raise ValueError(f"message {record.messageId} has no SequenceNumber: not from a FIFO queue")
    result = record_once(event=event, sequence=record.attributes.SequenceNumber)
    consumer.logger.info("ledger event recorded", extra=result)
    return result


lambda_handler = consumer.handler(record_handler)
