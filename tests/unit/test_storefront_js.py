"""The storefront's ES modules under Node's own test runner (node 22 from node_modules/.bin, the
toolchain's): the live order status over a WebSocket and the polling fallback (storefront/status.js)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "node_modules" / ".bin" / "node"


def test_status_js_follows_the_socket_and_falls_back_to_polling():
    node = str(NODE) if NODE.exists() else shutil.which("node")
    if node is None:
        pytest.fail("node missing: run `make toolchain`")
    result = subprocess.run(
        [node, "--test", str(ROOT / "tests" / "unit" / "storefront" / "status.test.mjs")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # Every test of the file ran and passed (node prints "# tests N" and "# pass N").
    tests = re.search(r"^# tests (\d+)$", result.stdout, re.M)
    assert tests and int(tests.group(1)) >= 3, result.stdout[-3000:]
    assert f"# pass {tests.group(1)}" in result.stdout and "# fail 0" in result.stdout
    # storefront/package.json says the files are ES modules: Node neither guesses nor warns (the test
    # runner prints warnings among its TAP diagnostics, on stdout).
    assert "MODULE_TYPELESS_PACKAGE_JSON" not in result.stdout + result.stderr, result.stdout[-2000:]
