"""Helpers for the conditional writes every context makes on the orders table (its key design is the
contract's: contracts/tables.py). Each context's repository touches only its own items, and each
function's IAM grant names only the partition-key prefixes its repository uses (`dynamodb:LeadingKeys`).
Every write that must not happen twice is conditional, so correctness never depends on a read-then-write.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

# Decided approvals, notifications, payments and reservations stay for audits this long (TTL).
AUDIT_RETENTION = timedelta(days=90)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def expiry(moment: datetime) -> int:
    """The TTL attribute of an audit item written at `moment`."""
    return int((moment + AUDIT_RETENTION).timestamp())


def condition_failed(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


def put_once(table: Any, item: dict[str, Any]) -> bool:
    """Write an item that must not exist yet; False when it does (a replay writes nothing)."""
    try:
        table.put_item(Item=item, ConditionExpression=Attr("pk").not_exists())
        return True
    except ClientError as error:
        if condition_failed(error):
            return False
        raise


def to_item(model: Any, **extra: Any) -> dict[str, Any]:
    """A pydantic model as a DynamoDB item: numbers as Decimal (boto3 refuses float), datetimes as ISO
    strings."""
    item: dict[str, Any] = json.loads(model.model_dump_json(exclude_none=True), parse_float=Decimal)
    item.update(extra)
    return item
