"""Target-tracking arithmetic the supervisor applies (localcloud/scaling.py)."""

from __future__ import annotations

from localcloud.scaling import GroupScaling, TrackingPolicy, proportional

CPU = TrackingPolicy("cpu", "ASGAverageCPUUtilization", 50)
REQUESTS = TrackingPolicy("requests", "ALBRequestCountPerTarget", 600)


def run(group: GroupScaling, capacity: int, readings_per_datapoint, minimum=2, maximum=4, settled=True):
    """Feed datapoints until a decision; returns (datapoints used, decision)."""
    for n, readings in enumerate(readings_per_datapoint, start=1):
        decision = group.evaluate(capacity, minimum, maximum, readings, settled)
        if decision:
            return n, decision
    return len(readings_per_datapoint), None


def test_capacity_is_proportional_to_metric_over_target():
    assert proportional(2, 100, 50) == 4
    assert proportional(2, 51, 50) == 3
    assert proportional(4, 10, 50) == 1
    assert proportional(3, 50, 50) == 3


def test_scale_out_after_three_datapoints_above_the_target():
    used, decision = run(GroupScaling(), 2, [[(CPU, 90.0)]] * 5)
    assert used == 3 and decision is not None
    assert decision.desired == 4  # ceil(2 x 90 / 50), within max 4
    assert "cpu" in decision.reason and "90.0" in decision.reason


def test_scale_out_is_capped_at_the_maximum():
    _, decision = run(GroupScaling(), 2, [[(CPU, 500.0)]] * 3)
    assert decision is not None and decision.desired == 4


def test_a_dip_resets_the_high_alarm():
    used, decision = run(GroupScaling(), 2, [[(CPU, 90.0)], [(CPU, 90.0)], [(CPU, 40.0)], [(CPU, 90.0)], [(CPU, 90.0)]])
    assert decision is None and used == 5


def test_scale_in_needs_fifteen_datapoints_below_ninety_percent_of_the_target():
    used, decision = run(GroupScaling(), 4, [[(CPU, 5.0)]] * 20)
    assert used == 15 and decision is not None and decision.desired == 2  # ceil(4 x 5/50) = 1, min 2
    _, none = run(GroupScaling(), 4, [[(CPU, 46.0)]] * 20)  # 46 > 0.9 x 50: no scale-in
    assert none is None


def test_no_scale_in_during_cooldown_or_warm_up():
    _, decision = run(GroupScaling(), 4, [[(CPU, 5.0)]] * 20, settled=False)
    assert decision is None


def test_any_policy_can_scale_out_but_all_must_agree_to_scale_in():
    _, out = run(GroupScaling(), 2, [[(CPU, 10.0), (REQUESTS, 1200.0)]] * 3)
    assert out is not None and out.desired == 4 and "requests" in out.reason
    _, none = run(GroupScaling(), 4, [[(CPU, 5.0), (REQUESTS, 700.0)]] * 20)
    assert none is None  # requests above 90 % of target veto the scale-in
    _, both = run(GroupScaling(), 4, [[(CPU, 5.0), (REQUESTS, 10.0)]] * 15)
    assert both is not None and both.desired == 2


def test_a_policy_without_data_never_votes():
    _, decision = run(GroupScaling(), 2, [[(CPU, None)]] * 10)
    assert decision is None


def test_scale_in_disabled_policy_only_scales_out():
    only_out = TrackingPolicy("cpu", "ASGAverageCPUUtilization", 50, disable_scale_in=True)
    _, decision = run(GroupScaling(), 4, [[(only_out, 1.0), (REQUESTS, 1.0)]] * 15)
    assert decision is not None and decision.desired == 2  # the remaining voter decides
