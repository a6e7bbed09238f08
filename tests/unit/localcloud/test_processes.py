"""The sweep that stops instance processes an emulator left behind: found by their working directory
(an unpacked service bundle of this checkout's state directory), and nothing else is touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from localcloud.processes import INSTANCE_BUNDLES, processes_in, stop_all

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
)
POLITE = "import time; print('ready', flush=True); time.sleep(60)"


def start(code: str, cwd: Path) -> subprocess.Popen:
    """A Python process in `cwd`, once it runs its code (its signal handling is in place)."""
    process = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "ready\n"
    return process


def test_instances_left_in_the_bundles_are_found_and_stopped_and_other_processes_are_not(tmp_path: Path):
    bundle = tmp_path / "state" / INSTANCE_BUNDLES / "services.zip"
    bundle.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # One instance that ignores SIGTERM (so SIGKILL must follow), one that stops on it, one bystander.
    stubborn, polite, bystander = start(STUBBORN, bundle), start(POLITE, bundle), start(POLITE, elsewhere)
    try:
        found = processes_in(tmp_path / "state" / INSTANCE_BUNDLES)
        assert sorted(found) == sorted([stubborn.pid, polite.pid])

        assert stop_all(found, timeout=1.0) == 2
        assert stubborn.wait(5) == -9 and polite.wait(5) == -15  # SIGKILL after the grace, SIGTERM first
        assert bystander.poll() is None
        assert processes_in(tmp_path / "state" / INSTANCE_BUNDLES) == []
    finally:
        for process in (stubborn, polite, bystander):
            process.kill()
            process.wait()
