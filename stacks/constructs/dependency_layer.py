"""The Lambda dependency layer: `lambdas/requirements.txt` pip-installed for the stage's runtime.

Bundling runs locally with pip for the target platform (`platform_pip`: manylinux wheels for the
Lambda architecture, the runtime's Python version, binary wheels only), so a laptop on any OS
produces a layer that imports on Lambda. The asset hash is computed from the requirements file plus
the runtime and architecture, before bundling, so a synth whose cdk.out already holds that layer
skips pip entirely.

Two things make every cold start cheaper (each new execution environment unpacks the layer and
imports from it):
- What the Lambda Python runtime already ships (boto3 and botocore with their own dependencies) is
  removed after pip: botocore alone is 30 of the layer's 45 MB, pulled in by the X-Ray SDK. The
  Powertools layer AWS publishes leaves boto3 out for the same reason.
- The layer carries bytecode compiled for the runtime's Python (`unchecked-hash` .pyc: valid whatever
  mtimes the unzipped files get, and the layer never changes once published), so a cold start does
  not compile every module again; `/opt` is read-only, so it could not keep what it compiled anyway.
  Bytecode can only be compiled by that Python version: a synth running another version leaves it out.
"""

from __future__ import annotations

import compileall
import importlib.metadata
import py_compile
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.constructs import platform_pip
from stacks.constructs.source_tree import REPO_ROOT

LAMBDAS_DIR = REPO_ROOT / "lambdas"
REQUIREMENTS_FILE = "requirements.txt"
# boto3 and its dependency closure: what every Lambda Python runtime provides (and what the local cloud's
# worker interpreter has). Anything else the requirements pull in stays in the layer.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
# Names what `finish_layer` does, in the pip-result cache key: change it when `finish_layer` changes.
FINISH_KEY = "finish-layer/v1: drop runtime-provided, compile unchecked-hash"


def drop_runtime_provided(site: Path) -> list[str]:
    """Delete the distributions of RUNTIME_PROVIDED installed in `site`, file by file as their RECORD
    lists them (no globbing: a package that merely shares a prefix stays). Returns what was removed."""
    removed = []
    for dist in importlib.metadata.distributions(path=[str(site)]):
        name, version = dist.metadata["Name"], dist.version
        if name.lower().replace("_", "-") not in RUNTIME_PROVIDED:
            continue
        for file in dist.files or ():
            (site / file).unlink(missing_ok=True)
        removed.append(f"{name}=={version}")
    for directory in sorted((d for d in site.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
        if not any(directory.iterdir()):
            directory.rmdir()  # the packages' now empty directories
    return sorted(removed)


def can_compile_for(version: str) -> bool:
    """Bytecode for Python `version` ("3.11") can only be written by that version's interpreter."""
    return f"{sys.version_info.major}.{sys.version_info.minor}" == version


def compile_for(site: Path, version: str) -> bool:
    """Compile `site` to unchecked-hash bytecode when this interpreter is the target `version`;
    False (nothing written) otherwise, since bytecode of another version would never be read."""
    if not can_compile_for(version):
        return False
    ok = compileall.compile_dir(
        site, quiet=2, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    if not ok:
        raise RuntimeError(f"could not compile the dependency layer in {site}")
    return True


@jsii.implements(cdk.ILocalBundling)
class PipLocalBundler:
    """CDK local bundler: installs the requirements into `<output>/python` (the directory Lambda
    adds to `sys.path` for a layer). Raises when pip fails, so a broken pin fails the synth."""

    def __init__(self, requirements: Path, *, platform: str, version: str) -> None:
        self.requirements = requirements
        self.platform = platform
        self.version = version

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: object) -> bool:
        target = Path(output_dir) / "python"
        try:
            platform_pip.run_pip_cached(
                lambda into: platform_pip.pip_install_command(
                    self.requirements, into, platform=self.platform, version=self.version
                ),
                target,
                requirements=self.requirements,
                what="build the dependency layer",
                finish=self.finish,
                finish_key=f"{FINISH_KEY} for {sys.version_info.major}.{sys.version_info.minor}",
            )
        except RuntimeError:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return True

    def finish(self, site: Path) -> None:
        drop_runtime_provided(site)
        compile_for(site, self.version)


@dataclass(frozen=True)
class DependencyLayerProps:
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    source_dir: Path = LAMBDAS_DIR  # a directory holding `requirements.txt`


class DependencyLayer(Construct):
    """One LayerVersion with every third-party package the functions import. `.layer` is what
    functions attach; code and dependencies are separate assets so a code change never re-runs pip."""

    def __init__(self, scope: Construct, construct_id: str, *, props: DependencyLayerProps) -> None:
        super().__init__(scope, construct_id)
        requirements = props.source_dir / REQUIREMENTS_FILE
        if not requirements.is_file():
            raise FileNotFoundError(f"{requirements}: the dependency layer needs a requirements file")
        platform = platform_pip.manylinux_platform(props.architecture)
        version = platform_pip.python_version(props.runtime)
        self.code = lambda_.Code.from_asset(
            str(props.source_dir),
            # Only requirements.txt is the layer's source: the SOURCE hash then changes with the pins
            # alone, and the bundling options below add the runtime and architecture to it.
            exclude=["*", f"!{REQUIREMENTS_FILE}"],
            asset_hash_type=cdk.AssetHashType.SOURCE,
            bundling=cdk.BundlingOptions(
                image=props.runtime.bundling_image,
                # Docker fallback (never used while the local bundler succeeds): same install, in
                # the runtime's own build image, so it needs no platform flags.
                command=[
                    "bash",
                    "-c",
                    f"pip install -r {REQUIREMENTS_FILE} -t /asset-output/python --only-binary=:all: --no-compile -q"
                    " && cd /asset-output/python && rm -rf boto3* botocore* s3transfer* jmespath* dateutil"
                    " python_dateutil* six* urllib3*"
                    " && python -m compileall -q --invalidation-mode unchecked-hash .",
                ],
                # Inputs of the asset hash: a layer with bytecode is another layer than one without.
                environment={
                    "LAYER_PLATFORM": platform,
                    "LAYER_PYTHON_VERSION": version,
                    "LAYER_BYTECODE": "unchecked-hash" if can_compile_for(version) else "none",
                },
                local=PipLocalBundler(requirements, platform=platform, version=version),
            ),
        )
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=self.code,
            compatible_runtimes=[props.runtime],
            compatible_architectures=[props.architecture],
            description=f"{props.source_dir.name}/{REQUIREMENTS_FILE} for {props.runtime.name} on {platform}",
        )
