"""The Lambda dependency layer: `lambdas/requirements.txt` pip-installed for the stage's runtime.

Bundling runs locally with pip for the target platform (`platform_pip`: manylinux wheels for the
Lambda architecture, the runtime's Python version, binary wheels only), so a laptop on any OS
produces a layer that imports on Lambda. The asset hash is computed from the requirements file plus
the runtime and architecture, before bundling, so a synth whose cdk.out already holds that layer
skips pip entirely.
"""

from __future__ import annotations

import shutil
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
            )
        except RuntimeError:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return True


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
                    f"pip install -r {REQUIREMENTS_FILE} -t /asset-output/python --only-binary=:all: --no-compile -q",
                ],
                environment={"LAYER_PLATFORM": platform, "LAYER_PYTHON_VERSION": version},
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
