"""What `make bench` reports, kept apart from what it measures: the goals of issue 10, the table rows,
docs/benchmarks.md, the machine-readable history (docs/benchmarks.json) and the PNG charts.

A run is one JSON record (a plain dict: `figures` in base units, `details`, `notes`, latency `samples`),
so everything here is a pure function of records: unit tests check a goal met / not met, the markdown
and the history without measuring anything. Goals live here, never in timed tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Record = dict[str, Any]

LATEST_START, LATEST_END = "<!-- bench:latest -->", "<!-- /bench:latest -->"
HISTORY_MARK = "<!-- bench:history -->"
LATENCY_CHART = "bench-latency.png"
HISTORY_CHART = "bench-history.png"


# --- formatting ----------------------------------------------------------------------------------


def ratio(value: float) -> str:
    return f"{value:.1f}x"


def seconds(value: float) -> str:
    return f"{value:.1f} s"


def minutes(value: float) -> str:
    whole = round(value)
    return f"{whole // 60} min {whole % 60:02d} s"


def milliseconds(value: float) -> str:
    return f"{value:.0f} ms"


def per_second(value: float) -> str:
    return f"{value:.1f} orders/s"


def gibibytes(value: float) -> str:
    return f"{value:.2f} GiB"


# --- goals ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    """A limit a figure must stay under (`at_most`) or reach (not `at_most`); `strict` makes it < / >."""

    limit: float
    at_most: bool = True
    strict: bool = False

    def met(self, value: float) -> bool:
        if self.at_most:
            return value < self.limit if self.strict else value <= self.limit
        return value > self.limit if self.strict else value >= self.limit

    def miss(self, value: float) -> str:
        """By how much a missed goal is missed, relative to the limit ("60% over", "63% short")."""
        if self.met(value):
            return ""
        share = abs(value - self.limit) / self.limit * 100 if self.limit else float("inf")
        return f"{share:.0f}% {'over' if self.at_most else 'short'}"


@dataclass(frozen=True)
class Check:
    """One figure of a run against one goal; `goal_text` is how the issue states the goal."""

    figure: str
    goal: Goal
    show: Callable[[float], str]
    goal_text: str


@dataclass(frozen=True)
class RowSpec:
    """One row of issue 10's table: what is measured and the checks it must pass (all of them)."""

    key: str
    what: str
    checks: tuple[Check, ...]


ROWS: tuple[RowSpec, ...] = (
    RowSpec(
        "synth_same",
        "full-app synth, same `cdk.out` again (ratio to the one-queue floor)",
        (Check("synth_same_ratio", Goal(1.5), ratio, "<= 1.5x"),),
    ),
    RowSpec(
        "synth_fresh",
        "full-app synth into a fresh `cdk.out` (ratio to the floor)",
        (Check("synth_fresh_ratio", Goal(2.0), ratio, "<= 2.0x"),),
    ),
    RowSpec(
        "suite",
        "`pytest tests/unit tests/infra` (ratio to the floor)",
        (Check("suite_ratio", Goal(12.0), ratio, "<= 12x"),),
    ),
    RowSpec(
        "clean_clone",
        "clean clone `make test`, install included",
        (Check("clean_clone_s", Goal(360.0), minutes, "<= 6 min"),),
    ),
    RowSpec(
        "imports",
        "cold import of a Lambda handler (the slowest)",
        (Check("import_max_ms", Goal(250.0), milliseconds, "<= 250 ms"),),
    ),
    RowSpec(
        "local_first",
        "first `make local` after install (fresh emulator)",
        (Check("local_first_s", Goal(60.0), seconds, "<= 60 s"),),
    ),
    RowSpec(
        "local_again",
        "`make local` again, everything up",
        (Check("local_again_s", Goal(25.0), seconds, "<= 25 s"),),
    ),
    RowSpec(
        "cold_orders",
        "first 100 orders, no worker warm, 8 clients: p95 POST -> recorded",
        (Check("cold_p95_s", Goal(3.0), seconds, "<= 3 s"),),
    ),
    RowSpec(
        "warm_orders",
        "300 orders, 8 clients, warm: throughput / p95 POST -> recorded",
        (
            Check("warm_orders_per_s", Goal(40.0, at_most=False), per_second, ">= 40 orders/s"),
            Check("warm_p95_s", Goal(1.0), seconds, "<= 1 s"),
        ),
    ),
    RowSpec(
        "memory",
        "peak RSS of the local cloud during the 300-order run",
        (Check("peak_rss_gib", Goal(3.0, strict=True), gibibytes, "< 3 GiB"),),
    ),
)


@dataclass(frozen=True)
class RowOutcome:
    """A row as reported: `met` is None when the row was not measured (skipped or failed)."""

    what: str
    measured: str
    goal: str
    met: bool | None
    miss: str = ""

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "n/a"
        return "yes" if self.met else f"no ({self.miss})"


def evaluate(record: Record, spec: RowSpec) -> RowOutcome:
    """The row's figures against its goals; the note says why a figure is missing."""
    figures: dict[str, float] = record.get("figures", {})
    goal = " / ".join(check.goal_text for check in spec.checks)
    missing = [check for check in spec.checks if check.figure not in figures]
    if missing:
        note = record.get("notes", {}).get(spec.key, "not measured")
        return RowOutcome(spec.what, f"not measured: {note}", goal, None)
    values = [figures[check.figure] for check in spec.checks]
    measured = " / ".join(check.show(value) for check, value in zip(spec.checks, values, strict=True))
    detail = record.get("details", {}).get(spec.key)
    if detail:
        measured += f" ({detail})"
    misses = [check.goal.miss(value) for check, value in zip(spec.checks, values, strict=True)]
    met = not any(misses)
    return RowOutcome(spec.what, measured, goal, met, ", ".join(m for m in misses if m))


def evaluate_all(record: Record) -> list[RowOutcome]:
    return [evaluate(record, spec) for spec in ROWS]


def goals_met(record: Record) -> tuple[int, int]:
    """(rows meeting their goals, rows measured)."""
    outcomes = [o for o in evaluate_all(record) if o.met is not None]
    return sum(bool(o.met) for o in outcomes), len(outcomes)


# --- docs/benchmarks.md ----------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def latest_section(record: Record, charts: Sequence[str] = ()) -> str:
    """The part of docs/benchmarks.md between the latest-run markers."""
    met, measured = goals_met(record)
    commit = f", commit `{record['commit']}`" if record.get("commit") else ""
    lines = [LATEST_START, f"Run on {record['date']}{commit}: {met} of {measured} measured goals met.", ""]
    lines += ["| row | measured | goal | met |", "|---|---|---|---|"]
    lines += [
        f"| {_cell(o.what)} | {_cell(o.measured)} | {_cell(o.goal)} | {o.verdict} |" for o in evaluate_all(record)
    ]
    imports = record.get("imports") or {}
    if imports.get("per_handler_ms"):
        lines += ["", f"Cold import per handler ({_cell(imports.get('how', ''))}):", ""]
        lines += ["| handler module | median |", "|---|---|"]
        lines += [f"| `{name}` | {ms:.0f} ms |" for name, ms in sorted(imports["per_handler_ms"].items())]
    if charts:
        lines += [""] + [f"![{Path(chart).stem}]({chart})" for chart in charts]
    lines += ["", "| machine | |", "|---|---|"]
    lines += [f"| {key} | {_cell(str(value))} |" for key, value in record.get("machine", {}).items()]
    lines.append(LATEST_END)
    return "\n".join(lines)


HISTORY_COLUMNS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("floor", "synth_floor_s", seconds),
    ("synth same", "synth_same_ratio", ratio),
    ("synth fresh", "synth_fresh_ratio", ratio),
    ("suite", "suite_s", seconds),
    ("clean clone", "clean_clone_s", minutes),
    ("import max", "import_max_ms", milliseconds),
    ("local first", "local_first_s", seconds),
    ("local again", "local_again_s", seconds),
    ("cold p95", "cold_p95_s", seconds),
    ("warm", "warm_orders_per_s", per_second),
    ("warm p95", "warm_p95_s", seconds),
    ("peak RSS", "peak_rss_gib", gibibytes),
)


def history_header() -> str:
    names = ["date", "commit", "CPU x cores", *(name for name, _, _ in HISTORY_COLUMNS), "goals met"]
    return "| " + " | ".join(names) + " |\n|" + "---|" * len(names)


def history_row(record: Record) -> str:
    figures = record.get("figures", {})
    machine = record.get("machine", {})
    cells = [record["date"], record.get("commit", "") or "-", f"{machine.get('CPU', '?')} x{machine.get('cores', '?')}"]
    cells += [show(figures[key]) if key in figures else "-" for _, key, show in HISTORY_COLUMNS]
    met, measured = goals_met(record)
    cells.append(f"{met}/{measured}")
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


TEMPLATE = f"""# Benchmarks

Measured by `make bench` (`python -m scripts.bench`) in one run on one machine: every row of
issue 10's table, against its goal. This is a benchmark, not a test: nothing fails when a number gets
worse. Every run is also appended to `docs/benchmarks.json`, from which the charts are drawn.

How each row is measured (`python -m scripts.bench --help` lists the flags that skip them):

- **Synth ratios**: the full app (`cdk synth -c stage=sandbox -q -o DIR`) against a CDK app with a
  single SQS queue, the floor any CDK-in-Python app pays (Python start, the jsii Node process, the
  CLI); medians, each full synth run next to a floor synth so background load affects both alike.
  *Same* `cdk.out`: into a directory one untimed synth warmed. *Fresh*: a new directory each run, with
  the pip-result cache under `~/.cache/loosely-coupled-aws/pip-bundles` as it is (a fresh clone on
  the same machine).
- **Suite**: `pytest tests/unit tests/infra -q` wall time, as a ratio to the floor.
- **Clean clone**: `git clone` of the committed HEAD into a temp dir, then `CI=true make test` there
  (venvs, npm, lint, every test; the machine's pip, npm and mypy caches stay). This checkout's local
  cloud is stopped first: the e2e tests start their own on the same ports.
- **Cold import**: `python -X importtime -c "import <context>.handlers.<entry>"` in a fresh
  interpreter, PYTHONDONTWRITEBYTECODE=1, on a copy of the code asset's layout without bytecode; with
  MiniStack's interpreter (`.venv-cloud`, which plays the Lambda runtime and its boto3) and the
  dependency layer of the local assembly on the path when there is one this interpreter can load.
- **`make local`**: `python -m localcloud up`, wall time; its report's deploy/scenario marks alongside.
  First: after `localcloud down` (a fresh emulator; `.localcloud/cdk.out` stays). Again: right after.
- **Orders**: POST /orders through the REST API with the API key and an Idempotency-Key (reused when
  a 429, 503 or 409 is retried); latency runs from the first attempt until a poll of the orders table
  (every 50 ms) finds the order's record, through API -> Lambda -> SNS -> SQS -> fulfilment ->
  DynamoDB. Cold: the first orders right after `localcloud down && localcloud up --no-scenario`, so
  no order has warmed a worker. Warm: the orders right after the cold ones.
- **Memory**: during the warm run, every 0.25 s, the summed VmRSS of MiniStack and its descendants
  (the Lambda workers), the four tier processes and redis-server (the processes of localcloud's pid
  files); shared pages count once per process, so this is an upper bound.

## Latest run

{LATEST_START}
{LATEST_END}

## History

{HISTORY_MARK}
{history_header()}
"""


def render_document(existing: str, record: Record, charts: Sequence[str] = ()) -> str:
    """docs/benchmarks.md with the latest section replaced and the record's history row on top.
    A document without the markers (or with an older layout) starts again from the template."""
    text = existing if LATEST_START in existing and LATEST_END in existing and HISTORY_MARK in existing else TEMPLATE
    start, end = text.index(LATEST_START), text.index(LATEST_END) + len(LATEST_END)
    text = text[:start] + latest_section(record, charts) + text[end:]
    return _insert_history_row(text, history_row(record))


def _insert_history_row(text: str, row: str) -> str:
    """The row goes first under the header of the table that follows the history marker (the marker
    sits above the table: a comment line inside a markdown table would end it)."""
    separator = text.index("\n|---", text.index(HISTORY_MARK)) + 1
    line_end = text.find("\n", separator)
    if line_end == -1:
        return f"{text}\n{row}\n"
    return text[: line_end + 1] + row + "\n" + text[line_end + 1 :]


# --- docs/benchmarks.json --------------------------------------------------------------------------


def append_history(history: list[Record], record: Record) -> list[Record]:
    """The history with `record` appended. Only the newest record keeps its latency samples (a few
    hundred numbers per run; the charts draw only the latest run's distributions)."""
    older = [{key: value for key, value in old.items() if key != "samples"} for old in history]
    return [*older, record]


# --- stdout ----------------------------------------------------------------------------------------


def summary_table(record: Record) -> str:
    """The rows as aligned plain text, for the terminal."""
    outcomes = evaluate_all(record)
    rows = [("row", "measured", "goal", "met")] + [(o.what, o.measured, o.goal, o.verdict) for o in outcomes]
    widths = [min(max(len(row[i]) for row in rows), cap) for i, cap in enumerate((70, 80, 24, 16))]
    lines = ["  ".join(cell[:width].ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    met, measured = goals_met(record)
    return "\n".join([*lines, f"{met} of {measured} measured goals met ({record['date']})"])


# --- charts ----------------------------------------------------------------------------------------


def draw_charts(history: list[Record], directory: Path) -> list[Path]:
    """docs/bench-latency.png (the latest run's cold and warm order latencies as CDFs) and
    docs/bench-history.png (synth and suite times across runs). Needs matplotlib (the dev extras);
    raises ImportError without it, so the caller can say so and still write the report."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a CI machine or a server
    from matplotlib import pyplot

    written = []
    latest = history[-1]
    samples = latest.get("samples", {})
    if any(samples.get(name) for name in ("cold_latency_s", "warm_latency_s")):
        written.append(_latency_chart(pyplot, latest, directory / LATENCY_CHART))
    if any(key in record.get("figures", {}) for record in history for key in _HISTORY_SERIES):
        written.append(_history_chart(pyplot, history, directory / HISTORY_CHART))
    return written


def cdf_points(values: Sequence[float]) -> tuple[list[float], list[float]]:
    """Sorted values and the share of values at or below each: the empirical CDF's steps."""
    ordered = sorted(values)
    return ordered, [(i + 1) / len(ordered) for i in range(len(ordered))]


def _latency_chart(pyplot: Any, record: Record, path: Path) -> Path:
    figure, axes = pyplot.subplots(figsize=(8, 4.5))
    runs = (("cold_latency_s", "cold: first orders, no worker warm", 3.0), ("warm_latency_s", "warm", 1.0))
    for name, label, goal in runs:
        values = record["samples"].get(name) or []
        if not values:
            continue
        xs, ys = cdf_points(values)
        (line,) = axes.step(xs, ys, where="post", label=f"{label} (n={len(values)})")
        axes.axvline(goal, color=line.get_color(), linestyle=":", linewidth=1, label=f"{label}: p95 goal {goal:g} s")
    axes.axhline(0.95, color="grey", linestyle="--", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_xlabel("POST /orders -> order recorded in DynamoDB (s, log scale)")
    axes.set_ylabel("share of orders")
    axes.set_title(f"Order latency, {record['date']}")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


_HISTORY_SERIES = ("synth_floor_s", "synth_same_s", "synth_fresh_s", "suite_s")


def _history_chart(pyplot: Any, history: list[Record], path: Path) -> Path:
    figure, (synth_axes, suite_axes) = pyplot.subplots(2, 1, figsize=(9, 6), sharex=True)
    positions = list(range(len(history)))
    for key, label in (
        ("synth_same_s", "full app, same cdk.out"),
        ("synth_fresh_s", "full app, fresh cdk.out"),
        ("synth_floor_s", "one-queue floor"),
    ):
        _plot_series(synth_axes, history, key, label)
    synth_axes.set_ylabel("synth (s, median)")
    synth_axes.legend(fontsize="small")
    _plot_series(suite_axes, history, "suite_s", "pytest tests/unit tests/infra")
    suite_axes.set_ylabel("suite (s)")
    suite_axes.legend(fontsize="small")
    for axes in (synth_axes, suite_axes):
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
    suite_axes.set_xticks(positions, [str(r["date"]).removesuffix(" UTC") for r in history], rotation=45, ha="right")
    synth_axes.set_title("Synth and suite times across bench runs")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def _plot_series(axes: Any, history: list[Record], key: str, label: str) -> None:
    points = [(i, r["figures"][key]) for i, r in enumerate(history) if key in r.get("figures", {})]
    if points:
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
