"""Powertools idempotency wiring shared by the handlers."""

from __future__ import annotations

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from plumbing import aws

# A consumer remembers a processed event as long as SQS can hand it back: 14 days is the longest a
# message (or its DLQ copy, redriven) can live, so a redrive never applies an event twice.
CONSUMER_IDEMPOTENCY_SECONDS = 14 * 24 * 3600
# An API client may retry a request with the same Idempotency-Key for a day.
API_IDEMPOTENCY_SECONDS = 24 * 3600


def idempotency_store() -> DynamoDBPersistenceLayer:
    """Powertools' DynamoDB layer on IDEMPOTENCY_TABLE (partition key `id`, TTL `expiration`)."""
    return DynamoDBPersistenceLayer(table_name=aws.env("IDEMPOTENCY_TABLE"), boto3_client=aws.client("dynamodb"))
