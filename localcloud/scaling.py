"""Target-tracking scaling as EC2 Auto Scaling does it: pure arithmetic, no clock, no I/O.

AWS's rules (EC2 Auto Scaling, "Target tracking scaling policies"):
- Each policy keeps its metric at the target value. Its high alarm fires after 3 consecutive
  datapoints above the target, its low alarm after 15 consecutive datapoints below 90 % of it.
- The capacity a policy asks for is proportional: ceil(capacity x metric / target).
- With several policies the group scales out when any one asks for more and in only when every
  policy (that allows scale-in) asks for less; it takes the largest capacity asked for.
- The result stays within the group's min and max; while instances warm up, or within the cooldown
  after the last scaling activity, the group does not scale in.

The local cloud's datapoint period is shorter than AWS's minute (localcloud/supervisor.py), so that a
test sees a scale-out in seconds; metrics are still "per minute" where AWS's are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

HIGH_DATAPOINTS = 3
LOW_DATAPOINTS = 15
LOW_FRACTION = 0.9


@dataclass(frozen=True)
class TrackingPolicy:
    name: str
    metric: str  # ASGAverageCPUUtilization | ALBRequestCountPerTarget | SQSBacklogPerInstance ...
    target: float
    disable_scale_in: bool = False


@dataclass
class PolicyState:
    """The datapoints a policy's two alarms have seen in a row."""

    above: int = 0
    below: int = 0

    def record(self, value: float, target: float) -> None:
        self.above = self.above + 1 if value > target else 0
        self.below = self.below + 1 if value < target * LOW_FRACTION else 0


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str  # names the policy and the metric value that caused it


@dataclass
class GroupScaling:
    """The target-tracking state of one Auto Scaling group."""

    states: dict[str, PolicyState] = field(default_factory=dict)
    high_datapoints: int = HIGH_DATAPOINTS
    low_datapoints: int = LOW_DATAPOINTS

    def evaluate(
        self,
        capacity: int,
        minimum: int,
        maximum: int,
        readings: list[tuple[TrackingPolicy, float | None]],
        may_scale_in: bool = True,
    ) -> Decision | None:
        """One datapoint per policy (None: no data, e.g. no instance yet). Returns the new desired
        capacity and why, or None when nothing changes."""
        out: list[tuple[int, str]] = []
        ins: list[tuple[int, str]] = []
        voters = 0
        for policy, value in readings:
            state = self.states.setdefault(policy.name, PolicyState())
            if value is None:
                state.above = state.below = 0
                continue
            state.record(value, policy.target)
            wanted = proportional(max(capacity, 1), value, policy.target)
            why = f"{policy.name}: {policy.metric} {value:.1f} vs target {policy.target:g}"
            if state.above >= self.high_datapoints and wanted > capacity:
                out.append((wanted, f"{why} for {state.above} datapoints"))
            if not policy.disable_scale_in:
                voters += 1
                if state.below >= self.low_datapoints and wanted < capacity:
                    ins.append((wanted, f"{why} for {state.below} datapoints"))
        if out:
            desired, reason = max(out)
            desired = min(desired, maximum)
            if desired > capacity:
                self._reset()
                return Decision(desired, f"scale out {capacity} -> {desired}: {reason}")
        if ins and len(ins) == voters and may_scale_in:
            desired, reason = max(ins)
            desired = max(desired, minimum)
            if desired < capacity:
                self._reset()
                return Decision(desired, f"scale in {capacity} -> {desired}: {reason}")
        return None

    def _reset(self) -> None:
        """After a scaling activity the alarms start counting afresh, on the new capacity's metric."""
        for state in self.states.values():
            state.above = state.below = 0


def proportional(capacity: int, value: float, target: float) -> int:
    """The capacity that brings `value` to `target`, if load spreads evenly over the instances."""
    if target <= 0:
        return capacity
    return max(1, math.ceil(capacity * value / target - 1e-9))
