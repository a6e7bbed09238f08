"""Background processes that `localcloud up` starts and `localcloud down` stops, tracked by pid file.

Each process runs in its own session (process group), so stopping it also stops what it spawned
(MiniStack's Lambda workers, Flask's reloader-free server). A pid file records the pid and the
process start time; `stop` checks both before signalling, so a recycled pid is never killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Under the state directory: the service bundles the supervisor unpacks, each instance's working directory.
INSTANCE_BUNDLES = "bundles"


class ProcessExited(RuntimeError):
    """A process we wait for has exited: waiting longer is pointless."""


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ProcessExited:
            raise
        except Exception:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class ManagedProcess:
    """A named background process with a pid file and a log file under the state directory."""

    name: str
    state_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.state_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    def start(self, argv: list[str], env: dict[str, str], cwd: Path) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as log:  # one log per run: the last start's output only
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(json.dumps({"pid": proc.pid, "argv": argv, "start_time": _start_time(proc.pid)}))
        return proc.pid

    def recorded(self) -> dict | None:
        try:
            return json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return None

    def pid(self) -> int | None:
        """The recorded pid if that process is still the one we started."""
        record = self.recorded()
        if not record:
            return None
        pid = int(record["pid"])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return None
        stat = _stat(pid)
        if stat is not None:
            if stat[0] == "Z":  # exited, not yet reaped
                return None
            if record.get("start_time") and stat[19] != record["start_time"]:
                return None  # the pid was recycled by an unrelated process
        return pid

    def alive(self) -> bool:
        return self.pid() is not None

    def require_running(self) -> bool:
        """For wait_until checks: raise ProcessExited (with the log's tail) once the process is gone."""
        if not self.alive():
            log = self.log_file.read_text(errors="replace")[-1500:] if self.log_file.exists() else ""
            raise ProcessExited(f"{self.name} exited during start-up ({self.log_file}):\n{log}")
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL it after `timeout`; True if something was stopped."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                return True
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                    waited = os.waitpid(pid, os.WNOHANG) if _is_child(pid) else (0, 0)
                    if waited[0] == pid:
                        return True
                except ProcessLookupError:
                    return True
                time.sleep(0.1)
        return True


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (index 0 = state, 1 = ppid, 19 = start time)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    stat = _stat(pid)
    return stat[19] if stat else None


def _is_child(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] == str(os.getpid())


def processes_in(directory: Path) -> list[int]:
    """Pids of the processes whose working directory is `directory` or below it (this machine's /proc).
    The supervisor starts every instance in its unpacked service bundle, so this finds the instances of
    one checkout's local cloud, and nothing else, even after the emulator that started them is gone."""
    root = directory.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            state = _stat(int(entry.name))
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if state is not None and state[0] != "Z" and cwd.is_relative_to(root):
            found.append(int(entry.name))
    return found


def stop_all(pids: list[int], timeout: float = 5.0) -> int:
    """SIGTERM each, SIGKILL what still runs after `timeout`; how many there were."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(_running(pid) for pid in pids):
            time.sleep(0.1)
        if not any(_running(pid) for pid in pids):
            break
    return len(pids)


def _running(pid: int) -> bool:
    """Not a zombie: an exited child stays in /proc until its parent reaps it (not ours to do here)."""
    state = _stat(pid)
    return state is not None and state[0] != "Z"
