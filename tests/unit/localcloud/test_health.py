"""The ALB health rules the supervisor applies (localcloud/health.py)."""

from __future__ import annotations

import pytest

from localcloud.health import DRAINING, HEALTHY, INITIAL, UNHEALTHY, HealthCheck, TargetHealth, routable

CHECK = HealthCheck(path="/health", interval_seconds=5, timeout_seconds=4, healthy_threshold=2, unhealthy_threshold=3)


def feed(outcomes: list[str | None], check: HealthCheck = CHECK) -> list[str]:
    target = TargetHealth()
    states = []
    for failure in outcomes:
        target.observe(check, failure)
        states.append(target.state)
    return states


def test_a_new_target_is_initial_until_it_passes_the_healthy_threshold():
    assert feed([None, None]) == [INITIAL, HEALTHY]


def test_a_healthy_target_turns_unhealthy_after_the_unhealthy_threshold_only():
    assert feed([None, None, "timeout", "timeout", "timeout"]) == [INITIAL, HEALTHY, HEALTHY, HEALTHY, UNHEALTHY]


def test_one_pass_resets_the_failure_count():
    assert feed([None, None, "timeout", "timeout", None, "timeout", "timeout"])[-1] == HEALTHY


def test_an_unhealthy_target_needs_the_healthy_threshold_to_come_back():
    states = feed([None, None, "status", "status", "status", None, None])
    assert states[-3:] == [UNHEALTHY, UNHEALTHY, HEALTHY]


def test_the_reason_names_the_kind_of_failure():
    target = TargetHealth()
    for _ in range(3):
        target.observe(CHECK, "status")
    assert target.reason == "Target.ResponseCodeMismatch"
    target.observe(CHECK, "timeout")
    assert target.reason == "Target.Timeout"


@pytest.mark.parametrize(
    ("matcher", "status", "accepted"),
    [("200", 200, True), ("200", 204, False), ("200,202", 202, True), ("200-299", 299, True), ("200-299", 302, False)],
)
def test_the_matcher_accepts_codes_lists_and_ranges(matcher, status, accepted):
    assert HealthCheck(matcher=matcher).accepts(status) is accepted


def test_the_health_check_port_is_the_traffic_port_unless_set():
    assert HealthCheck().port_for(8083) == 8083
    assert HealthCheck(port="9000").port_for(8083) == 9000


def test_requests_go_to_healthy_targets_only():
    assert routable({"a": HEALTHY, "b": UNHEALTHY, "c": INITIAL, "d": DRAINING}) == ["a"]


def test_with_no_healthy_target_the_load_balancer_fails_open_to_the_unhealthy_ones():
    assert routable({"a": UNHEALTHY, "b": UNHEALTHY, "c": DRAINING, "d": INITIAL}) == ["a", "b"]


def test_targets_still_initial_or_draining_get_nothing():
    assert routable({"a": INITIAL, "b": DRAINING}) == []
