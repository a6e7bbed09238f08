"""Sessions, carts and checkout tokens in one DynamoDB table (partition key `id`, TTL on `expires_at`).

| item id | attributes | written by |
|---|---|---|
| `session:<session id>` | `val` (the session, msgpack), `expires_at` | the Flask-Session interface below |
| `cart:<customer id>` | `line:<sku>` (quantity) per line, `expires_at` | `cart_add` / `cart_remove` / `complete_checkout` |
| `checkout:<session id>` | `token`, `expires_at` | `checkout_token` / `complete_checkout` |

The same guarantees as Redis (services/web/store.py), with DynamoDB's own tools:

- every read is strongly consistent (`ConsistentRead`): the next request may land on another instance;
- a cart line is its own attribute, changed with `ADD` under a condition (the line limit): concurrent
  changes of two lines, or of one, never overwrite each other (what HINCRBY in WATCH does in Redis);
- the token is created with `if_not_exists`, so concurrent first checkouts get the same one;
- `complete_checkout` is one `TransactWriteItems`: delete the token *if it is still the one the order
  was placed with*, and set each ordered line to what it held minus the ordered quantity *if it still
  holds what was read*; a changed cart retries, a renewed token means a double submit got there first.
- TTL deletes expired items eventually (within days), so an item past `expires_at` counts as absent.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask
from flask_session.base import ServerSideSession, ServerSideSessionInterface

from contracts.tables import CART_ITEM_PREFIX, CHECKOUT_ITEM_PREFIX, SESSIONS_TTL_ATTRIBUTE
from services.web import cart
from services.web.checkout import TOKEN_TTL_SECONDS
from services.web.sessions import SESSION_KEY_PREFIX, secure_cookie

if TYPE_CHECKING:  # services.web.store imports this module where the stage chooses DynamoDB
    from services.web.store import StoreName

TTL_ATTRIBUTE = SESSIONS_TTL_ATTRIBUTE
LINE_PREFIX = "line:"
CART_PREFIX, CHECKOUT_PREFIX = CART_ITEM_PREFIX, CHECKOUT_ITEM_PREFIX
COMPLETE_ATTEMPTS = 5


def _conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoDbSessionInterface(ServerSideSessionInterface):
    """Flask-Session's server-side sessions on the store's table. Not Flask-Session's own DynamoDB
    interface: that one creates the table at start-up (a CreateTable grant for every instance) and reads
    eventually consistently (a login could be missed by the next request on another instance)."""

    def __init__(self, app: Flask, store: DynamoDbStore) -> None:
        self._store = store
        super().__init__(
            app,
            key_prefix=SESSION_KEY_PREFIX,
            use_signer=False,
            permanent=True,
            sid_length=32,
            serialization_format="msgpack",
        )

    def get_cookie_secure(self, app: Flask) -> bool:
        return secure_cookie(app)

    def _retrieve_session_data(self, store_id: str) -> dict | None:
        item = self._store.get(store_id)
        return None if item is None else self.serializer.decode(item["val"]["B"])

    def _delete_session(self, store_id: str) -> None:
        self._store.client.delete_item(TableName=self._store.table, Key={"id": {"S": store_id}})

    def _upsert_session(self, session_lifetime: timedelta, session: ServerSideSession, store_id: str) -> None:
        self._store.client.put_item(
            TableName=self._store.table,
            Item={
                "id": {"S": store_id},
                "val": {"B": self.serializer.encode(session)},
                TTL_ATTRIBUTE: {"N": str(int(time.time() + session_lifetime.total_seconds()))},
            },
        )


class DynamoDbStore:
    name: StoreName = "dynamodb"
    unavailable: tuple[type[Exception], ...] = (BotoCoreError, ClientError)

    def __init__(self, table: str, *, client: Any = None) -> None:
        self.table = table
        self.client = client or boto3.client("dynamodb")

    def session_interface(self, app: Flask) -> DynamoDbSessionInterface:
        return DynamoDbSessionInterface(app, self)

    # --- items ---------------------------------------------------------------------------------

    def get(self, item_id: str) -> dict[str, Any] | None:
        """The item, strongly consistent; None when absent or past its TTL (not deleted yet)."""
        item = self.client.get_item(TableName=self.table, Key={"id": {"S": item_id}}, ConsistentRead=True).get("Item")
        if item is None or int(item.get(TTL_ATTRIBUTE, {}).get("N", "0")) < time.time():
            return None
        return item

    @staticmethod
    def _expiry(seconds: int) -> dict[str, str]:
        return {"N": str(int(time.time()) + seconds)}

    # --- carts ---------------------------------------------------------------------------------

    @staticmethod
    def _lines(item: dict[str, Any] | None) -> dict[str, int]:
        if item is None:
            return {}
        return {
            name.removeprefix(LINE_PREFIX): int(value["N"])
            for name, value in item.items()
            if name.startswith(LINE_PREFIX) and int(value["N"]) > 0
        }

    def cart_lines(self, customer_id: str) -> dict[str, int]:
        return self._lines(self.get(CART_PREFIX + customer_id))

    def cart_add(self, customer_id: str, sku: str, quantity: int) -> int:
        if quantity > cart.MAX_QUANTITY:
            raise cart.CartLimitExceeded(f"at most {cart.MAX_QUANTITY} of {sku} per order")
        key = {"id": {"S": CART_PREFIX + customer_id}}
        for _ in range(2):  # a second time only after clearing a cart past its TTL
            try:
                answer = self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="ADD #line :quantity SET #ttl = :expires",
                    ConditionExpression="(attribute_not_exists(#ttl) OR #ttl >= :now) "
                    "AND (attribute_not_exists(#line) OR #line <= :room)",
                    ExpressionAttributeNames={"#line": LINE_PREFIX + sku, "#ttl": TTL_ATTRIBUTE},
                    ExpressionAttributeValues={
                        ":quantity": {"N": str(quantity)},
                        ":room": {"N": str(cart.MAX_QUANTITY - quantity)},
                        ":now": {"N": str(int(time.time()))},
                        ":expires": self._expiry(cart.CART_TTL_SECONDS),
                    },
                    ReturnValues="UPDATED_NEW",
                )
                return int(answer["Attributes"][LINE_PREFIX + sku]["N"])
            except ClientError as error:
                if not _conditional_failure(error):
                    raise
            if self.get(CART_PREFIX + customer_id) is not None:  # a live cart: the line is full
                raise cart.CartLimitExceeded(f"at most {cart.MAX_QUANTITY} of {sku} per order")
            self._clear_expired(key)
        raise cart.CartLimitExceeded(f"at most {cart.MAX_QUANTITY} of {sku} per order")

    def _clear_expired(self, key: dict[str, Any]) -> None:
        try:
            self.client.delete_item(
                TableName=self.table,
                Key=key,
                ConditionExpression="#ttl < :now",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
            )
        except ClientError as error:
            if not _conditional_failure(error):
                raise

    def cart_remove(self, customer_id: str, sku: str) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"id": {"S": CART_PREFIX + customer_id}},
                UpdateExpression="REMOVE #line",
                ConditionExpression="attribute_exists(#line) AND #ttl >= :now",
                ExpressionAttributeNames={"#line": LINE_PREFIX + sku, "#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}},
            )
        except ClientError as error:
            if _conditional_failure(error):
                return False
            raise
        return True

    # --- checkout token ------------------------------------------------------------------------

    def checkout_token(self, session_id: str) -> str:
        answer = self.client.update_item(
            TableName=self.table,
            Key={"id": {"S": CHECKOUT_PREFIX + session_id}},
            UpdateExpression="SET #token = if_not_exists(#token, :new), #ttl = :expires",
            ExpressionAttributeNames={"#token": "token", "#ttl": TTL_ATTRIBUTE},
            ExpressionAttributeValues={
                ":new": {"S": secrets.token_hex(16)},
                ":expires": self._expiry(TOKEN_TTL_SECONDS),
            },
            ReturnValues="ALL_NEW",
        )
        return str(answer["Attributes"]["token"]["S"])

    def complete_checkout(self, session_id: str, token: str, customer_id: str, ordered: dict[str, int]) -> bool:
        token_key = {"id": {"S": CHECKOUT_PREFIX + session_id}}
        for _ in range(COMPLETE_ATTEMPTS):
            held = self.get(CHECKOUT_PREFIX + session_id)
            if held is None or held["token"]["S"] != token:
                return False
            current = self.cart_lines(customer_id)
            names: dict[str, str] = {}
            values: dict[str, Any] = {}
            sets, removes, conditions = [], [], []
            for index, (sku, quantity) in enumerate(sorted(ordered.items())):
                names[f"#l{index}"] = LINE_PREFIX + sku
                before = current.get(sku, 0)
                if before:
                    values[f":was{index}"] = {"N": str(before)}
                    conditions.append(f"#l{index} = :was{index}")
                else:
                    conditions.append(f"attribute_not_exists(#l{index})")
                if before - quantity > 0:
                    values[f":left{index}"] = {"N": str(before - quantity)}
                    sets.append(f"#l{index} = :left{index}")
                else:
                    removes.append(f"#l{index}")
            update = " ".join(
                part
                for part in (
                    f"SET {', '.join(sets)}" if sets else "",
                    f"REMOVE {', '.join(removes)}" if removes else "",
                )
                if part
            )
            items: list[dict[str, Any]] = [
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": token_key,
                        "ConditionExpression": "#token = :token",
                        "ExpressionAttributeNames": {"#token": "token"},
                        "ExpressionAttributeValues": {":token": {"S": token}},
                    }
                }
            ]
            if update:
                items.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": {"id": {"S": CART_PREFIX + customer_id}},
                            "UpdateExpression": update,
                            "ConditionExpression": " AND ".join(conditions),
                            "ExpressionAttributeNames": names,
                            **({"ExpressionAttributeValues": values} if values else {}),
                        }
                    }
                )
            try:
                self.client.transact_write_items(TransactItems=items)
                return True
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = error.response.get("CancellationReasons") or []
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return False  # the token was renewed: a double submit completed the order
                # the cart changed between the read and the write: read it again
        raise RuntimeError(f"the cart of {customer_id} kept changing while the order completed")

    def reachable(self) -> bool:
        """One GetItem of an id no session has (session ids are 43 random URL-safe characters): the
        web role may only touch items, not describe the table."""
        try:
            self.client.get_item(TableName=self.table, Key={"id": {"S": SESSION_KEY_PREFIX + "health"}})
        except (BotoCoreError, ClientError):
            return False
        return True
