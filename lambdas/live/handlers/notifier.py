"""DynamoDB stream of the orders table -> each order status change to the customer's open sockets.

Partial batch failures (Powertools BatchProcessor): a record that fails is retried by the event source
mapping, the ones before it are not sent twice.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from live.connections import Connections
from live.notifier import management_endpoint, push
from live.status import status_change
from plumbing.aws import BOTO_CONFIG, env

logger = Logger()
connections = Connections(env("CONNECTIONS_TABLE"))
management = boto3.client(
    "apigatewaymanagementapi", endpoint_url=management_endpoint(env("WEBSOCKET_CALLBACK_URL")), config=BOTO_CONFIG
)
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    change = status_change(record.raw_event)
    if change is None:
        return
    delivery = push(change, connections, management)
    logger.info("status pushed", extra={"order_id": change.order_id, "status": change.status, **vars(delivery)})


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
