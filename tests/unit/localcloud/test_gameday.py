"""The game day's arithmetic (localcloud/gameday.py): samples -> fault windows, success rates and
buckets; intended/accepted/recorded orders -> lost and duplicated; the scorecard table."""

from __future__ import annotations

import dataclasses

import pytest

from localcloud import gameday
from localcloud.gameday import FaultOutcome, Intent, Recorded, Report, Sample


def ok(t: float, latency: float = 0.1, channel: str = "api") -> Sample:
    return Sample(t, channel, "POST /orders", 202, latency)


def failed(t: float, status: int = 503, latency: float = 0.1) -> Sample:
    return Sample(t, "web", "POST /orders", status, latency)


def a_report(**changes) -> Report:
    samples = [ok(1), ok(2), failed(10.5), failed(11, 0), ok(12), ok(30), ok(31)]
    faults = [
        FaultOutcome("kill web instance", "killed i-1", 10.0, 20.0, True),
        FaultOutcome("poison message", "in Messaging/NotificationQueue/Dlq", 25.0, None, False, timeout=3.0),
    ]
    counted = gameday.tally([Intent("gd-r-1", "api", 1.0, "o-1", 1.2)], [Recorded("gd-r-1", "o-1")])
    report = Report(
        run_id="r",
        profile=gameday.PROFILES["short"],
        started_at="2026-12-01 12:00 UTC",
        duration=40.0,
        samples=samples,
        faults=faults,
        counted=counted,
        dlq_deltas={"Messaging/NotificationQueue/Dlq": 1, "Messaging/FulfilmentQueue/Dlq": 0},
        expected_dlq={"Messaging/NotificationQueue/Dlq": 1},
    )
    return dataclasses.replace(report, **changes)


def test_a_sample_is_ok_only_with_a_2xx():
    assert [Sample(0, "api", "x", status, 0).ok for status in (200, 202, 299, 300, 401, 503, 0)] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert gameday.percentile(values, 95) == 95.0
    assert gameday.percentile(values, 100) == 100.0
    assert gameday.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert gameday.percentile([], 95) == 0.0


def test_window_counts_requests_and_failures_sent_inside_it():
    samples = [ok(9.9), failed(10), ok(15), failed(20), failed(20.1)]
    assert gameday.window_counts(samples, 10, 20) == (3, 2)


def test_success_rate_outside_ignores_every_window():
    samples = [ok(1), failed(2), ok(5), failed(11), failed(12), ok(30)]
    rate, outside = gameday.success_rate_outside(samples, [(10, 15)])
    assert (rate, outside) == (pytest.approx(3 / 4), 4)
    assert gameday.success_rate_outside([failed(11)], [(10, 15)]) == (1.0, 0)


def test_buckets_keep_empty_buckets_and_compute_rate_and_p95():
    samples = [ok(0.5, 0.1), failed(1, latency=0.3), ok(4.9, 0.2), ok(12, 1.0)]
    found = gameday.buckets(samples, 5)
    assert [(b.start, b.requests, b.failed) for b in found] == [(0, 3, 1), (5, 0, 0), (10, 1, 0)]
    assert found[0].success_rate == pytest.approx(2 / 3)
    assert found[0].p95_latency == 0.3
    assert found[1].success_rate == 1.0  # nothing sent: nothing failed
    assert gameday.buckets([]) == []


@pytest.mark.parametrize("n", [0, 1, 2, 99, 100, 101, 998, 5000, 9999])
def test_a_web_cart_signature_gives_its_order_number_back(n):
    cart = [{"sku": sku, "quantity": quantity, "unit_price": 1} for sku, quantity in gameday.signature(n).items()]
    assert all(1 <= quantity <= 100 for quantity in gameday.signature(n).values())
    assert gameday.signature_index(cart) == n


def test_carts_that_are_no_game_day_signature_are_not_counted():
    tea, mug = gameday.WEB_SKUS
    assert gameday.signature_index([{"sku": tea, "quantity": 2}]) is None  # one line missing
    assert gameday.signature_index([{"sku": tea, "quantity": 2}, {"sku": "SKU-POT-003", "quantity": 1}]) is None
    assert gameday.signature_index([{"sku": tea, "quantity": 1}, {"sku": tea, "quantity": 1}]) is None
    assert gameday.signature_index([{"sku": tea, "quantity": 101}, {"sku": mug, "quantity": 1}]) is None
    # The scenario's cart (2 teas, 1 mug) decodes to 1, an odd number: web orders of the game day are even.
    assert gameday.signature_index([{"sku": tea, "quantity": 2}, {"sku": mug, "quantity": 1}]) == 1


def test_tally_counts_lost_duplicated_and_unacknowledged_orders():
    intents = [
        Intent("gd-r-1", "api", 1.0, "o-1", 1.1),  # recorded once
        Intent("gd-r-3", "api", 2.0, "o-3", 2.1),  # accepted, never recorded: lost
        Intent("web-0", "web", 3.0, "o-5", 3.2),  # recorded three times under its signature
        Intent("web-2", "web", 4.0),  # no 202, yet recorded: the answer was lost
        Intent("gd-r-5", "api", 5.0),  # never accepted, never recorded
    ]
    recorded = [
        Recorded("gd-r-1", "o-1"),
        Recorded("web-0", "o-5"),
        Recorded("web-0", "o-6"),
        Recorded("web-0", "o-7"),
        Recorded("web-2", "o-8"),
        Recorded("gd-r-1", "o-1"),  # the same record seen twice is no duplicate
    ]
    counted = gameday.tally(intents, recorded)
    assert (counted.intended, counted.accepted, counted.recorded) == (5, 3, 5)
    assert counted.lost == ["o-3"]
    assert counted.duplicated == {"web-0": 3}
    assert counted.extra_orders == 2
    assert counted.unacknowledged == ["web-2"]


def test_nothing_lost_or_duplicated_when_every_order_is_recorded_once():
    intents = [Intent(f"gd-r-{n}", "api", n, f"o-{n}", n) for n in range(10)]
    counted = gameday.tally(intents, [Recorded(i.key, str(i.order_id)) for i in intents])
    assert (counted.lost, counted.duplicated, counted.unacknowledged) == ([], {}, [])


def test_attribute_puts_requests_losses_and_duplicates_into_the_fault_windows():
    samples = [ok(5), failed(11), ok(12), failed(19), ok(40)]
    intents = [Intent("gd-r-1", "api", 10.5, "o-1", 11.0), Intent("web-0", "web", 12.0, "o-2", 12.5)]
    counted = gameday.tally(intents, [Recorded("web-0", "o-2"), Recorded("web-0", "o-3")])
    outcomes = [FaultOutcome("a", "", 10.0, 20.0, True), FaultOutcome("b", "", 30.0, None, False, timeout=5.0)]
    gameday.attribute(outcomes, samples, intents, counted)
    assert [(o.requests, o.failed, o.lost, o.duplicated) for o in outcomes] == [(3, 2, 1, 1), (0, 0, 0, 0)]
    assert outcomes[1].window == (30.0, 35.0)  # not recovered: the window runs to the timeout
    assert outcomes[0].recovery_seconds == 10.0 and outcomes[1].recovery_seconds is None


def test_report_passes_only_without_lost_or_duplicated_orders():
    assert a_report().passed
    lost = gameday.tally([Intent("gd-r-1", "api", 1.0, "o-1", 1.2)], [])
    assert not a_report(counted=lost).passed
    doubled = gameday.tally(
        [Intent("web-0", "web", 1.0, "o-1", 1.2)], [Recorded("web-0", "o-1"), Recorded("web-0", "o-2")]
    )
    assert not a_report(counted=doubled).passed


def test_unexpected_dlq_names_every_queue_off_its_expectation():
    assert a_report().unexpected_dlq == {}
    extra = {"Messaging/NotificationQueue/Dlq": 1, "Messaging/FulfilmentQueue/Dlq": 2}
    assert a_report(dlq_deltas=extra).unexpected_dlq == {"Messaging/FulfilmentQueue/Dlq": 2}
    assert a_report(dlq_deltas={}).unexpected_dlq == {"Messaging/NotificationQueue/Dlq": 0}  # the poison never came


def test_scorecard_markdown_has_a_row_per_fault_and_a_whole_run_row():
    report = a_report()
    gameday.attribute(report.faults, report.samples, [], report.counted)
    lines = gameday.scorecard_markdown(report).splitlines()
    assert lines[0].startswith("| fault | injected at (s) | requests | failed | recovered after (s) |")
    assert len(lines) == 2 + len(report.faults) + 1
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert cells[0][:8] == ["kill web instance", "10.0", "3", "2", "10.0", "0", "0", "0"]
    assert cells[0][8] == "ok: killed i-1"
    assert cells[1][4] == "not recovered" and cells[1][8].startswith("FAILED")
    assert cells[2][:8] == ["whole run", "-", "7", "2", "-", "0", "0", "1"]
    assert all(len(row) == len(gameday.SCORECARD_HEADER) for row in cells)


def test_scorecard_escapes_pipes_in_details():
    report = a_report(faults=[FaultOutcome("f", "a | b", 1.0, 2.0, True)])
    row = gameday.scorecard_markdown(report).splitlines()[2]
    assert "a \\| b" in row


def test_scorecard_text_reports_the_success_rate_outside_the_faults():
    text = gameday.scorecard_text(a_report())
    # Outside [10, 20] and [25, 28]: 1, 2, 30, 31 -> all four ok.
    assert "100.00 % of 4 requests" in text
    assert text.splitlines()[0].split()[0] == "fault"


def test_every_profile_names_known_faults_only():
    for profile in gameday.PROFILES.values():
        assert set(profile.faults) <= set(gameday.FAULTS)
        assert profile.orders <= gameday.SIGNATURE_BASE**2
    assert gameday.PROFILES["full"].orders == 1000
    assert gameday.PROFILES["short"].orders < gameday.PROFILES["full"].orders
    with pytest.raises(ValueError, match="unknown faults"):
        gameday.build_faults(dataclasses.replace(gameday.PROFILES["short"], faults=("unplug the moon",)))
    assert [f.name for f in gameday.build_faults(gameday.PROFILES["full"])] == list(gameday.FAULTS)
