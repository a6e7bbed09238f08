"""Benchmark, not a test: what a developer waits for, measured in one run on one machine.

1. Synth: the whole app vs a one-queue CDK app (the floor every CDK-in-Python app pays: Python, the
   jsii Node process, the CLI), median of N runs each, fresh output directory each run.
2. The unit + infra test suite's wall time (`pytest tests/unit tests/infra -q`).
3. The cold import time of each Lambda handler module (`python -X importtime`, median of N): what
   every cold start pays before the handler runs.
4. When the local cloud is up: end-to-end orders/second and p50/p95 latency from the API call to
   the order's record in DynamoDB (POST /orders through the API key, then poll the orders table).

Prints the results and writes them to docs/benchmarks.md (latest run + a history row).

    python -m scripts.bench [--runs 3] [--orders 50] [--skip-suite] [--skip-e2e] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"
LATEST_START, LATEST_END = "<!-- bench:latest -->", "<!-- /bench:latest -->"
HISTORY_MARK = "<!-- bench:history -->"

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


def _run(command: list[str], cwd: Path, timeout: float = 900) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - start, result


# --- measurements --------------------------------------------------------------------------------


@dataclass
class Results:
    date: str
    machine: dict[str, str]
    synth_full: list[float] = field(default_factory=list)
    synth_floor: list[float] = field(default_factory=list)
    synth_error: str = ""
    suite_seconds: float | None = None
    suite_summary: str = ""
    e2e: dict[str, float] | None = None
    e2e_note: str = ""
    imports_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.synth_full and self.synth_floor:
            return statistics.median(self.synth_full) / statistics.median(self.synth_floor)
        return None


def measure_synth(runs: int, stage: str) -> tuple[list[float], list[float], str]:
    """Alternates full and floor runs so that background load affects both alike."""
    full: list[float] = []
    floor: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        floor_app = Path(tmp) / "one-queue"
        floor_app.mkdir()
        (floor_app / "app.py").write_text(ONE_QUEUE_APP)
        (floor_app / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} app.py", "notices": False}))
        for run in range(runs):
            seconds, result = _run(["cdk", "synth", "-c", f"stage={stage}", "-q", "-o", f"{tmp}/full-{run}"], ROOT)
            if result.returncode != 0:
                return full, floor, (result.stderr or result.stdout).strip().splitlines()[-1:][0][:300]
            full.append(seconds)
            seconds, result = _run(["cdk", "synth", "-q", "-o", f"{tmp}/floor-{run}"], floor_app)
            if result.returncode != 0:
                return full, floor, "one-queue app: " + (result.stderr or result.stdout)[-300:]
            floor.append(seconds)
            print(f"  synth run {run + 1}/{runs}: full {full[-1]:.1f}s, one-queue {floor[-1]:.1f}s", file=sys.stderr)
    return full, floor, ""


def measure_suite() -> tuple[float, str]:
    seconds, result = _run(
        [sys.executable, "-m", "pytest", "tests/unit", "tests/infra", "-q", "-p", "no:cacheprovider"],
        ROOT,
        timeout=3600,
    )
    lines = [line for line in result.stdout.strip().splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    return seconds, (lines[-1].strip("= ") if lines else f"exit code {result.returncode}")


LAMBDAS = ROOT / "lambdas"
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


def measure_imports(runs: int) -> dict[str, float]:
    """Handler module -> median cumulative import time (ms) of `<context>.handlers.<entry>`, each in a
    fresh interpreter with `lambdas/` and `contracts/` on the path, as the Lambda runtime loads the code
    asset (contexts and contracts side by side at its root)."""
    env = {**_env(), **HANDLER_ENV, "PYTHONPATH": f"{LAMBDAS}{os.pathsep}{ROOT}"}
    times: dict[str, float] = {}
    for handler in sorted(LAMBDAS.glob("*/handlers/[!_]*.py")):
        module = f"{handler.parent.parent.name}.handlers.{handler.stem}"
        samples = []
        for _ in range(runs):
            result = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", f"import {module}"],
                cwd=LAMBDAS,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if result.returncode != 0:
                raise RuntimeError(f"import {module} failed: {result.stderr.strip().splitlines()[-1:]}")
            # "import time: self [us] | cumulative | imported package"; the module's own line is its total.
            totals = [
                int(line.split("|")[1])
                for line in result.stderr.splitlines()
                if line.startswith("import time:") and line.rsplit("|", 1)[1].strip() == module
            ]
            samples.append(totals[-1] / 1000)
        times[module] = statistics.median(samples)
        print(f"  import {module}: {times[module]:.0f} ms", file=sys.stderr)
    return times


def local_cloud_up() -> tuple[bool, str]:
    from localcloud.settings import Settings

    settings = Settings.from_env()
    try:
        with socket.create_connection((settings.host, settings.port), timeout=1):
            pass
    except OSError:
        return False, f"local cloud not running (nothing on {settings.host}:{settings.port}; `make local` starts it)"
    if not (settings.cdk_out / "manifest.json").exists():
        return False, f"something listens on {settings.port}, but {settings.cdk_out} has no deployed assembly"
    return True, ""


def measure_e2e(orders: int, concurrency: int, timeout: float) -> dict[str, float]:
    """POST `orders` orders with `concurrency` clients; the latency of an order is the time from
    sending its request to the first poll that finds its META record in the orders table."""
    from localcloud.settings import Settings
    from localcloud.storefront import Deployed, api_client

    settings = Settings.from_env()
    deployed = Deployed(settings, settings.cdk_out)
    client = api_client(settings, deployed)
    table = deployed.parameter("orders-table")
    dynamodb = settings.client("dynamodb")
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    lock = threading.Lock()
    failures: list[str] = []

    def place(index: int) -> None:
        body = {
            "customer_id": f"bench-{index}",
            "currency": "EUR",
            "items": [{"sku": "BENCH-SKU", "quantity": 1, "unit_price": 9.5}],
        }
        start = time.perf_counter()
        try:
            response = client.post("/orders", body, headers={"Idempotency-Key": str(uuid.uuid4())})
        except Exception as error:  # a timed-out request counts as a failure, the run goes on
            failures.append(f"{type(error).__name__}: {error}")
            return
        if response.status != 202:
            failures.append(f"{response.status} {response.body}")
            return
        with lock:
            sent[response.body["order_id"]] = start

    def poll(stop: threading.Event) -> None:
        while not stop.is_set() or len(seen) < len(sent):
            with lock:
                pending = [order_id for order_id in sent if order_id not in seen]
            for chunk in (pending[i : i + 100] for i in range(0, len(pending), 100)):
                found = dynamodb.batch_get_item(
                    RequestItems={
                        table: {
                            "Keys": [{"pk": {"S": f"ORDER#{o}"}, "sk": {"S": "META"}} for o in chunk],
                            "ProjectionExpression": "pk",
                        }
                    }
                )["Responses"].get(table, [])
                now = time.perf_counter()
                for item in found:
                    seen.setdefault(item["pk"]["S"].removeprefix("ORDER#"), now)
            if time.perf_counter() > deadline:
                return
            time.sleep(0.05)

    stop = threading.Event()
    begin = time.perf_counter()
    deadline = begin + timeout
    poller = threading.Thread(target=poll, args=(stop,), daemon=True)
    poller.start()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(place, range(orders)))
    stop.set()
    poller.join(timeout=timeout)
    latencies = sorted(seen[o] - sent[o] for o in seen if o in sent)
    if not latencies:
        raise RuntimeError(f"no order reached DynamoDB within {timeout:.0f}s; API failures: {failures[:3]}")
    elapsed = max(seen.values()) - begin
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {
        "orders": orders,
        "recorded": len(latencies),
        "api_failures": len(failures),
        "concurrency": concurrency,
        "orders_per_second": len(latencies) / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p95_ms": quantiles[94] * 1000,
        "max_ms": latencies[-1] * 1000,
    }


# --- the machine ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = re.search(r"^model name\s*:\s*(.+)$", read("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read("/proc/meminfo"), re.M)
    os_name = re.search(r'^PRETTY_NAME="?([^"\n]+)', read("/etc/os-release"), re.M)

    def version(command: list[str]) -> str:
        try:
            return subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=60).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "?"

    return {
        "CPU": cpu.group(1).strip() if cpu else platform.processor() or "?",
        "cores": str(os.cpu_count()),
        "RAM": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?",
        "OS": f"{os_name.group(1) if os_name else platform.system()} (kernel {platform.release()})",
        "Python": platform.python_version(),
        "Node": version(["node", "--version"]),
        "CDK CLI": version(["cdk", "--version"]).split(" ")[0],
        "aws-cdk-lib": importlib.metadata.version("aws-cdk-lib"),
        "cdk-monitoring-constructs": importlib.metadata.version("cdk-monitoring-constructs"),
    }


# --- report --------------------------------------------------------------------------------------


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s" if values else "n/a"


def latest_section(r: Results, runs: int) -> str:
    lines = [LATEST_START, f"Run on {r.date}.", "", "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in r.machine.items()]
    lines += ["", "| measurement | result |", "|---|---|"]
    lines.append(f"| full-app synth (`cdk synth -c stage=sandbox -q`), median of {runs} | {_median(r.synth_full)} |")
    lines.append(f"| one-queue app synth (the CDK/jsii floor), median of {runs} | {_median(r.synth_floor)} |")
    lines.append(f"| ratio full / floor | {f'{r.ratio:.1f}x' if r.ratio else 'n/a'} |")
    if r.synth_error:
        lines.append(f"| synth error | `{r.synth_error}` |")
    if r.suite_seconds is not None:
        lines.append(f"| `pytest tests/unit tests/infra -q` wall time | {r.suite_seconds:.0f} s ({r.suite_summary}) |")
    for name, ms in r.imports_ms.items():
        lines.append(f"| cold import of `{name}` | {ms:.0f} ms |")
    if r.e2e:
        e = r.e2e
        lines.append(
            f"| end-to-end: orders recorded / posted | {e['recorded']:.0f} / {e['orders']:.0f} "
            f"({e['concurrency']:.0f} concurrent clients, {e['api_failures']:.0f} API failures) |"
        )
        lines.append(f"| end-to-end throughput (API call -> DynamoDB record) | {e['orders_per_second']:.1f} orders/s |")
        lines.append(
            f"| end-to-end latency p50 / p95 / max | {e['p50_ms']:.0f} / {e['p95_ms']:.0f} / {e['max_ms']:.0f} ms |"
        )
    else:
        lines.append(f"| end-to-end | not measured: {r.e2e_note} |")
    lines.append(LATEST_END)
    return "\n".join(lines)


def history_row(r: Results) -> str:
    e2e = f"{r.e2e['orders_per_second']:.1f}/s, p95 {r.e2e['p95_ms']:.0f} ms" if r.e2e else "-"
    suite = f"{r.suite_seconds:.0f} s" if r.suite_seconds is not None else "-"
    ratio = f"{r.ratio:.1f}x" if r.ratio else "-"
    return (
        f"| {r.date} | {r.machine['CPU']} x{r.machine['cores']} | {_median(r.synth_full)} | "
        f"{_median(r.synth_floor)} | {ratio} | {suite} | {e2e} |"
    )


def write_report(r: Results, runs: int) -> None:
    text = REPORT.read_text() if REPORT.exists() else ""
    if LATEST_START not in text or HISTORY_MARK not in text:
        text = TEMPLATE
    start, end = text.index(LATEST_START), text.index(LATEST_END) + len(LATEST_END)
    text = text[:start] + latest_section(r, runs) + text[end:]
    text = text.replace(HISTORY_MARK, HISTORY_MARK + "\n" + history_row(r), 1)
    REPORT.write_text(text)


TEMPLATE = f"""# Benchmarks

Measured by `make bench` (`python -m scripts.bench`) in one run on one machine, so the numbers in a
row compare with each other; across rows, compare machines first. This is a benchmark, not a test:
nothing fails when a number gets worse.

- **Synth ratio**: the full app against a CDK app with a single SQS queue. The one-queue app is the
  floor any CDK-in-Python app pays (Python start, the jsii Node process, the CLI); the ratio says
  how much the app itself adds (constructs, cdk-nag rule packs, Lambda layer bundling).
- **Suite**: unit + infra tests (three stages synthesized with cdk-nag, cfn-lint over every template).
- **Cold import**: `python -X importtime -c "import <context>.handlers.<entry>"` with `lambdas/` and
  `contracts/` on the path, in a fresh interpreter: the part of every cold start that the code controls.
- **End-to-end** (only when the local cloud is up, `make local`): orders posted through the REST API
  with the API key; latency runs from sending the request until a poll of the orders table finds the
  order (API -> Lambda -> SNS -> SQS -> fulfilment Lambda -> DynamoDB), so it includes the consumer's
  batching window and the poll interval (50 ms).

## Latest run

{LATEST_START}
{LATEST_END}

## History

| date | CPU x cores | full synth | one-queue synth | ratio | suite | end-to-end |
|---|---|---|---|---|---|---|
{HISTORY_MARK}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="synth runs per app (median is reported)")
    parser.add_argument("--stage", default="sandbox")
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--e2e-timeout", type=float, default=180)
    parser.add_argument("--skip-suite", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-imports", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    results = Results(date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), machine=machine())
    print(f"synth: full app vs one-queue app, {args.runs} runs each ...", file=sys.stderr)
    results.synth_full, results.synth_floor, results.synth_error = measure_synth(args.runs, args.stage)
    if not args.skip_suite:
        print("test suite: pytest tests/unit tests/infra ...", file=sys.stderr)
        results.suite_seconds, results.suite_summary = measure_suite()
    if not args.skip_imports:
        print("cold import time of each Lambda handler ...", file=sys.stderr)
        results.imports_ms = measure_imports(args.runs)
    if args.skip_e2e:
        results.e2e_note = "skipped (--skip-e2e)"
    else:
        up, results.e2e_note = local_cloud_up()
        if up:
            print(f"end-to-end: {args.orders} orders through the API ...", file=sys.stderr)
            try:
                results.e2e = measure_e2e(args.orders, args.concurrency, args.e2e_timeout)
            except Exception as error:  # a benchmark reports what went wrong instead of dying
                results.e2e_note = f"failed: {error}"
    section = latest_section(results, args.runs)
    print(section.replace(LATEST_START, "").replace(LATEST_END, "").strip())
    if not args.no_write:
        write_report(results, args.runs)
        print(f"\nwritten to {REPORT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
