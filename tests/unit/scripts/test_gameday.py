"""What `make gameday` writes (scripts/gameday.py): docs/gameday.md and the chart, into tmp_path."""

from __future__ import annotations

import dataclasses

import pytest

from localcloud import gameday
from localcloud.gameday import FaultOutcome, Intent, Recorded, Report, Sample
from scripts import gameday as script

MACHINE = {"CPU": "Test CPU", "cores": "2"}


def a_report(**changes) -> Report:
    samples = [
        Sample(t / 2, "api" if t % 2 else "web", "POST /orders", 503 if 20 <= t < 24 else 202, 0.05 + t / 1000)
        for t in range(80)
    ]
    intents = [Intent("gd-r-1", "api", 1.0, "o-1", 1.1)]
    report = Report(
        run_id="abc12345",
        profile=gameday.PROFILES["short"],
        started_at="2026-12-01 12:00 UTC",
        duration=40.0,
        samples=samples,
        faults=[
            FaultOutcome("kill web instance", "killed i-1 (us-east-1a, :8083)", 9.0, 15.0, True),
            FaultOutcome("poison message", "in Messaging/NotificationQueue/Dlq", 25.0, 31.0, True, dlq_delta=1),
        ],
        counted=gameday.tally(intents, [Recorded("gd-r-1", "o-1")]),
        dlq_deltas={"Messaging/NotificationQueue/Dlq": 1},
        expected_dlq={"Messaging/NotificationQueue/Dlq": 1},
        notes=["the poison message was deleted from its DLQ after counting"],
    )
    gameday.attribute(report.faults, report.samples, intents, report.counted)
    return dataclasses.replace(report, **changes)


def test_the_document_has_the_scorecard_the_chart_the_reading_guide_and_the_machine():
    text = script.render_document(a_report(), MACHINE)
    assert text.startswith("# Game day\n")
    assert "Verdict: **passed**" in text
    assert gameday.scorecard_markdown(a_report()) in text
    assert "![Success rate and p95 latency during the game day](gameday.png)" in text
    assert "How to read it:" in text and "**orders lost**" in text
    assert "Machine: CPU Test CPU, cores 2." in text
    assert "2026-12-01 12:00 UTC" in text and "`abc12345`" in text
    assert "- the poison message was deleted from its DLQ after counting" in text


def test_a_lost_order_or_a_stray_dead_letter_makes_the_verdict_failed():
    lost = gameday.tally([Intent("gd-r-1", "api", 1.0, "o-1", 1.1)], [])
    assert "Verdict: **FAILED** (1 lost, 0 duplicated)" in script.render_document(a_report(counted=lost), MACHINE)
    stray = a_report(dlq_deltas={"Messaging/NotificationQueue/Dlq": 1, "Messaging/FulfilmentQueue/Dlq": 1})
    text = script.render_document(stray, MACHINE)
    assert "Verdict: **FAILED**" in text
    assert "Unexpected dead-letter messages: {'Messaging/FulfilmentQueue/Dlq': 1}" in text


def test_without_a_chart_the_document_does_not_link_one():
    assert "gameday.png" not in script.render_document(a_report(), MACHINE, chart=None)


def test_write_outputs_writes_the_png_and_the_markdown(tmp_path):
    pytest.importorskip("matplotlib")
    written = script.write_outputs(a_report(), tmp_path, MACHINE, say=lambda message: None)
    assert sorted(p.name for p in written) == ["gameday.md", "gameday.png"]
    png = (tmp_path / "gameday.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert (tmp_path / "gameday.md").read_text() == script.render_document(a_report(), MACHINE)


def test_command_line_overrides_the_profile():
    profile = script.profile_of(script.parse_args(["--profile", "short", "--orders", "40", "--gap", "1"]))
    assert (profile.name, profile.orders, profile.gap) == ("short", 40, 1.0)
    assert profile.rate == gameday.PROFILES["short"].rate
    assert script.profile_of(script.parse_args([])) == gameday.PROFILES["full"]
    with pytest.raises(SystemExit):
        script.profile_of(script.parse_args(["--orders", "0"]))


def test_machine_names_cpu_cores_and_python():
    found = script.machine()
    assert {"CPU", "cores", "RAM", "OS", "Python"} <= set(found)
