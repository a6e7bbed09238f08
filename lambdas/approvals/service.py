"""Human approval of large orders: the checkout waits on a task token until somebody decides."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from shared.errors import ApprovalAlreadyDecided, ApprovalRejected
from shared.models import ApprovalDecision, ApprovalTask, utc_now
from shared.repositories import OrdersRepository

# Step Functions' answers for a token whose task is over (timed out, execution stopped, bad token).
TASK_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}
DECISION_STATUS = {"approve": "APPROVED", "reject": "REJECTED"}


def request(task: ApprovalTask, orders: OrdersRepository) -> dict[str, str]:
    """Park the task token with the order; the execution waits until the approvals API answers."""
    orders.put_approval(task.order_id, task.task_token)
    return {"order_id": task.order_id, "approval": "PENDING"}


def pending(orders: OrdersRepository) -> list[dict[str, Any]]:
    return sorted(orders.pending_approvals(), key=lambda approval: approval["requested_at"])


def decide(order_id: str, decision: ApprovalDecision, orders: OrdersRepository, sfn: Any) -> dict[str, str]:
    """Claim the pending approval (ApprovalNotPending / ApprovalAlreadyDecided otherwise), then complete
    the task: SendTaskSuccess, or SendTaskFailure with the error the state machine catches."""
    status = DECISION_STATUS[decision.decision]
    token = orders.claim_approval(order_id, status)
    try:
        if decision.decision == "approve":
            output = {"decision": decision.decision, "reason": decision.reason, "decided_at": utc_now().isoformat()}
            sfn.send_task_success(taskToken=token, output=json.dumps(output))
        else:
            sfn.send_task_failure(
                taskToken=token,
                error=ApprovalRejected.__name__,
                cause=decision.reason or "rejected by an approver",
            )
    except ClientError as error:
        if error.response["Error"]["Code"] in TASK_GONE:
            orders.close_approval(order_id, "EXPIRED")
            raise ApprovalAlreadyDecided(f"the checkout of order {order_id} no longer waits for approval") from None
        orders.unclaim_approval(order_id, status)  # transient: let the approver try again
        raise
    return {"order_id": order_id, "decision": decision.decision, "approval": status}
