"""Least-privilege DynamoDB grants for the single-table design: item actions limited to the partition-key
prefixes a function's repository uses (contracts/tables.py), instead of CDK's table-wide read/write.

`dynamodb:LeadingKeys` constrains every item action (GetItem, PutItem, UpdateItem, DeleteItem, Query),
including each item of a TransactWriteItems call. It says nothing about Scan (a Scan has no leading key),
so Scan is never granted through this helper: the one function that scans says so explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam

ITEM_ACTIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "ConditionCheckItem"})


def grant_items(
    table: dynamodb.ITable, grantee: iam.IGrantable, actions: Sequence[str], *, key_prefixes: Sequence[str]
) -> None:
    """Allow `actions` (item actions, e.g. "GetItem") on `table` for items whose partition key starts with
    one of `key_prefixes` only."""
    unknown = set(actions) - ITEM_ACTIONS
    if unknown:
        raise ValueError(f"not item actions (LeadingKeys cannot constrain them): {sorted(unknown)}")
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=[f"dynamodb:{action}" for action in sorted(actions)],
            resources=[table.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{prefix}*" for prefix in key_prefixes]}},
        )
    )
