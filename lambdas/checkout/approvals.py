"""Human approval of large orders: the checkout waits on a task token until somebody decides."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from checkout.models import ApprovalTask
from checkout.repository import Approvals
from contracts.api import ApprovalDecided, ApprovalDecision, PendingApproval, PendingApprovals
from contracts.errors import ApprovalAlreadyDecided, ApprovalRejected
from plumbing.orders_table import utc_now

# Step Functions' answers for a token whose task is over (timed out, execution stopped, bad token).
TASK_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}
DECISION_STATUS = {"approve": "APPROVED", "reject": "REJECTED"}


def request(task: ApprovalTask, approvals: Approvals) -> dict[str, str]:
    """Park the task token with the order; the execution waits until the approvals API answers."""
    approvals.put(task.order_id, task.task_token)
    return {"order_id": task.order_id, "approval": "PENDING"}


def pending(approvals: Approvals) -> PendingApprovals:
    waiting = sorted(approvals.pending(), key=lambda approval: approval["requested_at"])
    return PendingApprovals(approvals=[PendingApproval.model_validate(approval) for approval in waiting])


def decide(order_id: str, decision: ApprovalDecision, approvals: Approvals, sfn: Any) -> ApprovalDecided:
    """Claim the pending approval (ApprovalNotPending / ApprovalAlreadyDecided otherwise), then complete
    the task: SendTaskSuccess, or SendTaskFailure with the error the state machine catches."""
    status = DECISION_STATUS[decision.decision]
    token = approvals.claim(order_id, status)
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
            approvals.close(order_id, "EXPIRED")
            raise ApprovalAlreadyDecided(f"the checkout of order {order_id} no longer waits for approval") from None
        approvals.unclaim(order_id, status)  # transient: let the approver try again
        raise
    return ApprovalDecided(order_id=order_id, decision=decision.decision, approval=status)  # type: ignore[arg-type]
