"""pip for a target platform: third-party packages for the machine that *runs* the code.

Bundling runs locally with the synthesizing Python's pip (no Docker on developer machines or in CI).
pip is told the target platform - manylinux wheels for the target architecture, the target's
CPython version, binary wheels only - so a laptop on any OS fetches wheels that load on Lambda or
on an Amazon Linux instance. Used by the Lambda dependency layer (`pip install --target`) and the
tier service bundle (`pip download` of a wheelhouse).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_

# manylinux2014 (glibc 2.17) wheels load on every Python runtime Lambda offers (Amazon Linux 2 and
# 2023) and on Amazon Linux 2023 instances (glibc 2.34).
MANYLINUX = "manylinux2014"
# A pip run that takes longer than this is stuck (an unreachable index), not slow.
PIP_TIMEOUT_SECONDS = 900
# Where pip's results are kept between synths (outside any cdk.out, so a fresh clone or a fresh cdk.out
# on the same machine reuses them); STOREFRONT_PIP_CACHE moves it.
CACHE_DIR = Path(os.environ.get("STOREFRONT_PIP_CACHE", Path.home() / ".cache" / "loosely-coupled-aws" / "pip-bundles"))
# No version nagging, no prompts, no progress output in the synth log.
QUIET = ["--disable-pip-version-check", "--no-input", "-q"]


def manylinux_platform(architecture: lambda_.Architecture | ec2.InstanceArchitecture) -> str:
    """pip `--platform` tag for a Lambda architecture or an EC2 instance architecture."""
    if isinstance(architecture, ec2.InstanceArchitecture):
        arm = architecture == ec2.InstanceArchitecture.ARM_64
    else:
        arm = architecture.name == lambda_.Architecture.ARM_64.name
    return f"{MANYLINUX}_{'aarch64' if arm else 'x86_64'}"


def python_version(runtime: lambda_.Runtime) -> str:
    """`python3.14` -> `3.14`: the interpreter version pip resolves wheels for."""
    if not runtime.name.startswith("python"):
        raise ValueError(f"{runtime.name}: pip bundling is for Python runtimes only")
    return runtime.name.removeprefix("python")


def target_flags(*, platform: str, version: str) -> list[str]:
    """The flags that make pip resolve for the target instead of the synthesizing machine.
    `--only-binary` forbids sdists: they would compile for the build machine."""
    return [
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        version,
        "--only-binary=:all:",
    ]


def pip_install_command(requirements: Path, target: Path, *, platform: str, version: str) -> list[str]:
    """Install into `target` (a Lambda layer's `python/`). `--no-compile` keeps host-specific .pyc out."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-r",
        str(requirements),
        "--target",
        str(target),
        *target_flags(platform=platform, version=version),
        "--no-compile",
        *QUIET,
    ]


def pip_download_command(requirements: Path, dest: Path, *, platform: str, version: str) -> list[str]:
    """Download every wheel `requirements` needs into `dest` (a wheelhouse for `--no-index` installs)."""
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "-r",
        str(requirements),
        "--dest",
        str(dest),
        *target_flags(platform=platform, version=version),
        *QUIET,
    ]


def run_pip(command: list[str], *, what: str) -> None:
    """Run a pip command; raise with pip's own output when it fails, so that a pin pip cannot satisfy
    fails the synth instead of producing an empty or partial asset. `what`: "build the dependency layer"."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise RuntimeError(f"pip could not {what}:\n{result.stdout}{result.stderr}")


def cache_key(command: list[str], requirements: Path) -> str:
    """What a pip result depends on: the command (without the interpreter's path, so two checkouts share
    it), the requirements' exact text, and the pip that resolves them."""
    material = [command[1:], requirements.read_text(), importlib.metadata.version("pip")]
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()[:32]


def run_pip_cached(
    build: Callable[[Path], list[str]],
    destination: Path,
    *,
    requirements: Path,
    what: str,
    finish: Callable[[Path], object] | None = None,
    finish_key: str = "",
) -> bool:
    """Run the pip command `build(directory)` once per cache key and copy its result to `destination`.
    `finish(result)` post-processes pip's result before it is cached (`finish_key` names what it does,
    so a change to it is another cache entry). The result is written to a scratch directory and renamed
    into the cache only when pip (and `finish`) succeeded, so a failed or interrupted run leaves nothing
    behind. Returns True when the cache already held it."""
    command = build(Path("<output>"))
    key = cache_key([*command, finish_key] if finish_key else command, requirements)
    cached = CACHE_DIR / key
    hit = cached.is_dir()
    if not hit:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=CACHE_DIR))
        try:
            run_pip(build(scratch / "result"), what=what)
            (scratch / "result").mkdir(exist_ok=True)  # a requirements file may need nothing
            if finish is not None:
                finish(scratch / "result")
            try:
                (scratch / "result").rename(cached)
            except OSError:
                if not cached.is_dir():  # not another synth that got there first
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(cached, destination, dirs_exist_ok=True)
    return hit
