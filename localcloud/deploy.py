"""Synthesize the app for the `local` stage, bootstrap the emulated account, deploy every stack, and
check that each stack holds every resource its template declares.

The cloud assembly goes to .localcloud/cdk.out (not the shared cdk.out). It is synthesized once and
handed to `cdk bootstrap` and `cdk deploy` with `--app <dir>`, so the app is not synthesized three
times. A second `up` finds the stacks unchanged and CloudFormation has nothing to do.

`--method direct` (UpdateStack instead of a change set): MiniStack 1.5.33 fails a change set whose
only difference is in Outputs ("didn't contain changes"), where AWS executes it; the CLI then skips
the stack, and a stack added since the last deploy cannot find the producer's new cross-stack
outputs (`Fn::GetStackOutput`). UpdateStack compares the whole template, outputs included.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from localcloud.settings import ACCOUNT, REGION, ROOT, STAGE, Settings

DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
RESOURCE_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}


@dataclass
class StackReport:
    name: str
    status: str
    template_resources: int
    deployed_resources: int
    missing: list[str]


def run_cli(args: list[str], settings: Settings, say, timeout: float) -> None:
    """Run the CDK CLI, echoing its progress lines as they come; raise with its tail on failure."""
    say("$ " + " ".join(args))
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env=settings.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    tail: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail = (tail + [line])[-40:]
        if _worth_showing(line):
            say("  " + line.strip())
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(f"{args[1]} took longer than {timeout:.0f}s")
    if proc.wait() != 0:
        raise RuntimeError(f"`{' '.join(args[:3])}` failed:\n" + "\n".join(tail))


def _worth_showing(line: str) -> bool:
    """Stack-level progress and failures; not one line per resource."""
    return any(
        marker in line
        for marker in (
            "✅",
            "❌",
            "FAILED",
            "Error",
            "error:",
            "deploying...",
            "no changes",
            "Deployment time",
            "Synthesis time",
            "bootstrapped",
        )
    )


# What the local stage's cloud assembly is made from: the app, its config and pins, and every tree whose
# files go into templates or assets. Caches and bytecode are not inputs.
SYNTH_INPUT_FILES = ("app.py", "cdk.json", "pyproject.toml", "constraints.txt", "package-lock.json")
SYNTH_INPUT_TREES = ("stacks", "lambdas", "contracts", "services", "storefront", "docs/diagrams")
NOT_INPUTS = ("__pycache__", ".mypy_cache", ".pytest_cache")


def synth_inputs_fingerprint(root: Path = ROOT) -> str:
    """A hash over the names and contents of every synth input, and the interpreter that synthesizes."""
    digest = hashlib.sha256(f"{sys.version} stage={STAGE}".encode())
    files = [root / name for name in SYNTH_INPUT_FILES]
    for tree in SYNTH_INPUT_TREES:
        files += [
            path
            for path in (root / tree).rglob("*")
            if path.is_file() and not any(part in NOT_INPUTS for part in path.parts) and path.suffix != ".pyc"
        ]
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
        digest.update(b"\0")
    return digest.hexdigest()


def synthesize(settings: Settings, say) -> Path:
    """Synthesize into .localcloud/cdk.out, unless it was synthesized from exactly these inputs: a second
    `make local` with nothing changed skips the 15 s synth (the CLI has no such check)."""
    out = settings.cdk_out
    stamp = settings.state_dir / "cdk.out.inputs"
    fingerprint = synth_inputs_fingerprint()
    if (out / "manifest.json").exists() and stamp.exists() and stamp.read_text() == fingerprint:
        say(f"cloud assembly {out.relative_to(ROOT)} is up to date with the sources: synth skipped")
        return out
    stamp.unlink(missing_ok=True)
    run_cli(["cdk", "synth", "--quiet", "-c", f"stage={STAGE}", "--output", str(out)], settings, say, 900)
    stamp.write_text(fingerprint)
    return out


def stack_templates(assembly: Path) -> dict[str, dict]:
    """Stack name -> template, for every stack artifact in the assembly."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    templates = {}
    for artifact in manifest["artifacts"].values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        props = artifact["properties"]
        name = props.get("stackName")
        templates[name] = json.loads((assembly / props["templateFile"]).read_text())
    return templates


def bootstrap_needed(settings: Settings) -> bool:
    cfn = settings.client("cloudformation")
    try:
        stacks = cfn.describe_stacks(StackName="CDKToolkit")["Stacks"]
    except cfn.exceptions.ClientError:
        return True
    return not stacks or stacks[0]["StackStatus"] not in DONE


def deploy(settings: Settings, say) -> Path:
    assembly = synthesize(settings, say)
    if bootstrap_needed(settings):
        run_cli(["cdk", "bootstrap", f"aws://{ACCOUNT}/{REGION}", "--app", str(assembly)], settings, say, 300)
    else:
        say("CDKToolkit stack present: bootstrap skipped")
    run_cli(
        [
            "cdk",
            "deploy",
            "--all",
            "--app",
            str(assembly),
            "--require-approval",
            "never",
            "--concurrency",
            "3",
            "--method",
            "direct",
            "--progress",
            "events",
        ],
        settings,
        say,
        settings.deploy_timeout,
    )
    return assembly


def verify(settings: Settings, assembly: Path) -> list[StackReport]:
    """Every stack complete, holding every resource of its template (conditions aside)."""
    cfn = settings.client("cloudformation")
    reports = []
    for name, template in stack_templates(assembly).items():
        declared = {
            logical_id for logical_id, resource in template.get("Resources", {}).items() if "Condition" not in resource
        }
        status = cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
        deployed = {}
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=name):
            for summary in page["StackResourceSummaries"]:
                deployed[summary["LogicalResourceId"]] = summary["ResourceStatus"]
        missing = sorted(lid for lid in declared if deployed.get(lid) not in RESOURCE_DONE)
        reports.append(StackReport(name, status, len(declared), len(deployed), missing))
    return reports
