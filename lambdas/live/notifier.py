"""Pushes each order status change to the customer's open sockets with PostToConnection.

A connection API Gateway reports gone (GoneException: the browser went away without a `$disconnect`
reaching us) is deleted; any other failure raises, so the stream mapping retries the batch (bisected,
bounded, then the on-failure queue).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from live.connections import Connections
from live.status import StatusChange


class Management(Protocol):
    def post_to_connection(self, *, ConnectionId: str, Data: bytes) -> Any: ...


def management_endpoint(callback_url: str, emulator: str | None = None) -> str:
    """The @connections endpoint: the stage's callback URL (`https://<api id>.execute-api.<region>.
    amazonaws.com/<stage>`), or, when the SDK is pointed at an emulator (`AWS_ENDPOINT_URL`, never set on
    AWS Lambda), the emulator's path-style address of the same stage."""
    emulator = emulator if emulator is not None else os.environ.get("AWS_ENDPOINT_URL")
    if not emulator:
        return callback_url
    parts = urlsplit(callback_url)
    api_id, stage = parts.hostname.split(".", 1)[0] if parts.hostname else "", parts.path.strip("/")
    return f"{emulator.rstrip('/')}/_aws/execute-api/{api_id}/{stage}"


@dataclass
class Delivery:
    sent: int = 0
    gone: int = 0


def push(change: StatusChange, connections: Connections, management: Management) -> Delivery:
    delivery = Delivery()
    for connection_id in connections.of(change.customer_id):
        try:
            management.post_to_connection(ConnectionId=connection_id, Data=change.message())
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "GoneException":
                raise
            connections.remove(change.customer_id, connection_id)
            delivery.gone += 1
        else:
            delivery.sent += 1
    return delivery
