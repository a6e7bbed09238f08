"""Where the local cloud lives: ports, paths, credentials and the environment its clients get.

Everything binds 127.0.0.1. Override a port with LOCALCLOUD_PORT (MiniStack, default 4566),
LOCALCLOUD_REDIS_PORT (default 6379) or LOCALCLOUD_STOREFRONT_PORT (the storefront's viewer endpoint,
default 8480).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".localcloud"  # pid files, logs, the synthesized cloud assembly
CLOUD_PYTHON = ROOT / ".venv-cloud" / "bin" / "python"
NODE_BIN = ROOT / "node_modules" / ".bin"

STAGE = "local"
ACCOUNT = "000000000000"  # MiniStack's default account, also cdk.json stages.local.account
REGION = "us-east-1"
PREFIX = "lc"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 4566
    redis_port: int = 6379
    # The storefront's address: the emulator's viewer endpoint for the CloudFront distribution (localcloud/cdn.py).
    storefront_port: int = 8480
    state_dir: Path = STATE_DIR
    # Per-step time limits (seconds): nothing waits forever.
    start_timeout: float = 60.0
    deploy_timeout: float = 900.0
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            port=int(os.environ.get("LOCALCLOUD_PORT", 4566)),
            redis_port=int(os.environ.get("LOCALCLOUD_REDIS_PORT", 6379)),
            storefront_port=int(os.environ.get("LOCALCLOUD_STOREFRONT_PORT", 8480)),
        )

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def storefront_url(self) -> str:
        return f"http://{self.host}:{self.storefront_port}/"

    @property
    def cdk_out(self) -> Path:
        return self.state_dir / "cdk.out"

    @property
    def stack_prefix(self) -> str:
        return f"{PREFIX}-{STAGE}"

    @property
    def discovery_prefix(self) -> str:
        return f"/{PREFIX}/{STAGE}/discovery"

    def aws_env(self) -> dict[str, str]:
        """Environment for anything that talks to the emulator: the CDK CLI, boto3, the tier services."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "CDK_DEFAULT_ACCOUNT": ACCOUNT,
            "CDK_DEFAULT_REGION": REGION,
            "CDK_DISABLE_CLI_TELEMETRY": "true",
        }

    def cli_env(self) -> dict[str, str]:
        """The caller's environment with Node 22 / the CDK CLI first on PATH and every AWS profile
        setting that could point a command at a real account removed."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.aws_env())
        env["PATH"] = os.pathsep.join([str(NODE_BIN), str(ROOT / ".venv" / "bin"), os.environ.get("PATH", "")])
        env.update(self.extra_env)
        return env

    def client(self, service: str):
        """A boto3 client for the emulator (never a real account: endpoint and keys are explicit)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60),
        )
