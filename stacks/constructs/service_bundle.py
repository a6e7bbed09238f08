"""The tier services (`services/`) as one S3 asset that installs without internet access.

Private subnets without a NAT gateway reach S3 (and the Amazon Linux repositories on S3) through a
gateway endpoint, but not PyPI. So the asset carries its dependencies: CDK bundles it locally into

    services/    the service packages (`python -m services.web`), without tests and bytecode
    contracts/   the shared order/event models, beside `services/` so the services `import contracts`
    wheels/      every wheel services/requirements.txt needs, for the *instance's* platform

and user data installs them into a venv with `pip install --no-index --find-links wheels`. The
wheels come from pip for the target platform (`platform_pip`: manylinux wheels for the instance
architecture, CPython 3.11, binary wheels only), so a laptop on any OS builds a bundle that installs
on Amazon Linux 2023.

The asset hash is computed before bundling from the shipped files of `services/` and `contracts/`
plus the platform and Python version (`source_tree.content_hash`), so pip runs again only when one
of them changes. When bundling is skipped (`-c aws:cdk:bundling-stacks=[]`, as the infra tests do)
CDK keeps that hash and never calls the bundler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from stacks.constructs import platform_pip
from stacks.constructs.shipping import BUILD_MACHINE_ONLY
from stacks.constructs.source_tree import (
    REPO_ROOT,
    SourceTree,
    SourceTreeBundler,
    app_shared_packages,
    common_root,
    content_hash,
    docker_copy_command,
)

SERVICES_DIR = REPO_ROOT / "services"
REQUIREMENTS_FILE = "requirements.txt"
PACKAGE_DIR = "services"  # inside the bundle: the importable `services` package
WHEELHOUSE_DIR = "wheels"  # inside the bundle: the dependencies, as wheels
# Not shipped: tests, bytecode and caches built on the synthesizing machine (requirements.txt is:
# user data installs from it).
EXCLUDED = BUILD_MACHINE_ONLY
# The interpreter user data installs on Amazon Linux 2023 (`dnf install python3.11`).
INSTANCE_PYTHON = "3.11"


def bundle_trees(source: Path, shared_packages: Sequence[Path]) -> list[SourceTree]:
    """The bundle's source layout: the services as `services/`, each shared package under its own name."""
    return [SourceTree(source, PACKAGE_DIR), *(SourceTree(package, package.name) for package in shared_packages)]


class ServiceBundler(SourceTreeBundler):
    """CDK local bundler: copies the services and the shared packages, then downloads the wheels.
    Raises when pip fails, so an unresolvable pin fails the synth instead of an instance's boot."""

    def __init__(
        self, source: Path, *, platform: str, shared_packages: Sequence[Path], version: str = INSTANCE_PYTHON
    ) -> None:
        self.requirements = source / REQUIREMENTS_FILE
        self.platform = platform
        self.version = version
        super().__init__(bundle_trees(source, shared_packages), EXCLUDED, then=self._download_wheels)

    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **options: object) -> bool:
        if not self.requirements.is_file():
            raise FileNotFoundError(f"{self.requirements}: the tier services need a requirements file")
        return super().try_bundle(output_dir, image=image, **options)

    def _download_wheels(self, output: Path) -> None:
        platform_pip.run_pip_cached(
            lambda into: platform_pip.pip_download_command(
                self.requirements, into, platform=self.platform, version=self.version
            ),
            output / WHEELHOUSE_DIR,
            requirements=self.requirements,
            what="download the tier services' wheels",
        )


@dataclass(frozen=True)
class ServiceBundleProps:
    architecture: ec2.InstanceArchitecture
    source_dir: Path = SERVICES_DIR
    # Top-level packages the services import, shipped beside `services/` (the bundle root is on sys.path).
    shared_packages: tuple[Path, ...] = field(default_factory=app_shared_packages)


class ServiceBundle(Construct):
    """`.asset`: the bundled services. `.add_install_commands(...)` writes the user data that installs
    them, so the bundle's layout is known in this file only."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ServiceBundleProps) -> None:
        super().__init__(scope, construct_id)
        platform = platform_pip.manylinux_platform(props.architecture)
        trees = bundle_trees(props.source_dir, props.shared_packages)
        root = common_root(trees)
        pip_flags = " ".join(platform_pip.target_flags(platform=platform, version=INSTANCE_PYTHON))
        requirements = (props.source_dir / REQUIREMENTS_FILE).relative_to(root).as_posix()
        self.asset = s3_assets.Asset(
            self,
            "Asset",
            # The trees' common parent (Docker mounts it); only the trees below are shipped and hashed.
            path=str(root),
            asset_hash_type=cdk.AssetHashType.CUSTOM,
            asset_hash=content_hash(trees, EXCLUDED, platform, INSTANCE_PYTHON),
            bundling=cdk.BundlingOptions(
                image=lambda_.Runtime.PYTHON_3_11.bundling_image,
                # Docker fallback (used only when the local bundler is unavailable): same layout.
                command=[
                    "bash",
                    "-c",
                    f"{docker_copy_command(trees, EXCLUDED)} && "
                    f"pip download -r /asset-input/{requirements} --dest /asset-output/{WHEELHOUSE_DIR} {pip_flags} -q",
                ],
                environment={"SERVICE_PLATFORM": platform, "SERVICE_PYTHON_VERSION": INSTANCE_PYTHON},
                local=ServiceBundler(props.source_dir, platform=platform, shared_packages=props.shared_packages),
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
