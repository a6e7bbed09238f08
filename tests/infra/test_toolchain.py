"""The pinned toolchain is the one on PATH, and the CDK CLI synthesizes without the Node banner."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI_ENV = {
    **os.environ,
    "PATH": os.pathsep.join(
        [str(ROOT / "node_modules" / ".bin"), str(Path(sys.executable).parent), os.environ["PATH"]]
    ),
    "CDK_DISABLE_CLI_TELEMETRY": "true",
}


def _version(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    assert match, f"no version in {text!r}"
    return tuple(int(x) for x in match.groups())


def test_node_22_comes_first_on_path():
    node = shutil.which("node", path=CLI_ENV["PATH"])
    assert node and Path(node).resolve().is_relative_to((ROOT / "node_modules").resolve())
    out = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    assert _version(out)[0] == 22


def test_cdk_cli_is_2_1148_or_newer_and_not_the_3_0_tag():
    package = json.loads((ROOT / "node_modules" / "aws-cdk" / "package.json").read_text())
    version = _version(package["version"])
    assert version[0] == 2 and version[1] >= 1148, package["version"]


ONE_QUEUE_APP = """
import aws_cdk as cdk
from aws_cdk import aws_sqs as sqs

app = cdk.App()
sqs.Queue(cdk.Stack(app, "OneQueue"), "Queue")
app.synth()
"""


def test_cli_synth_prints_no_node_warning_banner(tmp_path):
    """The CLI runs a Python app with this aws-cdk-lib (jsii starts Node 22), reads the cloud assembly it
    writes, and neither prints Node's end-of-life banner. A one-queue app shows both as well as the whole
    app would, in a quarter of the time; the whole app goes through the same CLI in every e2e deploy."""
    (tmp_path / "app.py").write_text(ONE_QUEUE_APP)
    (tmp_path / "cdk.json").write_text(json.dumps({"app": f"{sys.executable} app.py", "notices": False}))
    result = subprocess.run(
        ["cdk", "synth", "-o", str(tmp_path / "cdk.out"), "-q"],
        cwd=tmp_path,
        env=CLI_ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "end-of-life" not in output and "!!!!" not in output, output
    assert [p.name for p in (tmp_path / "cdk.out").glob("*.template.json")] == ["OneQueue.template.json"]
