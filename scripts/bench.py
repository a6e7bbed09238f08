"""Benchmark, not a test: every row of issue 10's table, measured in one run on one machine.

In the order it runs (each row can be skipped; ratios are against the one-queue CDK app, the floor
every CDK-in-Python app pays, synthesized alternately with the full app so background load hits both):

 1. full-app synth into the same cdk.out again (warmed by one untimed synth), median of --runs
 2. full-app synth into a fresh cdk.out each run (the pip-result cache under ~/.cache stays, as for a
    fresh clone on the same machine), median of --runs
 3. `pytest tests/unit tests/infra` wall time
 4. clean clone `make test`: `git clone` of HEAD into a temp dir, `CI=true make test` there (install
    included). Its e2e tests start their own local cloud, so this checkout's is stopped first.
 8. cold orders: `localcloud down`, `localcloud up --no-scenario`, then the first 100 orders (8 clients)
 9. warm orders: 300 more orders right after, throughput and p95 POST -> recorded
10. memory: peak summed RSS of MiniStack + its Lambda workers, the tiers and redis-server during row 9
 6. first `make local` on a fresh emulator: `localcloud down`, then `localcloud up` (with the scenario)
 7. `make local` again, everything up: `localcloud up` once more
 5. cold import of each Lambda handler, last so that it finds the layer the local deploy just built:
    with the dependency layer on the path and MiniStack's interpreter (.venv-cloud), when the local
    assembly has a layer this interpreter can load; else the project venv, as before

The local cloud is left up at the end, as `make local` leaves it. Prints a summary and writes
docs/benchmarks.md (latest run + a history row), docs/benchmarks.json (one record per run) and the
charts docs/bench-latency.png and docs/bench-history.png; logs of the long steps go to .build/bench/.

    python -m scripts.bench [--runs 3] [--skip-clean-clone] [--skip-local] [--no-write] ...
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.processes import ManagedProcess, port_open
from localcloud.settings import CLOUD_PYTHON, STATE_DIR, Settings
from localcloud.tiers import INSTANCE_PORTS
from scripts import bench_report
from stacks.constructs.shipping import CODE_EXCLUDES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REPORT = DOCS / "benchmarks.md"
HISTORY = DOCS / "benchmarks.json"
LOGS = ROOT / ".build" / "bench"
LAMBDAS = ROOT / "lambdas"
CONTRACTS = ROOT / "contracts"
ASSEMBLIES = (STATE_DIR / "cdk.out", ROOT / "cdk.out")  # the local stage's first: its layer is built for x86_64

ONE_QUEUE_APP = """\
import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs

app = cdk.App()
sqs.Queue(cdk.Stack(app, "OneQueue"), "Queue")
app.synth()
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent), env["PATH"]])
    env.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(command: list[str], cwd: Path, timeout: float = 900) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - start, result


def _run_logged(command: list[str], cwd: Path, env: dict[str, str], log: Path, timeout: float) -> tuple[float, int]:
    """Run with output to `log` (long steps print a lot); on timeout the whole process group is stopped,
    so nothing of a half-finished `make test` keeps running. Returns (wall seconds, exit code; -9 on timeout)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            code = -9
    return time.perf_counter() - start, code


def _stop_group(proc: subprocess.Popen[Any]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=15)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _shown(path: Path) -> str:
    """A path as the report shows it: relative to the checkout when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the run's record ------------------------------------------------------------------------------


@dataclass
class Run:
    """What one bench run found, in the shape of its JSON record (bench_report.Record)."""

    date: str
    commit: str
    machine: dict[str, str]
    figures: dict[str, float] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    imports: dict[str, Any] = field(default_factory=dict)

    def record(self) -> bench_report.Record:
        return {
            "date": self.date,
            "commit": self.commit,
            "machine": self.machine,
            "figures": {key: round(value, 4) for key, value in self.figures.items()},
            "details": self.details,
            "notes": self.notes,
            "imports": self.imports,
            "samples": {key: [round(v, 4) for v in values] for key, values in self.samples.items()},
        }

    @contextmanager
    def attempt(self, *rows: str) -> Iterator[None]:
        """A step that fails is noted on its rows and the run goes on: a benchmark reports what went
        wrong instead of dying."""
        try:
            yield
        except Exception as error:
            say(f"  failed: {type(error).__name__}: {error}")
            for row in rows:
                self.notes.setdefault(row, f"failed: {type(error).__name__}: {_last_line(str(error))}")


# --- rows 1-2: synth -------------------------------------------------------------------------------


@dataclass
class SynthTimes:
    floor: list[float] = field(default_factory=list)
    same_dir: list[float] = field(default_factory=list)
    fresh_dir: list[float] = field(default_factory=list)


def _synth(cwd: Path, out: Path, *context: str) -> float:
    seconds, result = _run(["cdk", "synth", *context, "-q", "-o", str(out)], cwd)
    if result.returncode != 0:
        raise RuntimeError(f"cdk synth in {cwd.name} failed: {_last_line(result.stderr or result.stdout)}")
    return seconds


def _floor_app(directory: Path) -> Path:
    app = directory / "one-queue"
    app.mkdir()
    (app / "app.py").write_text(ONE_QUEUE_APP)
    (app / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} app.py", "notices": False}))
    return app


def measure_synth(runs: int, stage: str, same_dir: bool, fresh_dir: bool) -> SynthTimes:
    """Per run: full app into the warmed same directory, the floor, full app into a new directory;
    so each full synth sits next to a floor synth. With neither full row, the floor alone (the suite's
    ratio needs it)."""
    times = SynthTimes()
    stage_context = ("-c", f"stage={stage}")
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        floor_app = _floor_app(Path(tmp))
        same = Path(tmp) / "same"
        if same_dir:
            say("  warming the same cdk.out (untimed)")
            _synth(ROOT, same, *stage_context)
        for run in range(runs):
            if same_dir:
                times.same_dir.append(_synth(ROOT, same, *stage_context))
            times.floor.append(_synth(floor_app, Path(tmp) / f"floor-{run}"))
            if fresh_dir:
                fresh = Path(tmp) / f"fresh-{run}"
                times.fresh_dir.append(_synth(ROOT, fresh, *stage_context))
                shutil.rmtree(fresh, ignore_errors=True)  # 45+ MB of layer per run
            say(f"  synth run {run + 1}/{runs}: " + _synth_line(times))
    return times


def _synth_line(times: SynthTimes) -> str:
    parts = [("same cdk.out", times.same_dir), ("floor", times.floor), ("fresh cdk.out", times.fresh_dir)]
    return ", ".join(f"{name} {values[-1]:.1f}s" for name, values in parts if values)


def record_synth(run: Run, times: SynthTimes, stage: str) -> None:
    floor = statistics.median(times.floor)
    run.figures["synth_floor_s"] = floor
    for row, values in (("synth_same", times.same_dir), ("synth_fresh", times.fresh_dir)):
        if values:
            run.figures[f"{row}_s"] = statistics.median(values)
            run.figures[f"{row}_ratio"] = statistics.median(values) / floor
            run.details[row] = (
                f"median {statistics.median(values):.1f} s vs floor {floor:.1f} s, "
                f"{len(values)} run{'s' * (len(values) > 1)}, `-c stage={stage}`"
            )


# --- row 3: the unit + infra suite ------------------------------------------------------------------


_PYTEST_SUMMARY = re.compile(r"^=+ (?P<summary>.*\b(?:passed|failed|errors?|skipped)\b.*?) in (?P<seconds>[\d.]+)s\b")


def parse_pytest_summary(output: str) -> tuple[str, float] | None:
    """pytest's final line, e.g. `==== 412 passed, 2 skipped in 88.50s (0:01:28) ====`, as
    ("412 passed, 2 skipped", 88.5); None when the output has none (pytest did not get that far)."""
    found = None
    for line in output.splitlines():
        match = _PYTEST_SUMMARY.match(line.strip())
        if match:
            found = (match["summary"], float(match["seconds"]))
    return found


def _quiet_summary(output: str) -> str:
    """`-q` prints the summary without the `=` frame: `412 passed in 88.50s (0:01:28)`."""
    lines = [line for line in output.strip().splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    return lines[-1].strip("= ") if lines else ""


def measure_suite(run: Run) -> None:
    seconds, result = _run(
        # As `make test` runs them: one xdist worker per core, at most 4 (Makefile TEST_WORKERS).
        [sys.executable, "-m", "pytest", "tests/unit", "tests/infra", "-q", "-p", "no:cacheprovider"]
        + ["-n", str(min(os.cpu_count() or 1, 4)), "--dist", "loadfile"],
        ROOT,
        timeout=3600,
    )
    summary = _quiet_summary(result.stdout) or f"exit code {result.returncode}"
    run.figures["suite_s"] = seconds
    if "synth_floor_s" in run.figures:
        run.figures["suite_ratio"] = seconds / run.figures["synth_floor_s"]
    else:
        run.notes["suite"] = f"no floor measured ({seconds:.0f} s: {summary})"
    run.details["suite"] = f"{seconds:.0f} s; {summary}"


# --- row 4: clean clone `make test` ----------------------------------------------------------------


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def clean_env() -> dict[str, str]:
    """The caller's environment without what ties it to this checkout (its venv and node_modules on
    PATH, VIRTUAL_ENV, make's own variables), with CI=true as the CI job sets it."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "LOCALCLOUD_KEEP", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"}
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(str(ROOT)))
    env["CI"] = "true"
    return env


def _checkout(clone: Path, commit: str) -> None:
    """A plain clone holds every branch; a detached commit of this checkout is fetched by its id."""
    if subprocess.run(["git", "checkout", "-q", "--detach", commit], cwd=clone, capture_output=True).returncode:
        _git("fetch", "-q", "origin", commit, cwd=clone)
        _git("checkout", "-q", "--detach", "FETCH_HEAD", cwd=clone)


def _stop_clone_cloud(clone: Path) -> None:
    """If the clone's e2e session was cut short, its local cloud may still run: stop it by its pid files."""
    python = clone / ".venv" / "bin" / "python"
    if (clone / ".localcloud").is_dir() and python.exists():
        subprocess.run([str(python), "-m", "localcloud", "down"], cwd=clone, capture_output=True, timeout=120)


def measure_clean_clone(run: Run, timeout: float) -> None:
    commit = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    log = LOGS / "clean-clone-make-test.log"
    with tempfile.TemporaryDirectory(prefix="bench-clone-") as tmp:
        clone = Path(tmp) / "repo"
        start = time.perf_counter()
        _git("clone", "-q", "--no-checkout", str(ROOT), str(clone))
        _checkout(clone, commit)
        clone_seconds = time.perf_counter() - start
        try:
            seconds, code = _run_logged(["make", "test"], clone, clean_env(), log, timeout)
        finally:
            _stop_clone_cloud(clone)
    output = log.read_text(errors="replace")
    pytest_summary = parse_pytest_summary(output)
    if code != 0:
        run.notes["clean_clone"] = (
            f"`make test` {'killed (timeout)' if code == -9 else f'exited {code}'} after {seconds:.0f} s"
            f" ({pytest_summary[0] if pytest_summary else _last_line(output)}); log {log.relative_to(ROOT)}"
        )
        return
    run.figures["clean_clone_s"] = clone_seconds + seconds
    if pytest_summary:
        run.figures["clean_clone_pytest_s"] = pytest_summary[1]
    pytest_part = f"pytest {pytest_summary[1]:.0f} s: {pytest_summary[0]}" if pytest_summary else "no pytest summary"
    run.details["clean_clone"] = (
        f"commit {commit[:10]}{' (uncommitted changes not included)' if dirty else ''}; {pytest_part}"
    )


# --- rows 6-7: `localcloud up` --------------------------------------------------------------------


_REPORT_TIME_LINE = re.compile(r"^\s*time:\s+(?P<marks>.+)$", re.M)
_MARK = re.compile(r"(?P<name>[a-z]+) (?P<seconds>\d+(?:\.\d+)?)s\b")


def parse_up_marks(output: str) -> dict[str, float]:
    """The `time:` line of localcloud's report (localcloud/cli.py report()), e.g.
    `  time:        deploy 26.0s, scenario 92.0s, total 120.0s` -> {deploy: 26.0, scenario: 92.0, total: 120.0}.
    Empty when there is no report (the command failed)."""
    lines = _REPORT_TIME_LINE.findall(output)
    if not lines:
        return {}
    return {mark["name"]: float(mark["seconds"]) for mark in _MARK.finditer(lines[-1])}


def _failure_of(output: str) -> str:
    """localcloud's `FAILED: ...` progress line, or the output's last line."""
    failed = [line.split("FAILED:", 1)[1].strip() for line in output.splitlines() if "FAILED:" in line]
    return (failed[-1] if failed else _last_line(output))[:300]


@dataclass
class UpRun:
    seconds: float
    marks: dict[str, float]


def localcloud(command: str, *flags: str, log_name: str, timeout: float = 1800) -> UpRun:
    """`python -m localcloud <command>` in this checkout, timed; raises with its FAILED line on failure."""
    log = LOGS / f"{log_name}.log"
    seconds, code = _run_logged([sys.executable, "-m", "localcloud", command, *flags], ROOT, _env(), log, timeout)
    output = log.read_text(errors="replace")
    if code != 0:
        raise RuntimeError(f"localcloud {command} {' '.join(flags)} exited {code}: {_failure_of(output)}")
    return UpRun(seconds, parse_up_marks(output))


def local_cloud_down() -> None:
    say("  localcloud down --reset")
    localcloud("down", "--reset", log_name="localcloud-down", timeout=300)


def local_cloud_ports(settings: Settings) -> list[int]:
    """MiniStack, redis-server and the tier instances' port range: fixed ports, one local cloud per machine."""
    return [settings.port, settings.redis_port, *INSTANCE_PORTS]


def stop_local_cloud(needed_for: str) -> None:
    """`localcloud down`, then every port of the local cloud must be free: `up` (or the clone's e2e
    session) would reuse a server that another checkout left running, and the row would not measure
    a fresh start."""
    local_cloud_down()
    settings = Settings.from_env()
    busy = [port for port in local_cloud_ports(settings) if port_open(settings.host, port)]
    if busy:
        raise RuntimeError(
            f"ports {', '.join(map(str, busy))} still answer after `localcloud down` (a local cloud of another "
            f"checkout?); {needed_for} needs them free"
        )


def _describe_marks(up: UpRun) -> str:
    marks = ", ".join(f"{name} {value:.1f} s" for name, value in up.marks.items())
    return f"report: {marks}" if marks else "no report line"


def measure_local_first(run: Run) -> None:
    stop_local_cloud("a first `make local` on a fresh emulator")
    say("  localcloud up (fresh emulator, with the scenario)")
    up = localcloud("up", log_name="localcloud-up-first")
    run.figures["local_first_s"] = up.seconds
    for name in ("deploy", "scenario"):
        if name in up.marks:
            run.figures[f"local_first_{name}_s"] = up.marks[name]
    run.details["local_first"] = _describe_marks(up)


def measure_local_again(run: Run) -> None:
    if not local_cloud_answers():
        say("  nothing up yet: localcloud up (untimed)")
        localcloud("up", log_name="localcloud-up-before-again")
    say("  localcloud up (everything up)")
    up = localcloud("up", log_name="localcloud-up-again")
    run.figures["local_again_s"] = up.seconds
    run.details["local_again"] = _describe_marks(up)


def local_cloud_answers() -> bool:
    settings = Settings.from_env()
    try:
        with socket.create_connection((settings.host, settings.port), timeout=1):
            pass
    except OSError:
        return False
    return (settings.cdk_out / "manifest.json").exists()


# --- rows 8-9: orders through the API -------------------------------------------------------------


RETRYABLE = {429, 503, 409}  # throttled, a dependency unavailable, the same key still in progress
MAX_ATTEMPTS = 8


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) by linear interpolation between closest ranks (numpy's default,
    statistics.quantiles' 'inclusive' method)."""
    if not values:
        raise ValueError("quantile of no values")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@dataclass
class OrderRun:
    """Orders posted and their latencies: POST sent (first attempt) -> first poll that finds the record."""

    orders: int
    concurrency: int
    latencies: list[float]
    elapsed: float
    retries: int
    failures: list[str]

    @property
    def recorded(self) -> int:
        return len(self.latencies)

    @property
    def orders_per_second(self) -> float:
        return self.recorded / self.elapsed if self.elapsed > 0 else 0.0

    def describe(self) -> str:
        text = (
            f"{self.recorded}/{self.orders} recorded, {self.concurrency} clients, "
            f"{self.orders_per_second:.1f} orders/s, p50 {quantile(self.latencies, 0.5):.2f} s, "
            f"max {max(self.latencies):.2f} s, {self.retries} retries (429/503/409), {len(self.failures)} failed"
        )
        return text + (f": {self.failures[0][:120]}" if self.failures else "")


def order_body(index: int) -> dict[str, Any]:
    return {
        "customer_id": f"bench-{index % 50}",
        "currency": "EUR",
        "items": [{"sku": "BENCH-SKU", "quantity": 1, "unit_price": 9.5}],
    }


class OrderLoad:
    """Posts orders through the deployed API (API key, one Idempotency-Key per order, reused on retry)
    and polls the orders table for their records."""

    def __init__(self, client: Any, dynamodb: Any, table: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client, self.dynamodb, self.table, self.sleep = client, dynamodb, table, sleep
        self.lock = threading.Lock()
        self.sent: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        self.failures: list[str] = []
        self.retries = 0

    @classmethod
    def deployed(cls) -> OrderLoad:
        """Against the local cloud's deployed API and orders table (found as any client finds them)."""
        from localcloud.storefront import Deployed, api_client  # urllib3 and the assembly reader: only when used

        settings = Settings.from_env()
        deployed = Deployed(settings, settings.cdk_out)
        return cls(api_client(settings, deployed), settings.client("dynamodb"), deployed.parameter("orders-table"))

    def place(self, index: int) -> None:
        key, start = str(uuid.uuid4()), time.perf_counter()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self.client.post("/orders", order_body(index), headers={"Idempotency-Key": key})
            except Exception as error:  # a timed-out request counts as a failure, the run goes on
                self._fail(f"{type(error).__name__}: {error}")
                return
            order_id = response.body.get("order_id") if isinstance(response.body, dict) else None
            if response.status == 202 and order_id:
                with self.lock:
                    self.sent[order_id] = start
                return
            if response.status not in RETRYABLE or attempt == MAX_ATTEMPTS:
                self._fail(f"{response.status} {response.body}")
                return
            with self.lock:
                self.retries += 1
            self.sleep(min(2.0, 0.1 * 2**attempt))

    def _fail(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)

    def poll_once(self) -> None:
        with self.lock:
            pending = [order_id for order_id in self.sent if order_id not in self.seen]
        for chunk in (pending[i : i + 100] for i in range(0, len(pending), 100)):
            keys = [{"pk": {"S": f"ORDER#{o}"}, "sk": {"S": "META"}} for o in chunk]
            answer = self.dynamodb.batch_get_item(
                RequestItems={self.table: {"Keys": keys, "ProjectionExpression": "pk", "ConsistentRead": True}}
            )  # UnprocessedKeys stay pending: the next poll asks again
            now = time.perf_counter()
            with self.lock:
                for item in answer["Responses"].get(self.table, []):
                    self.seen.setdefault(item["pk"]["S"].removeprefix("ORDER#"), now)

    def run(self, orders: int, concurrency: int, timeout: float) -> OrderRun:
        posting_done = threading.Event()
        begin = time.perf_counter()
        deadline = begin + timeout

        def poll() -> None:
            while time.perf_counter() < deadline:
                self.poll_once()
                if posting_done.is_set() and len(self.seen) >= len(self.sent):
                    return
                time.sleep(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(self.place, range(orders)))
        posting_done.set()
        poller.join(timeout=max(0.0, deadline - time.perf_counter()) + 5)
        latencies = sorted(self.seen[o] - self.sent[o] for o in self.seen if o in self.sent)
        if not latencies:
            raise RuntimeError(f"no order recorded within {timeout:.0f}s; API failures: {self.failures[:3]}")
        failures = list(self.failures)
        lost = len(self.sent) - len(latencies)
        if lost:
            failures.append(f"{lost} accepted but not recorded within {timeout:g} s")
        return OrderRun(orders, concurrency, latencies, max(self.seen.values()) - begin, self.retries, failures)


def record_orders(run: Run, row: str, prefix: str, orders: OrderRun, context: str = "") -> None:
    run.figures[f"{prefix}_p95_s"] = quantile(orders.latencies, 0.95)
    run.figures[f"{prefix}_orders_per_s"] = orders.orders_per_second
    run.figures[f"{prefix}_failures"] = len(orders.failures)
    run.samples[f"{prefix}_latency_s"] = orders.latencies
    run.details[row] = orders.describe() + (f"; {context}" if context else "")


# --- row 10: memory ---------------------------------------------------------------------------------


# localcloud pid files; the tier instances are children of MiniStack (its supervisor launches them).
LOCAL_CLOUD_PROCESSES = ("ministack", "redis")


def vm_rss_kib(status: str) -> int | None:
    """VmRSS of a /proc/<pid>/status text, in KiB (kernel threads and zombies have none)."""
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) if match else None


def descendants(roots: Iterable[int], parent_of: dict[int, int]) -> set[int]:
    """The roots and every process below them, from a pid -> parent pid table."""
    children: dict[int, list[int]] = {}
    for pid, parent in parent_of.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, []))
    return found


def summed_rss(roots: Iterable[int], parent_of: dict[int, int], rss_of: Callable[[int], int | None]) -> tuple[int, int]:
    """(summed RSS in KiB, processes counted) of the roots and their descendants. Shared pages (a
    forked worker's) count once per process, so this overstates what the kernel holds: an upper bound."""
    sizes = [size for pid in descendants(roots, parent_of) if (size := rss_of(pid)) is not None]
    return sum(sizes), len(sizes)


def proc_parents(proc: Path = Path("/proc")) -> dict[int, int]:
    """pid -> parent pid of every process, from /proc/<pid>/stat (the field after the command name)."""
    parents = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # exited meanwhile
    return parents


def proc_rss_kib(pid: int) -> int | None:
    try:
        return vm_rss_kib(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None


def local_cloud_pids() -> dict[str, int]:
    """The running processes localcloud started (checked against their pid files' start times)."""
    pids = {name: ManagedProcess(name, STATE_DIR).pid() for name in LOCAL_CLOUD_PROCESSES}
    return {name: pid for name, pid in pids.items() if pid is not None}


class RssSampler:
    """Samples the local cloud's summed RSS every `interval` seconds on a thread, keeping the peak."""

    def __init__(self, roots: list[int], interval: float) -> None:
        self.roots, self.interval = roots, interval
        self.peak_kib, self.processes_at_peak, self.samples = 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            kib, processes = summed_rss(self.roots, proc_parents(), proc_rss_kib)
            self.samples += 1
            if kib > self.peak_kib:
                self.peak_kib, self.processes_at_peak = kib, processes
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


# --- rows 8-10 together -----------------------------------------------------------------------------


def measure_orders(run: Run, args: argparse.Namespace, cold: bool, warm: bool, memory: bool) -> None:
    """Cold orders right after a fresh emulator's deploy (no scenario, so no order warmed a worker),
    then the warm orders with the RSS sampler running."""
    context = ""
    if cold:
        stop_local_cloud("the cold-orders run (a fresh emulator)")
        say("  localcloud up --no-scenario (fresh emulator)")
        up = localcloud("up", "--no-scenario", log_name="localcloud-up-no-scenario")
        context = f"right after `localcloud down && localcloud up --no-scenario` ({up.seconds:.0f} s)"
        say(f"  cold: {args.cold_orders} orders, {args.concurrency} clients")
        with run.attempt("cold_orders"):
            record_orders(
                run,
                "cold_orders",
                "cold",
                OrderLoad.deployed().run(args.cold_orders, args.concurrency, args.e2e_timeout),
                context,
            )
    elif not local_cloud_answers():
        say("  localcloud up --no-scenario (nothing up yet)")
        localcloud("up", "--no-scenario", log_name="localcloud-up-no-scenario")
    if not warm:
        return
    roots = local_cloud_pids() if memory else {}
    say(f"  warm: {args.warm_orders} orders, {args.concurrency} clients" + (", sampling RSS" if memory else ""))
    with RssSampler(list(roots.values()), args.rss_interval) as sampler:
        orders = OrderLoad.deployed().run(args.warm_orders, args.concurrency, args.e2e_timeout)
    record_orders(run, "warm_orders", "warm", orders, "after the cold run" if cold else "")
    if memory:
        record_memory(run, sampler, roots)


def record_memory(run: Run, sampler: RssSampler, roots: dict[str, int]) -> None:
    if not roots:
        run.notes["memory"] = f"no localcloud pid file names a running process under {STATE_DIR.relative_to(ROOT)}"
        return
    run.figures["peak_rss_gib"] = sampler.peak_kib / 1024 / 1024
    missing = [name for name in LOCAL_CLOUD_PROCESSES if name not in roots]
    run.details["memory"] = (
        f"summed VmRSS of {sampler.processes_at_peak} processes at the peak ({', '.join(roots)} and descendants), "
        f"{sampler.samples} samples every {sampler.interval:g} s"
        + (f"; not ours, not counted: {', '.join(missing)}" if missing else "")
    )


# --- row 5: cold import of the Lambda handlers --------------------------------------------------------


# What the stacks set on every function; the handlers read them at import (clients, Powertools).
HANDLER_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "ORDERS_TABLE": "orders",
    "IDEMPOTENCY_TABLE": "idempotency",
    "INVENTORY_TABLE": "inventory",
    "ORDER_EVENTS_TOPIC_ARN": "arn:aws:sns:us-east-1:000000000000:events",
    "INVENTORY_EVENTS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/000000000000/inventory.fifo",
    "CHECKOUT_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:000000000000:stateMachine:checkout",
    "HANDOFF_BUCKET": "handoff",
    "POWERTOOLS_SERVICE_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Storefront",
}

_TAGGED_EXTENSION = re.compile(r"\.(cpython-[^.]+|abi3)\.so$")


def layer_is_compatible(file_names: Iterable[str], extension_suffixes: Sequence[str]) -> bool:
    """True if every platform-tagged extension module (`x.cpython-311-x86_64-linux-gnu.so`, `x.abi3.so`)
    ends with a suffix the interpreter loads (its importlib.machinery.EXTENSION_SUFFIXES): a layer
    built for arm64 or another Python (the sandbox stage's) cannot be imported here."""
    loadable = [suffix for suffix in extension_suffixes if suffix != ".so"]
    return all(
        any(name.endswith(suffix) for suffix in loadable) for name in file_names if _TAGGED_EXTENSION.search(name)
    )


def find_dependency_layer(assemblies: Sequence[Path], extension_suffixes: Sequence[str]) -> Path | None:
    """The `python/` directory of the dependency layer asset (the one holding aws_lambda_powertools) in
    the first assembly that has a loadable one; the newest if several."""
    for assembly in assemblies:
        layers = [
            asset / "python"
            for asset in assembly.glob("asset.*")
            if (asset / "python" / "aws_lambda_powertools").is_dir()
        ]
        loadable = [
            layer for layer in layers if layer_is_compatible((p.name for p in layer.rglob("*.so")), extension_suffixes)
        ]
        if loadable:
            return max(loadable, key=lambda layer: layer.stat().st_mtime)
    return None


def extension_suffixes(python: Path) -> list[str]:
    code = "import importlib.machinery, json; print(json.dumps(importlib.machinery.EXTENSION_SUFFIXES))"
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return list(json.loads(result.stdout))


def parse_import_time(stderr: str, module: str) -> float:
    """Milliseconds `module` took to import, cumulative, from `python -X importtime` output
    (`import time: self [us] | cumulative | imported package`; the module's own line is its total)."""
    totals = [
        int(line.split("|")[1])
        for line in stderr.splitlines()
        if line.startswith("import time:") and line.rsplit("|", 1)[1].strip() == module
    ]
    if not totals:
        raise ValueError(f"no importtime line for {module}")
    return totals[-1] / 1000


def _code_asset(directory: Path) -> Path:
    """The handlers' code as the code asset lays it out (the contexts and contracts/ side by side),
    without __pycache__: a worker extracts a fresh copy and has no bytecode to reuse."""
    code = directory / "code"
    ignore = shutil.ignore_patterns(*CODE_EXCLUDES)
    shutil.copytree(LAMBDAS, code, ignore=ignore)
    shutil.copytree(CONTRACTS, code / "contracts", ignore=ignore)
    return code


def import_setup() -> tuple[Path, Path | None, str]:
    """(interpreter, layer python/ dir or None, how to report it): MiniStack's interpreter with the
    layer when there is a loadable one; else this venv (Powertools from the dev install), as before."""
    if CLOUD_PYTHON.exists():
        layer = find_dependency_layer(ASSEMBLIES, extension_suffixes(CLOUD_PYTHON))
        if layer is not None:
            where = f"{_shown(layer.parent.parent)}/{layer.parent.name[:18]}…"  # asset.<hash>: its first digits
            return CLOUD_PYTHON, layer, f"`.venv-cloud/bin/python` with the layer `{where}` on the path"
    return Path(sys.executable), None, "this venv's interpreter, no layer (none loadable in the assemblies)"


def measure_imports(run: Run, runs: int) -> None:
    """Each handler module's median cumulative import time, in a fresh interpreter per sample."""
    python, layer, how = import_setup()
    say(f"  using {how}")
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as tmp:
        code = _code_asset(Path(tmp))
        path = [str(layer)] if layer else []
        env = {**_env(), **HANDLER_ENV, "PYTHONPATH": os.pathsep.join([*path, str(code)])}
        times: dict[str, float] = {}
        for handler in sorted(LAMBDAS.glob("*/handlers/[!_]*.py")):
            module = f"{handler.parent.parent.name}.handlers.{handler.stem}"
            times[module] = statistics.median(_import_ms(python, module, code, env) for _ in range(runs))
            say(f"  import {module}: {times[module]:.0f} ms")
    run.imports = {"how": f"{how}, PYTHONDONTWRITEBYTECODE=1, median of {runs}", "per_handler_ms": times}
    slowest = max(times, key=lambda module: times[module])
    run.figures["import_max_ms"] = times[slowest]
    run.figures["import_median_ms"] = statistics.median(times.values())
    run.details["imports"] = f"`{slowest}`; median over handlers {statistics.median(times.values()):.0f} ms"


def _import_ms(python: Path, module: str, cwd: Path, env: dict[str, str]) -> float:
    result = subprocess.run(
        [str(python), "-X", "importtime", "-c", f"import {module}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"import {module} failed: {_last_line(result.stderr)}")
    return parse_import_time(result.stderr, module)


# --- the machine -------------------------------------------------------------------------------------


def host() -> dict[str, str]:
    """CPU, cores, RAM, OS and Python of this machine (the game day report names them too)."""

    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = re.search(r"^model name\s*:\s*(.+)$", read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read("/proc/meminfo"), re.M)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]+)', read("/etc/os-release"), re.M)
    return {
        "CPU": cpu.group(1).strip() if cpu else platform.processor() or "?",
        "cores": str(os.cpu_count()),
        "RAM": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?",
        "OS": f"{os_name.group(1) if os_name else platform.system()} (kernel {platform.release()})",
        "Python": platform.python_version(),
    }


def machine() -> dict[str, str]:
    def version(command: list[str]) -> str:
        try:
            return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    return {
        **host(),
        "Node": version(["node", "--version"]),
        "CDK CLI": version(["cdk", "--version"]).split(" ")[0],
        "aws-cdk-lib": importlib.metadata.version("aws-cdk-lib"),
        "cdk-monitoring-constructs": importlib.metadata.version("cdk-monitoring-constructs"),
    }


# --- writing the report ------------------------------------------------------------------------------


def write_outputs(record: bench_report.Record) -> None:
    """docs/benchmarks.json (appended), the charts (when matplotlib is installed), docs/benchmarks.md."""
    history = json.loads(HISTORY.read_text()) if HISTORY.exists() else []
    history = bench_report.append_history(history, record)
    HISTORY.write_text(json.dumps(history, indent=1) + "\n")
    try:
        charts = [path.name for path in bench_report.draw_charts(history, DOCS)]
    except ImportError as error:
        say(f"charts not drawn ({error}): `make setup` installs matplotlib (dev extras)")
        charts = []
    existing = REPORT.read_text() if REPORT.exists() else ""
    REPORT.write_text(bench_report.render_document(existing, record, charts))
    say(
        f"written: {', '.join(str(p.relative_to(ROOT)) for p in (REPORT, HISTORY))}, {', '.join(charts) or 'no charts'}"
    )


# --- main --------------------------------------------------------------------------------------------


ROW_FLAGS = {
    "synth_same": "--skip-synth-same",
    "synth_fresh": "--skip-synth-fresh",
    "suite": "--skip-suite",
    "clean_clone": "--skip-clean-clone",
    "imports": "--skip-imports",
    "local_first": "--skip-local-first",
    "local_again": "--skip-local-again",
    "cold_orders": "--skip-cold-orders",
    "warm_orders": "--skip-warm-orders",
    "memory": "--skip-memory",
}
GROUP_FLAGS = {  # one flag for several rows
    "--skip-synth": ("synth_same", "synth_fresh"),
    "--skip-local": ("local_first", "local_again", "cold_orders", "warm_orders", "memory"),
    "--skip-e2e": ("local_first", "local_again", "cold_orders", "warm_orders", "memory"),  # the old flag's name
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="synth runs per variant and import samples (median)")
    parser.add_argument("--stage", default="sandbox", help="stage of the full-app synth (make synth's default)")
    parser.add_argument("--cold-orders", type=int, default=100)
    parser.add_argument("--warm-orders", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent API clients")
    parser.add_argument("--e2e-timeout", type=float, default=300, help="seconds an order run may take")
    parser.add_argument("--rss-interval", type=float, default=0.25, help="seconds between RSS samples")
    parser.add_argument("--clean-clone-timeout", type=float, default=3600)
    for row, flag in ROW_FLAGS.items():
        parser.add_argument(flag, dest=f"skip_{row}", action="store_true", help=f"skip the {row} row")
    for flag, rows in GROUP_FLAGS.items():
        parser.add_argument(flag, dest=flag[2:].replace("-", "_"), action="store_true", help=f"skip {', '.join(rows)}")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args(argv)
    args.skipped_by = {row: flag for row, flag in ROW_FLAGS.items() if getattr(args, f"skip_{row}")}
    for flag, rows in GROUP_FLAGS.items():
        if getattr(args, flag[2:].replace("-", "_")):
            for row in rows:
                args.skipped_by.setdefault(row, flag)
    return args


def wanted(args: argparse.Namespace, row: str) -> bool:
    return row not in args.skipped_by


def note_skipped(run: Run, args: argparse.Namespace) -> None:
    for row, flag in args.skipped_by.items():
        run.notes[row] = f"skipped ({flag})"


def measure(run: Run, args: argparse.Namespace) -> None:
    """Every wanted row, in the order of the module docstring."""
    if wanted(args, "synth_same") or wanted(args, "synth_fresh") or wanted(args, "suite"):
        say(f"synth: full app (same / fresh cdk.out) vs the one-queue floor, {args.runs} runs ...")
        with run.attempt("synth_same", "synth_fresh"):
            times = measure_synth(args.runs, args.stage, wanted(args, "synth_same"), wanted(args, "synth_fresh"))
            record_synth(run, times, args.stage)
    if wanted(args, "suite"):
        say("suite: pytest tests/unit tests/infra ...")
        with run.attempt("suite"):
            measure_suite(run)
    if wanted(args, "clean_clone"):
        say("clean clone: git clone of HEAD, CI=true make test (the local cloud stopped first) ...")
        with run.attempt("clean_clone"):
            stop_local_cloud("the clone's e2e tests (they start their own local cloud)")
            measure_clean_clone(run, args.clean_clone_timeout)
    cold, warm, memory = (wanted(args, row) for row in ("cold_orders", "warm_orders", "memory"))
    if memory and not warm:
        run.notes["memory"] = "needs the warm-orders run (--skip-warm-orders was given)"
    if cold or warm:
        say("orders through the API: cold, then warm ...")
        with run.attempt("cold_orders", "warm_orders", "memory"):
            measure_orders(run, args, cold, warm, memory)
    if wanted(args, "local_first"):
        say("first make local on a fresh emulator ...")
        with run.attempt("local_first"):
            measure_local_first(run)
    if wanted(args, "local_again"):
        say("make local again, everything up ...")
        with run.attempt("local_again"):
            measure_local_again(run)
    if wanted(args, "imports"):
        say("cold import of each Lambda handler ...")
        with run.attempt("imports"):
            measure_imports(run, args.runs)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Run(
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        commit=_git("rev-parse", "--short=10", "HEAD"),
        machine=machine(),
    )
    note_skipped(run, args)
    measure(run, args)
    record = run.record()
    print(bench_report.summary_table(record))
    if not args.no_write:
        write_outputs(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
