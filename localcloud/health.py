"""A target's health as an Application Load Balancer judges it: pure rules, no clock, no I/O.

AWS's rules (Elastic Load Balancing, "Health checks for your target groups"):
- A newly registered target is `initial` until it passes `healthy_threshold` consecutive checks.
- A target fails over to `unhealthy` after `unhealthy_threshold` consecutive failed checks, and comes
  back to `healthy` after `healthy_threshold` consecutive passes.
- A check passes when the target answers within the timeout with a status code the matcher accepts.
- A deregistered target is `draining` for the deregistration delay, then gone.
- The load balancer routes to healthy targets only; when none is healthy it "fails open" and routes to
  every registered target that is not draining (unless all are still `initial`: then nothing answers).

Used by localcloud/supervisor.py inside the emulator; kept apart so the rules are unit-tested alone
(tests/unit/localcloud/test_health.py).
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL = "initial"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
DRAINING = "draining"

# TargetHealth.Reason codes AWS reports with each state.
REASONS = {
    INITIAL: "Elb.InitialHealthChecking",
    DRAINING: "Target.DeregistrationInProgress",
}
FAILURE_REASONS = {"timeout": "Target.Timeout", "status": "Target.ResponseCodeMismatch"}
FAILED = "Target.FailedHealthChecks"


@dataclass(frozen=True)
class HealthCheck:
    """A target group's health-check settings, as CreateTargetGroup takes them."""

    path: str = "/"
    port: str = "traffic-port"
    interval_seconds: int = 30
    timeout_seconds: int = 5
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"  # "200", "200,202" or "200-299"

    def accepts(self, status: int) -> bool:
        for part in self.matcher.split(","):
            low, _, high = part.strip().partition("-")
            if low and int(low) <= status <= int(high or low):
                return True
        return False

    def port_for(self, traffic_port: int) -> int:
        return traffic_port if self.port in ("", "traffic-port") else int(self.port)


@dataclass
class TargetHealth:
    """One target's state machine; `observe` feeds it the outcome of one check."""

    state: str = INITIAL
    passes: int = 0  # consecutive
    failures: int = 0  # consecutive
    reason: str | None = REASONS[INITIAL]

    def observe(self, check: HealthCheck, failure: str | None) -> str | None:
        """`failure`: None when the check passed, else "timeout" or "status". Returns the new state if
        it changed."""
        before = self.state
        if failure is None:
            self.passes, self.failures = self.passes + 1, 0
            if self.state != HEALTHY and self.passes >= check.healthy_threshold:
                self.state, self.reason = HEALTHY, None
        else:
            self.passes, self.failures = 0, self.failures + 1
            if self.state != UNHEALTHY and self.failures >= check.unhealthy_threshold:
                self.state = UNHEALTHY
            if self.state == UNHEALTHY:
                self.reason = FAILURE_REASONS.get(failure, FAILED)
        return self.state if self.state != before else None


def routable(states: dict[object, str]) -> list[object]:
    """The targets a request may go to, given each registered target's state."""
    healthy = [target for target, state in states.items() if state == HEALTHY]
    if healthy:
        return healthy
    # Fail open: with no healthy target the load balancer tries them all (but not draining or
    # still-initial ones, which have not been judged yet).
    return [target for target, state in states.items() if state == UNHEALTHY]
