"""S3 hand-off ingestion: producers drop JSON objects under `incoming/`; this consumer records each
one in DynamoDB and then deletes it. Producer and consumer never call each other (seed 003).

The consumer may only list, get and delete: an object it cannot ingest stays where it is (logged and
counted) until the bucket's lifecycle rule expires it - nothing is lost silently, nothing is moved.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from contracts.handoff import INCOMING_PREFIX, HandoffDocument
from contracts.types import describe_validation_error
from handoff.repository import Handoffs

PREFIX = INCOMING_PREFIX
# A DynamoDB item holds at most 400 KB; leave room for the key and bookkeeping attributes.
MAX_OBJECT_BYTES = 300 * 1024
# Stop starting new objects when less than this is left of the invocation (the next run continues).
SAFETY_MARGIN_MS = 5_000


@dataclass
class IngestReport:
    listed: int = 0
    ingested: int = 0
    already_ingested: int = 0
    rejected: int = 0
    deferred: int = 0
    # (key, reason) of every object left in place, for the handler to log.
    rejections: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            name: getattr(self, name) for name in ("listed", "ingested", "already_ingested", "rejected", "deferred")
        }


class RejectedObject(Exception):
    """The object cannot be ingested as it is (too large, not JSON, not a list of records)."""


def parse_document(body: bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(body, parse_float=Decimal)  # DynamoDB takes Decimal, never float
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RejectedObject(f"not JSON: {error}") from None
    try:
        return HandoffDocument.model_validate({"records": data}).records
    except ValidationError as error:
        raise RejectedObject(describe_validation_error(error)) from None


def ingest(
    bucket: str,
    handoffs: Handoffs,
    s3: Any,
    remaining_ms: Callable[[], int],
) -> IngestReport:
    """Ingest every object under PREFIX, oldest listing order first, while time remains."""
    report = IngestReport()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=PREFIX):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            if key.endswith("/"):
                continue  # a "folder" placeholder, not a hand-off
            report.listed += 1
            if remaining_ms() < SAFETY_MARGIN_MS:
                report.deferred += 1
                continue
            try:
                outcome = _ingest_object(bucket, key, entry, handoffs, s3)
            except RejectedObject as error:
                report.rejected += 1
                report.rejections.append((key, str(error)))
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _ingest_object(bucket: str, key: str, entry: dict[str, Any], handoffs: Handoffs, s3: Any) -> str:
    if entry["Size"] > MAX_OBJECT_BYTES:
        raise RejectedObject(f"{entry['Size']} bytes, more than {MAX_OBJECT_BYTES}")
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return "already_ingested"  # deleted since it was listed (an overlapping run)
        raise
    records = parse_document(obj["Body"].read())
    try:
        written = handoffs.record(key, entry["ETag"].strip('"'), records)
    except (TypeError, decimal.Inexact, decimal.Rounded) as error:  # a value DynamoDB cannot hold
        raise RejectedObject(f"records cannot be stored: {error!r}") from None
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationException":
            raise RejectedObject(f"records cannot be stored: {error.response['Error']['Message']}") from None
        raise
    # Delete only after the record is safely stored; a failed delete is retried next run (the
    # conditional put above makes the re-ingestion a no-op).
    s3.delete_object(Bucket=bucket, Key=key)
    return "ingested" if written else "already_ingested"
