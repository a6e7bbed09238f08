"""The local cloud for end-to-end tests, brought up once per session by the same code as `make local`.

A MiniStack already running (after `make local`) is reused, redeployed only where the app changed,
and left running; one that this session started is stopped at the end. Every wait is bounded.
"""

from __future__ import annotations

import os
import time

import pytest

from localcloud import cli
from localcloud.settings import Settings
from tests.e2e.harness import Harness


def _say(message: str) -> None:
    print(f"[e2e] {message}", flush=True)


@pytest.fixture(scope="session")
def cloud():
    settings = Settings.from_env()
    started = time.monotonic()
    try:
        result = cli.up(settings, _say)
    except Exception as error:
        pytest.fail(f"the local cloud did not come up: {error}", pytrace=False)
    _say(f"local cloud ready in {time.monotonic() - started:.1f}s")
    harness = Harness(settings, result)
    yield harness
    if result.servers.get("ministack") == "started" and not os.environ.get("LOCALCLOUD_KEEP"):
        cli.down(settings, _say)


@pytest.fixture
def store(cloud: Harness) -> Harness:
    """The harness, with every consumer running and the fan-out queues drained before the test."""
    cloud.resume_all_consumers()
    cloud.wait_until_drained()
    return cloud


def pytest_terminal_summary(terminalreporter) -> None:
    """The browser tests' step timings (tests/e2e/test_browser.py), when any ran."""
    from tests.e2e.browser import TIMINGS

    if not TIMINGS:
        return
    terminalreporter.write_line("")
    terminalreporter.write_line("browser test timings (s):")
    for test, step, seconds in TIMINGS:
        terminalreporter.write_line(f"  {test:<42} {step:<44} {seconds:6.2f}")
    terminalreporter.write_line(f"  {'all steps':<87} {sum(s for _t, _n, s in TIMINGS):6.2f}")
