"""The bench's pure parts: what it parses from localcloud and pytest, how it judges a figure against
issue 10's goals, what it writes. Nothing here is timed: performance goals live in the bench."""

from __future__ import annotations

import itertools
import os
import statistics
from pathlib import Path
from typing import Any

import pytest

from localcloud.settings import Settings
from scripts import bench, bench_report
from scripts.bench_report import Goal

UP_OUTPUT = """\
[   0.0s] MiniStack started at http://127.0.0.1:4566 (pid 4242, log .localcloud/ministack.log)
[  26.1s]   lc-local-data: CREATE_COMPLETE, 12/12 resources

local cloud report
  stacks:      11 deployed, all complete, 412 resources
  servers:     ministack started, redis started
  time:        deploy 26.0s, scenario 92.5s, total 120.3s
  orders:      22 placed (1 through the web ALB, 21 through the API; 1 repeated Idempotency-Key answered with the same order)
  MiniStack:   http://127.0.0.1:4566  (AWS_ENDPOINT_URL for the AWS CLI and SDKs)
"""


def history_rows(document: str) -> list[str]:
    """The rows of the history table (below its header and separator)."""
    lines = document.split(bench_report.HISTORY_MARK, 1)[1].strip().splitlines()[2:]
    return list(itertools.takewhile(lambda line: line.startswith("|"), lines))


def a_record(**figures: float) -> dict[str, Any]:
    return {
        "date": "2026-12-01 12:00 UTC",
        "commit": "abc1234567",
        "machine": {"CPU": "AMD EPYC", "cores": "2"},
        "figures": figures,
        "details": {},
        "notes": {},
        "samples": {},
    }


# --- what the bench parses ---------------------------------------------------------------------------


def test_the_report_time_line_of_localcloud_up_gives_each_mark():
    assert bench.parse_up_marks(UP_OUTPUT) == {"deploy": 26.0, "scenario": 92.5, "total": 120.3}


def test_up_without_the_scenario_reports_deploy_and_total_only():
    output = "local cloud report\n  time:        deploy 3.2s, total 4.0s\n"
    assert bench.parse_up_marks(output) == {"deploy": 3.2, "total": 4.0}


def test_a_failed_up_has_no_marks_and_its_failed_line_is_the_reason():
    output = (
        "[   1.0s] synthesizing\n[  40.2s] FAILED: stacks not complete: lc-local-api\n[  40.2s] logs: .localcloud/*.log"
    )
    assert bench.parse_up_marks(output) == {}
    assert bench._failure_of(output) == "stacks not complete: lc-local-api"


def test_pytest_summary_line_gives_outcomes_and_seconds():
    output = (
        "tests/e2e/test_load.py ....\n=========== 2 failed, 410 passed, 3 skipped in 382.12s (0:06:22) ===========\n"
    )
    assert bench.parse_pytest_summary(output) == ("2 failed, 410 passed, 3 skipped", 382.12)


def test_no_pytest_summary_when_make_test_stopped_before_pytest():
    assert bench.parse_pytest_summary("ruff check ...\nmake: *** [Makefile:62: lint-code] Error 1\n") is None


def test_the_import_time_of_the_handler_module_is_its_own_cumulative_line():
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       120 |        120 |   _io\n"
        "import time:      3000 |     410000 |     aws_lambda_powertools\n"
        "import time:      1500 |     612345 | orders.handlers.api\n"
    )
    assert bench.parse_import_time(stderr, "orders.handlers.api") == pytest.approx(612.345)
    with pytest.raises(ValueError):
        bench.parse_import_time(stderr, "orders.handlers.fulfilment")


# --- quantiles and goals ------------------------------------------------------------------------------


def test_quantile_interpolates_between_closest_ranks():
    assert bench.quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert bench.quantile([float(v) for v in range(1, 101)], 0.95) == pytest.approx(95.05)
    assert bench.quantile([7.0], 0.95) == 7.0


def test_quantile_agrees_with_statistics_inclusive_percentiles():
    values = [0.31, 0.12, 2.5, 0.9, 0.44, 1.7, 0.05, 0.66, 3.1, 0.2, 0.8]
    percentiles = statistics.quantiles(values, n=100, method="inclusive")
    assert bench.quantile(values, 0.95) == pytest.approx(percentiles[94])
    assert bench.quantile(values, 0.5) == pytest.approx(percentiles[49])


def test_quantile_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        bench.quantile([], 0.95)


def test_an_upper_limit_is_met_at_the_limit_and_missed_by_the_share_over_it():
    goal = Goal(1.5)
    assert goal.met(1.5)
    assert not goal.met(2.4)
    assert goal.miss(2.4) == "60% over"
    assert goal.miss(1.2) == ""


def test_a_lower_limit_is_missed_by_the_share_short_of_it():
    goal = Goal(40.0, at_most=False)
    assert goal.met(40.0)
    assert goal.miss(14.7) == "63% short"


def test_a_strict_limit_is_missed_at_the_limit():
    assert not Goal(3.0, strict=True).met(3.0)
    assert Goal(3.0, strict=True).met(2.99)


def _row(key: str) -> bench_report.RowSpec:
    return next(spec for spec in bench_report.ROWS if spec.key == key)


def test_every_row_of_the_issue_table_and_the_memory_goal_has_a_row():
    assert [spec.key for spec in bench_report.ROWS] == [
        "synth_same",
        "synth_fresh",
        "suite",
        "clean_clone",
        "imports",
        "local_first",
        "local_again",
        "cold_orders",
        "warm_orders",
        "memory",
    ]


def test_a_row_over_its_goal_is_not_met_and_says_by_how_much():
    record = a_record(synth_same_ratio=2.4)
    record["details"]["synth_same"] = "median 12.0 s vs floor 5.0 s, 3 runs"
    outcome = bench_report.evaluate(record, _row("synth_same"))
    assert outcome.met is False
    assert outcome.measured == "2.4x (median 12.0 s vs floor 5.0 s, 3 runs)"
    assert outcome.goal == "<= 1.5x"
    assert outcome.verdict == "no (60% over)"


def test_the_warm_row_is_met_only_when_throughput_and_p95_both_are():
    both = bench_report.evaluate(a_record(warm_orders_per_s=45.0, warm_p95_s=0.8), _row("warm_orders"))
    slow = bench_report.evaluate(a_record(warm_orders_per_s=14.7, warm_p95_s=0.9), _row("warm_orders"))
    assert both.met is True and both.verdict == "yes"
    assert both.measured == "45.0 orders/s / 0.8 s"
    assert slow.met is False and slow.verdict == "no (63% short)"


def test_a_row_without_its_figure_is_not_judged_and_shows_why():
    record = a_record()
    record["notes"]["clean_clone"] = "skipped (--skip-clean-clone)"
    outcome = bench_report.evaluate(record, _row("clean_clone"))
    assert outcome.met is None
    assert outcome.verdict == "n/a"
    assert outcome.measured == "not measured: skipped (--skip-clean-clone)"


def test_goals_met_counts_measured_rows_only():
    record = a_record(synth_same_ratio=1.2, synth_fresh_ratio=4.0, peak_rss_gib=1.1)
    assert bench_report.goals_met(record) == (2, 3)


def test_the_clean_clone_time_is_shown_in_minutes():
    outcome = bench_report.evaluate(a_record(clean_clone_s=524.0), _row("clean_clone"))
    assert outcome.measured == "8 min 44 s"
    assert outcome.verdict == "no (46% over)"


# --- docs/benchmarks.md and docs/benchmarks.json -------------------------------------------------------


def test_a_new_document_has_the_latest_table_and_one_history_row():
    record = a_record(synth_same_ratio=1.2, synth_fresh_ratio=4.0, synth_floor_s=5.0)
    text = bench_report.render_document("", record, charts=["bench-latency.png"])
    assert "| full-app synth, same `cdk.out` again (ratio to the one-queue floor) | 1.2x | <= 1.5x | yes |" in text
    assert "| full-app synth into a fresh `cdk.out` (ratio to the floor) | 4.0x | <= 2.0x | no (100% over) |" in text
    assert "![bench-latency](bench-latency.png)" in text
    assert "1 of 2 measured goals met" in text
    assert history_rows(text) == [
        "| 2026-12-01 12:00 UTC | abc1234567 | AMD EPYC x2 | 5.0 s | 1.2x | 4.0x | - | - | - | - | - | - | - | - | - | 1/2 |"
    ]


def test_a_second_run_replaces_the_latest_section_and_adds_its_history_row_on_top():
    first = bench_report.render_document("", a_record(synth_same_ratio=2.0))
    second_record = a_record(synth_same_ratio=1.4)
    second_record["date"] = "2026-12-02 09:00 UTC"
    text = bench_report.render_document(first, second_record)
    assert text.count(bench_report.LATEST_START) == 1
    assert "Run on 2026-12-02 09:00 UTC" in text and "Run on 2026-12-01" not in text
    assert [row.split(" | ")[0] for row in history_rows(text)] == ["| 2026-12-02 09:00 UTC", "| 2026-12-01 12:00 UTC"]


def test_what_follows_the_history_table_is_kept():
    document = bench_report.render_document("", a_record()) + "\n## Earlier runs\n\n| old | table |\n"
    text = bench_report.render_document(document, a_record(suite_s=90.0))
    assert text.endswith("\n## Earlier runs\n\n| old | table |\n")
    assert len(history_rows(text)) == 2


def test_a_document_of_the_old_layout_starts_again_from_the_template():
    text = bench_report.render_document("# Benchmarks\n\nno markers here\n", a_record())
    assert text.startswith("# Benchmarks\n\nMeasured by `make bench`")
    assert bench_report.HISTORY_MARK in text


def test_the_per_handler_import_times_are_listed_with_how_they_were_measured():
    record = a_record(import_max_ms=300.0)
    record["imports"] = {
        "how": "`.venv-cloud/bin/python` with the layer",
        "per_handler_ms": {"orders.handlers.api": 300.4},
    }
    text = bench_report.latest_section(record)
    assert "Cold import per handler (`.venv-cloud/bin/python` with the layer):" in text
    assert "| `orders.handlers.api` | 300 ms |" in text


def test_history_append_keeps_samples_of_the_newest_record_only():
    old = a_record(warm_p95_s=0.9)
    old["samples"] = {"warm_latency_s": [0.1, 0.2]}
    new = a_record(warm_p95_s=0.7)
    new["samples"] = {"warm_latency_s": [0.3]}
    history = bench_report.append_history([old], new)
    assert [r["figures"]["warm_p95_s"] for r in history] == [0.9, 0.7]
    assert "samples" not in history[0]
    assert history[1]["samples"] == {"warm_latency_s": [0.3]}
    assert old["samples"] == {"warm_latency_s": [0.1, 0.2]}  # the caller's records are left as they were


def test_the_summary_table_has_a_line_per_row_and_the_count():
    text = bench_report.summary_table(a_record(peak_rss_gib=3.2))
    lines = text.splitlines()
    assert len(lines) == 1 + len(bench_report.ROWS) + 1
    assert "no (7% over)" in text
    assert lines[-1] == "0 of 1 measured goals met (2026-12-01 12:00 UTC)"


def test_the_cdf_of_latencies_rises_to_one_in_sorted_order():
    assert bench_report.cdf_points([0.3, 0.1, 0.2, 0.4]) == ([0.1, 0.2, 0.3, 0.4], [0.25, 0.5, 0.75, 1.0])


def test_charts_are_png_files(tmp_path: Path):
    pytest.importorskip("matplotlib")
    record = a_record(synth_floor_s=5.0, synth_same_s=7.0, synth_fresh_s=11.0, suite_s=60.0)
    record["samples"] = {"cold_latency_s": [0.5, 1.0, 4.0], "warm_latency_s": [0.2, 0.3, 0.4]}
    written = bench_report.draw_charts([a_record(synth_floor_s=5.2, suite_s=70.0), record], tmp_path)
    assert [p.name for p in written] == ["bench-latency.png", "bench-history.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in written)


# --- memory --------------------------------------------------------------------------------------------


def test_vm_rss_is_read_in_kib_from_a_status_text():
    assert bench.vm_rss_kib("Name:\tpython\nVmPeak:\t 9000 kB\nVmRSS:\t  204800 kB\nThreads:\t3\n") == 204800
    assert bench.vm_rss_kib("Name:\tkthreadd\nThreads:\t1\n") is None


def test_summed_rss_counts_the_roots_and_all_their_descendants_only():
    parents = {10: 1, 11: 10, 12: 11, 13: 10, 20: 1, 30: 1, 31: 30}  # 10: MiniStack, 11-13 workers; 30: redis
    rss = {10: 300_000, 11: 150_000, 12: 100_000, 13: None, 20: 999_999, 30: 8_000, 31: 2_000}
    assert bench.descendants([10], parents) == {10, 11, 12, 13}
    assert bench.summed_rss([10, 30], parents, rss.get) == (560_000, 5)  # 13 exited meanwhile, 20 is not ours


def test_process_parents_are_read_from_stat_files(tmp_path: Path):
    for pid, stat in {"42": "42 (python -m x) S 7 42", "43": "43 (a) b) R 42 43"}.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "stat").write_text(stat)
    (tmp_path / "self").mkdir()
    assert bench.proc_parents(tmp_path) == {42: 7, 43: 42}


# --- the dependency layer for the import row ----------------------------------------------------------

X86_SUFFIXES = [".cpython-311-x86_64-linux-gnu.so", ".abi3.so", ".so"]


def test_a_layer_is_loadable_when_its_tagged_extensions_match_the_interpreter():
    x86 = ["_pydantic_core.cpython-311-x86_64-linux-gnu.so", "_speedups.abi3.so", "libbundled.so"]
    arm = ["_pydantic_core.cpython-314-aarch64-linux-gnu.so", "libbundled.so"]
    assert bench.layer_is_compatible(x86, X86_SUFFIXES)
    assert not bench.layer_is_compatible(arm, X86_SUFFIXES)
    assert bench.layer_is_compatible([], X86_SUFFIXES)  # a pure-Python layer loads anywhere


def _layer(assembly: Path, name: str, extension: str) -> Path:
    python = assembly / name / "python"
    (python / "aws_lambda_powertools").mkdir(parents=True)
    (python / "pydantic_core").mkdir()
    (python / "pydantic_core" / extension).write_text("")
    return python


def test_the_first_assembly_with_a_loadable_layer_is_used(tmp_path: Path):
    local, sandbox = tmp_path / "local", tmp_path / "sandbox"
    (local / "asset.code" / "orders").mkdir(parents=True)  # the code asset: no Powertools, not the layer
    _layer(local, "asset.arm", "_pydantic_core.cpython-311-aarch64-linux-gnu.so")
    wanted = _layer(sandbox, "asset.x86", "_pydantic_core.cpython-311-x86_64-linux-gnu.so")
    assert bench.find_dependency_layer([local, sandbox], X86_SUFFIXES) == wanted
    assert bench.find_dependency_layer([local], X86_SUFFIXES) is None


# --- orders ------------------------------------------------------------------------------------------


class ScriptedApi:
    """An API client answering POST /orders with scripted statuses, recording the keys it was sent."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.keys: list[str] = []

    def post(self, path: str, body: Any, headers: dict[str, str]) -> Any:
        self.keys.append(headers["Idempotency-Key"])
        status = self.statuses.pop(0)
        return type("Response", (), {"status": status, "body": {"order_id": "o-1"} if status == 202 else {}})()


def test_a_throttled_order_is_retried_with_the_same_idempotency_key():
    api = ScriptedApi([429, 503, 202])
    load = bench.OrderLoad(api, dynamodb=None, table="orders", sleep=lambda _: None)
    load.place(0)
    assert load.retries == 2
    assert load.failures == []
    assert list(load.sent) == ["o-1"]
    assert len(api.keys) == 3 and len(set(api.keys)) == 1


def test_an_order_that_still_fails_counts_as_a_failure():
    load = bench.OrderLoad(ScriptedApi([429, 400]), dynamodb=None, table="orders", sleep=lambda _: None)
    load.place(0)
    assert load.retries == 1
    assert load.failures == ["400 {}"]
    assert load.sent == {}


def test_an_order_run_reports_throughput_over_the_recorded_orders():
    run = bench.OrderRun(orders=10, concurrency=8, latencies=[0.5] * 8, elapsed=4.0, retries=3, failures=["x"])
    assert run.recorded == 8
    assert run.orders_per_second == 2.0
    assert run.describe().startswith("8/10 recorded, 8 clients, 2.0 orders/s, p50 0.50 s, max 0.50 s, 3 retries")


# --- flags ----------------------------------------------------------------------------------------------


def test_skip_local_skips_every_local_cloud_row_and_nothing_else():
    args = bench.parse_args(["--skip-local"])
    skipped = {row for row in bench.ROW_FLAGS if not bench.wanted(args, row)}
    assert skipped == {"local_first", "local_again", "cold_orders", "warm_orders", "memory"}


def test_skipped_rows_are_noted_with_their_flag():
    run = bench.Run(date="d", commit="c", machine={})
    bench.note_skipped(run, bench.parse_args(["--skip-clean-clone", "--skip-synth"]))
    assert run.notes == {
        "synth_same": "skipped (--skip-synth)",
        "synth_fresh": "skipped (--skip-synth)",
        "clean_clone": "skipped (--skip-clean-clone)",
    }


def test_the_clean_clone_environment_has_nothing_of_this_checkout(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", f"{bench.ROOT}/node_modules/.bin:{bench.ROOT}/.venv/bin:/usr/bin:/bin")
    monkeypatch.setenv("VIRTUAL_ENV", f"{bench.ROOT}/.venv")
    monkeypatch.setenv("MAKEFLAGS", "-j1")
    env = bench.clean_env()
    assert env["PATH"] == "/usr/bin:/bin"
    assert "VIRTUAL_ENV" not in env and "MAKEFLAGS" not in env
    assert env["CI"] == "true"


def test_a_failing_step_is_noted_on_its_rows_and_the_run_goes_on():
    run = bench.Run(date="d", commit="c", machine={})
    with run.attempt("cold_orders", "warm_orders"):
        raise RuntimeError("localcloud up --no-scenario exited 1: stacks not complete")
    assert run.notes["warm_orders"] == "failed: RuntimeError: localcloud up --no-scenario exited 1: stacks not complete"


def test_an_accepted_order_without_an_id_counts_as_a_failure():
    class NoId(ScriptedApi):
        def post(self, path: str, body: Any, headers: dict[str, str]) -> Any:
            return type("Response", (), {"status": 202, "body": "accepted"})()

    load = bench.OrderLoad(NoId([]), dynamodb=None, table="orders", sleep=lambda _: None)
    load.place(0)
    assert load.failures == ["202 accepted"]


def test_the_ports_that_must_be_free_are_those_of_every_local_cloud_server():
    assert bench.local_cloud_ports(Settings()) == [4566, 6379, *range(8081, 8121)]


def test_the_rss_of_this_process_tree_is_read_from_proc():
    kib, processes = bench.summed_rss([os.getpid()], bench.proc_parents(), bench.proc_rss_kib)
    assert processes >= 1
    assert kib > 10_000  # a Python interpreter with pytest loaded holds more than 10 MiB


class EveryOrderApi:
    """Accepts every order with a new id."""

    def __init__(self) -> None:
        self.count = itertools.count()

    def post(self, path: str, body: Any, headers: dict[str, str]) -> Any:
        return type("Response", (), {"status": 202, "body": {"order_id": f"o-{next(self.count)}"}})()


class RecordedTable:
    """batch_get_item finds every key asked for, except the ids it is told were lost."""

    def __init__(self, lost: set[str]) -> None:
        self.lost = lost

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        ((table, request),) = RequestItems.items()
        found = [{"pk": key["pk"]} for key in request["Keys"] if key["pk"]["S"] not in self.lost]
        return {"Responses": {table: found}}


def test_an_order_run_records_every_order_the_table_holds_and_counts_the_lost_ones():
    load = bench.OrderLoad(EveryOrderApi(), RecordedTable(lost={"ORDER#o-3"}), table="orders")
    run = load.run(orders=6, concurrency=2, timeout=0.3)
    assert run.orders == 6 and run.concurrency == 2
    assert run.recorded == 5
    assert run.failures == ["1 accepted but not recorded within 0.3 s"]
    assert all(latency >= 0 for latency in run.latencies)
