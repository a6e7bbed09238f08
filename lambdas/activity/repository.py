"""The activity counters' writer: the Express state machine, started synchronously once per batch
(StartSyncExecution). The counters and markers it writes are `ACTIVITY#` items of the orders table
(contracts.tables); this context reads them only in tests and tools."""

from __future__ import annotations

import functools
import json
from typing import Any

import boto3
from botocore.config import Config

# The machine answers within its own timeout (stacks/workflow_stack.py ACTIVITY_MACHINE_TIMEOUT, 20 s),
# well inside the consumer's 30 s. A retried start is safe: every event is counted once by its marker.
SYNC_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3, read_timeout=25)


@functools.cache
def _client() -> Any:
    return boto3.client("stepfunctions", config=SYNC_CONFIG)


class CountingMachine:
    def __init__(self, state_machine_arn: str) -> None:
        self.state_machine_arn = state_machine_arn

    def count(self, machine_input: dict[str, Any]) -> tuple[str, Any]:
        """Run one execution to its end: (status, parsed output or the error and cause)."""
        answer = _client().start_sync_execution(stateMachineArn=self.state_machine_arn, input=json.dumps(machine_input))
        status = answer["status"]
        if status != "SUCCEEDED":
            return status, {"error": answer.get("error"), "cause": answer.get("cause")}
        return status, json.loads(answer.get("output") or "{}")
