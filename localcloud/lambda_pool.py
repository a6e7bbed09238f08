"""The local cloud's Lambda worker pool on a small host: bounded cold starts, warm workers first.

MiniStack runs each Python function in worker processes of its own interpreter and starts a new one
for every invocation that finds all of the function's workers busy, initialising them all at once.
On AWS every execution environment has its own CPU, so twenty cold starts cost what one costs. Here
twenty share two cores: each takes ten times as long, a burst right after a deploy answers in tens
of seconds (issue 10 measured a 21 s p95) and can push a request past its client's timeout. Two
rules make the host behave more like the fleet it stands in for:

1. Bounded cold starts: at most `INIT_SLOTS` workers (one per core) initialise at a time; the others
   wait their turn instead of slowing every one down. The function's timeout starts once its worker
   is ready, as AWS times the init phase apart from the invocation.
2. Warm first: an invocation that finds every worker of its function busy while all init slots are
   taken waits up to `WARM_WAIT_SECONDS` for one of them to come free (a warm invocation takes
   milliseconds, a cold start here a second or more) before it queues for a cold start of its own.
3. A function runs at most `WORKERS_PER_FUNCTION` workers (one more than the cores): beyond that a
   worker more adds no CPU, only memory (~70 MB each) and context switches, so an invocation waits
   for a warm one instead. The waits are bounded (`CAP_WAIT_SECONDS`), so a handler that invokes its
   own function can never deadlock on itself.

4. Warm from the start: a background thread starts one worker for each of the app's functions (those
   carrying POWERTOOLS_SERVICE_NAME, on the emulator's Python; CDK's custom-resource handlers run once per
   deploy and stay cold)
   as soon as it exists or its code changes, through the same init slots. On AWS the first burst after
   a deploy starts its environments in parallel, each in about a second; here they would queue on two
   cores for ten, so the local cloud starts them while the deploy goes on.

MiniStack keeps idle surplus workers for LAMBDA_WARM_TTL_SECONDS; the emulator sets that to the life of
the local cloud (localcloud/emulator.py), so what a burst started stays warm, as provisioned
concurrency would keep it. Installed by `compat.install_runtime_patches()`, inside the emulator.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

logger = logging.getLogger("localcloud.lambda_pool")

# One cold start per core at a time: more only share the same CPU. LOCALCLOUD_LAMBDA_INIT_SLOTS overrides.
INIT_SLOTS = int(os.environ.get("LOCALCLOUD_LAMBDA_INIT_SLOTS", max(1, os.cpu_count() or 1)))
# Longer than a warm invocation of any function here, shorter than a cold start under load.
WARM_WAIT_SECONDS = float(os.environ.get("LOCALCLOUD_LAMBDA_WARM_WAIT_SECONDS", "1.0"))
WORKERS_PER_FUNCTION = int(os.environ.get("LOCALCLOUD_LAMBDA_WORKERS_PER_FUNCTION", INIT_SLOTS + 1))
# Longer than any invocation here takes; after it a worker is started anyway (no deadlock on a full pool).
CAP_WAIT_SECONDS = 30.0
# How often the warm-up thread looks for functions without a worker; LOCALCLOUD_LAMBDA_PREWARM=0 turns it off.
PREWARM_INTERVAL_SECONDS = 1.0
PREWARM = os.environ.get("LOCALCLOUD_LAMBDA_PREWARM", "1") != "0"
APP_FUNCTION_MARKER = "POWERTOOLS_SERVICE_NAME"
# Workers run on the emulator's own interpreter: only functions of its runtime can be warmed.
RUNNABLE_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"

_init_slots = threading.BoundedSemaphore(INIT_SLOTS)
_initialising = 0
_state = threading.Condition()  # notified when a worker is released or an init slot frees


# Set by install(): one warm-up pass, for tests (the thread runs the same function).
prewarm: Callable[[], int] | None = None


# Where the warm-up thread says how many app functions are still cold (`localcloud up` waits for 0).
STATUS_FILE = Path(os.environ.get("LOCALCLOUD_LAMBDA_POOL_STATUS", ".localcloud/lambda-pool.json"))


def _write_status(cold: int) -> None:
    try:
        STATUS_FILE.parent.mkdir(parents=True, exist_ok=True)
        scratch = STATUS_FILE.with_suffix(".tmp")
        scratch.write_text(json.dumps({"cold": cold, "initialising": initialising(), "at": time.time()}))
        scratch.replace(STATUS_FILE)
    except OSError as error:
        logger.warning("local cloud: cannot write %s: %s", STATUS_FILE, error)


def read_status(path: Path = STATUS_FILE) -> dict[str, float] | None:
    """The warm-up thread's last word ({"cold": n, "initialising": k, "at": epoch}), None before the first."""
    try:
        status: dict[str, float] = json.loads(path.read_text())
        return status
    except (OSError, ValueError):
        return None


def initialising() -> int:
    """Workers initialising right now (for tests and the bench)."""
    with _state:
        return _initialising


def install() -> None:
    from ministack.core import lambda_runtime
    from ministack.services import lambda_svc

    for name in ("acquire_worker", "release_worker", "_worker_key", "_workers", "_lock"):
        if not hasattr(lambda_runtime, name):
            raise RuntimeError(f"MiniStack's worker pool has no {name}: review localcloud/lambda_pool.py")
    acquire, release, spawn = lambda_runtime.acquire_worker, lambda_runtime.release_worker, lambda_runtime.Worker._spawn

    def lease_free(func_name: str, config: dict, qualifier: str) -> tuple[Any, int]:
        """(a free worker now leased, or None; how many workers the function has)."""
        key = lambda_runtime._worker_key(func_name, config, qualifier)
        with lambda_runtime._lock:
            entries = lambda_runtime._workers.get(key) or []
            for worker in entries:
                if not worker.in_use:
                    worker.in_use = True
                    worker.last_used = time.time()
                    return worker, len(entries)
            return None, len(entries)

    def acquire_warm_first(func_name, config, code_zip, qualifier="$LATEST", max_concurrency=None):
        arrived = time.monotonic()
        while True:
            worker, workers = lease_free(func_name, config, qualifier)
            if worker is not None:
                return worker, "reused"
            with _state:
                waited = time.monotonic() - arrived
                if workers >= WORKERS_PER_FUNCTION:
                    left = CAP_WAIT_SECONDS - waited
                elif workers and _initialising >= INIT_SLOTS:
                    left = WARM_WAIT_SECONDS - waited
                else:
                    left = 0
                if left <= 0:
                    break
                _state.wait(timeout=min(left, 0.05))
        return acquire(func_name, config, code_zip, qualifier=qualifier, max_concurrency=max_concurrency)

    def release_and_notify(worker) -> None:
        release(worker)
        with _state:
            _state.notify_all()

    def spawn_in_a_slot(self, *args, **kwargs):
        global _initialising
        with _init_slots:
            with _state:
                _initialising += 1
            try:
                return spawn(self, *args, **kwargs)
            finally:
                with _state:
                    _initialising -= 1
                    _state.notify_all()

    def cold_app_functions() -> list[tuple[str, dict, bytes]]:
        """(name, config, code) of every app function (Python, with the marker) that has no worker."""
        cold = []
        for (_account, _region, name), record in list(lambda_svc._functions._data.items()):
            config, code_zip = record.get("config") or {}, record.get("code_zip")
            variables = (config.get("Environment") or {}).get("Variables") or {}
            if not code_zip or APP_FUNCTION_MARKER not in variables:
                continue
            if config.get("Runtime") != RUNNABLE_RUNTIME:
                continue  # another stage's functions (python3.14 on arm64): this interpreter cannot run them
            with lambda_runtime._lock:
                if lambda_runtime._workers.get(lambda_runtime._worker_key(name, config, "$LATEST")):
                    continue
            cold.append((name, config, code_zip))
        return cold

    def warm(name: str, config: dict, code_zip: bytes) -> bool:
        worker, how = lambda_runtime.acquire_worker(name, config, code_zip)
        try:
            if how == "spawn":
                lambda_runtime.ensure_spawned(worker)
                return True
        except Exception as error:  # its invocations will fail with the same init error, where it shows
            logger.warning("local cloud: could not warm %s: %s", name, error)
        finally:
            lambda_runtime.release_worker(worker)
        return False

    def prewarm_once() -> int:
        """Start a worker for every app function that has none, `INIT_SLOTS` at a time; returns how many."""
        cold = cold_app_functions()
        _write_status(len(cold))
        if not cold:
            return 0
        with ThreadPoolExecutor(INIT_SLOTS, thread_name_prefix="localcloud-prewarm") as pool:
            started = sum(pool.map(lambda function: warm(*function), cold))
        _write_status(len(cold_app_functions()))
        return started

    def prewarm_forever() -> None:
        while True:
            try:
                prewarm_once()
            except Exception:  # the next pass tries again; warming is an optimisation, never a failure
                logger.exception("local cloud: warm-up pass failed")
            time.sleep(PREWARM_INTERVAL_SECONDS)

    global prewarm
    prewarm = prewarm_once
    if PREWARM:
        threading.Thread(target=prewarm_forever, name="localcloud-prewarm", daemon=True).start()

    lambda_runtime.acquire_worker = lambda_svc.acquire_worker = acquire_warm_first
    lambda_runtime.release_worker = lambda_svc.release_worker = release_and_notify
    lambda_runtime.Worker._spawn = spawn_in_a_slot
