"""The tier services (`services/`) as one S3 asset that installs without internet access.

Private subnets without a NAT gateway reach S3 (and the Amazon Linux repositories on S3) through a
gateway endpoint, but not PyPI. So the asset carries its dependencies: CDK bundles it locally into

    services/   the service packages (`python -m services.web`), without tests and bytecode
    wheels/     every wheel services/requirements.txt needs, for the *instance's* platform

and user data installs them into a venv with `pip install --no-index --find-links wheels`. pip is
told the target platform (manylinux wheels for the instance architecture, CPython 3.11, binary wheels
only), so a laptop on any OS builds a bundle that installs on Amazon Linux 2023.

When bundling is skipped (`-c aws:cdk:bundling-stacks=[]`, as the infra tests do) CDK stages the
source directory unchanged and never calls the bundler.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
REQUIREMENTS_FILE = "requirements.txt"
PACKAGE_DIR = "services"  # inside the bundle: the importable `services` package
WHEELHOUSE_DIR = "wheels"  # inside the bundle: the dependencies, as wheels
# Not shipped: tests, bytecode and caches built on the synthesizing machine.
EXCLUDED = ("tests", "__pycache__", "*.pyc", ".pytest_cache")
# The interpreter user data installs on Amazon Linux 2023 (`dnf install python3.11`).
INSTANCE_PYTHON = "3.11"


def manylinux_platform(architecture: ec2.InstanceArchitecture) -> str:
    """pip `--platform` tag for an instance architecture (AL2023's glibc 2.34 loads manylinux2014 wheels)."""
    machine = "aarch64" if architecture == ec2.InstanceArchitecture.ARM_64 else "x86_64"
    return f"manylinux2014_{machine}"


def wheel_download_command(requirements: Path, dest: Path, *, platform: str, version: str) -> list[str]:
    """`pip download` of binary wheels for the target platform; sdists are refused because they
    would build for the synthesizing machine."""
    return [
        sys.executable, "-m", "pip", "download",
        "-r", str(requirements),
        "--dest", str(dest),
        "--platform", platform,
        "--implementation", "cp",
        "--python-version", version,
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "-q",
    ]


@jsii.implements(cdk.ILocalBundling)
class ServiceBundler:
    """CDK local bundler: copies the services and downloads their wheels. Raises when pip fails,
    so an unresolvable pin fails the synth instead of an instance's boot."""

    def __init__(self, source: Path, *, platform: str, version: str = INSTANCE_PYTHON) -> None:
        self.source = source
        self.platform = platform
        self.version = version

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_options: object) -> bool:
        requirements = self.source / REQUIREMENTS_FILE
        if not requirements.is_file():
            raise FileNotFoundError(f"{requirements}: the tier services need a requirements file")
        output = Path(output_dir)
        shutil.copytree(self.source, output / PACKAGE_DIR, ignore=shutil.ignore_patterns(*EXCLUDED), dirs_exist_ok=True)
        command = wheel_download_command(requirements, output / WHEELHOUSE_DIR, platform=self.platform, version=self.version)
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"pip could not download the tier services' wheels:\n{result.stdout}{result.stderr}")
        return True


@dataclass(frozen=True)
class ServiceBundleProps:
    architecture: ec2.InstanceArchitecture
    source_dir: Path = SERVICES_DIR


class ServiceBundle(Construct):
    """`.asset`: the bundled services. `.add_install_commands(...)` writes the user data that installs
    them, so the bundle's layout is known in this file only."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ServiceBundleProps) -> None:
        super().__init__(scope, construct_id)
        platform = manylinux_platform(props.architecture)
        prune = " ".join(f"-name '{pattern}' -o" for pattern in EXCLUDED).removesuffix(" -o")
        self.asset = s3_assets.Asset(
            self,
            "Asset",
            path=str(props.source_dir),
            exclude=[*EXCLUDED, *(f"**/{pattern}" for pattern in EXCLUDED)],
            # The hash covers the sources and the bundling options (platform, Python version), so
            # pip runs again only when one of them changes.
            asset_hash_type=cdk.AssetHashType.SOURCE,
            bundling=cdk.BundlingOptions(
                image=lambda_.Runtime.PYTHON_3_11.bundling_image,
                # Docker fallback (used only when the local bundler is unavailable): same layout.
                command=[
                    "bash", "-c",
                    f"mkdir -p /asset-output/{PACKAGE_DIR} && cp -r /asset-input/. /asset-output/{PACKAGE_DIR}/ && "
                    f"find /asset-output/{PACKAGE_DIR} \\( {prune} \\) -prune -exec rm -rf {{}} + && "
                    f"pip download -r /asset-input/{REQUIREMENTS_FILE} --dest /asset-output/{WHEELHOUSE_DIR} "
                    f"--platform {platform} --implementation cp --python-version {INSTANCE_PYTHON} "
                    "--only-binary=:all: -q",
                ],
                environment={"SERVICE_PLATFORM": platform, "SERVICE_PYTHON_VERSION": INSTANCE_PYTHON},
                local=ServiceBundler(props.source_dir, platform=platform),
            ),
        )

    def add_install_commands(self, user_data: ec2.UserData, *, root: str, region: str) -> str:
        """Install the interpreter (Amazon Linux 2023 repositories, reached through the S3 gateway
        endpoint), download and unpack the bundle into `root`, install its wheels into `<root>/venv`.
        Returns the venv's python, for the service's ExecStart. The caller grants the S3 read."""
        user_data.add_commands(f"dnf install -y -q python{INSTANCE_PYTHON} python{INSTANCE_PYTHON}-pip unzip")
        archive = user_data.add_s3_download_command(
            bucket=self.asset.bucket,
            bucket_key=self.asset.s3_object_key,
            local_file="/var/tmp/storefront-services.zip",
            region=region,
        )
        user_data.add_commands(
            f"rm -rf {root} && mkdir -p {root}",
            f"unzip -q {archive} -d {root}",
            f"python{INSTANCE_PYTHON} -m venv {root}/venv",
            f"{root}/venv/bin/pip install --no-index --find-links {root}/{WHEELHOUSE_DIR} "
            f"-r {root}/{PACKAGE_DIR}/{REQUIREMENTS_FILE} -q",
        )
        return f"{root}/venv/bin/python"
