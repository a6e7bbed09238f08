"""Game day: a bounded load through the web ALB and the API while faults are injected one after another.

    python -m scripts.gameday [--profile full|short] [--orders N] [--rate R] [--gap S] [--no-write]

Brings the local cloud up (`localcloud.cli.up`: a running one is reused), runs localcloud/gameday.py,
prints the scorecard and writes docs/gameday.md (the scorecard, how to read it, date and machine) and
docs/gameday.png (success rate and p95 latency per 5 s, the fault windows marked). Exits 1 when an
order was lost or duplicated.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from localcloud import gameday
from localcloud.gameday import Report
from scripts import bench

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REPORT = "gameday.md"
CHART = "gameday.png"


# --- the document ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """The machine the game day ran on, named as `make bench` names it."""
    return bench.host()


HOW_TO_READ = """\
How to read it:

- **requests / failed**: HTTP requests of the load (web ALB and API) sent between the injection and
  the recovery, and how many of them did not get a 2xx (an answer of 0 is no answer at all). A failed
  request is what a client saw; the load retries as a client would (the API with the same
  Idempotency-Key, the shopper in the same session), so a failed request is not a lost order.
- **recovered after**: seconds from the injection until the fault's own check passed (the killed
  instances replaced, redis-server answering and every web instance's health check `ok`, the consumer
  enabled and its backlog worked off, every flaky checkout finished, the poison message in its DLQ)
  *and* both Auto Scaling groups at their desired capacity with every target `healthy`. The game day
  only injects and watches: the emulator's supervisor replaces instances as Auto Scaling would.
- **orders lost**: orders answered with 202 that are not in the orders table once the queues have
  drained, counted for the fault in whose window the 202 came. Must be 0.
- **orders duplicated**: extra orders in the table for one intended order (an API order's customer id
  `gd-<run>-<n>`, a web order's cart, whose quantities encode n). Must be 0.
- **DLQ messages**: what the dead-letter queues gained during the fault; on the whole-run row, over
  the run. Only the poison message may land there (it is deleted after counting).
"""


def render_document(report: Report, machine_info: dict[str, str], chart: str | None = CHART) -> str:
    profile = report.profile
    rate, outside = report.success_rate_outside_faults()
    unexpected = report.unexpected_dlq
    verdict = "passed" if report.passed and not unexpected else "FAILED"
    lines = [
        "# Game day",
        "",
        f"`make gameday` on {report.started_at} (run `{report.run_id}`, profile `{profile.name}`): "
        f"{profile.orders} orders at {profile.rate:g} orders/s, half through the web ALB as signed-in "
        f"shoppers, half through the API with an Idempotency-Key; faults {profile.gap:g} s apart after "
        f"{profile.warmup:g} s of load. Load and faults took {report.duration:.0f} s. Verdict: **{verdict}** "
        f"({report.lost} lost, {report.duplicated} duplicated).",
        "",
        gameday.scorecard_markdown(report),
        "",
        f"Success rate outside the fault windows: {rate * 100:.2f} % of {outside} requests. "
        f"{len(report.counted.unacknowledged)} orders were recorded although their client saw no 202 "
        "(placed, but the answer was lost: a retry with the same key finds the same order).",
        "",
    ]
    if unexpected:
        lines += [f"Unexpected dead-letter messages: {unexpected}.", ""]
    lines += [f"- {note}" for note in report.notes]
    if report.notes:
        lines.append("")
    if chart:
        lines += [f"![Success rate and p95 latency during the game day]({chart})", ""]
    lines += [HOW_TO_READ, "Machine: " + ", ".join(f"{k} {v}" for k, v in machine_info.items()) + ".", ""]
    return "\n".join(lines)


# --- the chart ----------------------------------------------------------------------------------------


def draw_chart(report: Report, path: Path) -> Path:
    """Success rate per 5 s bucket (top) and p95 latency (bottom) over the run, each fault's window
    shaded and labelled. Needs matplotlib (the dev extras)."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    from matplotlib import pyplot

    series = gameday.buckets(report.samples)
    figure, (rate_axes, latency_axes) = pyplot.subplots(2, 1, figsize=(10, 6), sharex=True)
    starts = [b.start for b in series]
    rate_axes.step(starts, [b.success_rate * 100 for b in series], where="post", label="success rate")
    latency_axes.step(starts, [b.p95_latency * 1000 for b in series], where="post", color="tab:orange", label="p95")
    for fault in report.faults:
        start, end = fault.window
        for axes in (rate_axes, latency_axes):
            axes.axvspan(start, end, color="tab:red" if not fault.ok else "tab:grey", alpha=0.15)
            axes.axvline(start, color="tab:red", linewidth=0.8)
        rate_axes.annotate(
            fault.name, (start, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right", fontsize=7
        )
    rate_axes.set_ylabel(f"requests 2xx per {gameday.BUCKET_SECONDS:g} s (%)")
    rate_axes.set_ylim(0, 105)
    latency_axes.set_ylabel("p95 latency (ms)")
    latency_axes.set_xlabel("seconds since the game day started")
    latency_axes.set_ylim(bottom=0)
    for axes in (rate_axes, latency_axes):
        axes.grid(True, alpha=0.3)
    rate_axes.set_title(f"Game day {report.started_at}: {report.profile.orders} orders, {len(report.faults)} faults")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def write_outputs(report: Report, directory: Path, machine_info: dict[str, str], say=print) -> list[Path]:
    """docs/gameday.png (when matplotlib is installed) and docs/gameday.md."""
    written = []
    chart: str | None = CHART
    try:
        written.append(draw_chart(report, directory / CHART))
    except ImportError as error:
        say(f"chart not drawn ({error}): `make setup` installs matplotlib (dev extras)")
        chart = None
    document = directory / REPORT
    document.write_text(render_document(report, machine_info, chart))
    written.append(document)
    return written


# --- main ----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profile", choices=sorted(gameday.PROFILES), default="full")
    parser.add_argument("--orders", type=int, help="orders in all (the profile's by default)")
    parser.add_argument("--rate", type=float, help="orders per second, both channels")
    parser.add_argument("--gap", type=float, help="seconds between a fault's recovery and the next fault")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    return parser.parse_args(argv)


def profile_of(args: argparse.Namespace) -> gameday.Profile:
    changes: dict[str, Any] = {k: v for k in ("orders", "rate", "gap") if (v := getattr(args, k)) is not None}
    if changes.get("orders", 1) < 1 or changes.get("rate", 1) <= 0 or changes.get("gap", 0) < 0:
        raise SystemExit("--orders must be >= 1, --rate > 0, --gap >= 0")
    return dataclasses.replace(gameday.PROFILES[args.profile], **changes)


def main(argv: list[str] | None = None) -> int:
    from localcloud import cli
    from localcloud.settings import Settings

    args = parse_args(argv)
    profile = profile_of(args)
    settings = Settings.from_env()
    say = cli.Progress()
    cli.up(settings, say)
    report = gameday.run(settings, profile, say)
    print(gameday.scorecard_text(report), flush=True)
    if not args.no_write:
        written = write_outputs(report, DOCS, machine(), say)
        say("written: " + ", ".join(str(p.relative_to(ROOT)) for p in written))
    if not report.passed:
        print(f"game day FAILED: {report.lost} orders lost, {report.duplicated} duplicated", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
