"""The game day's short profile (localcloud/gameday.py, the code `make gameday` runs): ~150 orders through
the web ALB and the API while every fault is injected in turn. Nothing may be lost or duplicated, every
fault must recover, and only the poison message may end in a dead-letter queue."""

from __future__ import annotations

import pytest

from localcloud import gameday
from tests.e2e.harness import Harness

pytestmark = pytest.mark.e2e

RECOVERY_BOUND_SECONDS = 120  # the short profile's recovery timeout: a fault not back by then failed
OUTSIDE_SUCCESS_RATE = 0.99


def test_short_game_day_loses_and_duplicates_no_order(store: Harness):
    profile = gameday.PROFILES["short"]
    report = gameday.run(store.settings, profile, lambda message: print(f"[gameday] {message}", flush=True))
    print("\n" + gameday.scorecard_text(report))

    assert report.counted.lost == []  # every 202 became an order record
    assert report.counted.duplicated == {}  # and none twice
    assert [f.name for f in report.faults] == list(profile.faults)
    not_recovered = [(f.name, f.detail) for f in report.faults if not f.ok]
    assert not_recovered == []
    slow = {f.name: f.recovery_seconds for f in report.faults if (f.recovery_seconds or 0) > RECOVERY_BOUND_SECONDS}
    assert slow == {}
    assert report.unexpected_dlq == {}  # the poison message's DLQ gained 1, every other DLQ nothing
    assert report.expected_dlq == {"Messaging/NotificationQueue/Dlq": 1}
    rate, outside = report.success_rate_outside_faults()
    assert outside > 0
    assert rate >= OUTSIDE_SUCCESS_RATE, f"{rate:.3%} of {outside} requests outside the fault windows"
    assert report.counted.accepted >= profile.orders * 0.8  # the load did run (a web order may give up during a fault)
