"""Launcher for MiniStack: install the compatibility shims, then serve on 127.0.0.1 only.

Runs with the separate .venv-cloud interpreter (MiniStack pins botocore exactly, which clashes with
the project's boto3): `.venv-cloud/bin/python -m localcloud.emulator`. `localcloud up` starts it in
the background; run it by hand to watch the emulator's log in the foreground.

MiniStack reads its settings from the environment when it is imported, so they are set first:
- BIND_HOST=127.0.0.1: nothing listens beyond this machine (MiniStack's default is 0.0.0.0).
- REDIS_HOST/REDIS_PORT: without Docker, MiniStack's ElastiCache answers with this endpoint, so the
  replication group's address is the real redis-server `localcloud up` started.
- LAMBDA_EXECUTOR=local: Python functions run in worker processes of this interpreter (3.11), which
  is why the `local` stage bundles the dependency layer for python3.11/x86_64.
- LAMBDA_WARM_TTL_SECONDS: workers are never reaped while the local cloud runs.
"""

from __future__ import annotations

import logging
import os
import sys

DEFAULT_PORT = 4566


def configure_environment(port: int, redis_host: str, redis_port: int) -> None:
    os.environ["GATEWAY_PORT"] = str(port)
    os.environ["BIND_HOST"] = "127.0.0.1"
    # Host name MiniStack writes into URLs it hands out (custom-resource response URLs, queue URLs).
    os.environ.setdefault("MINISTACK_HOST", "127.0.0.1")
    os.environ["REDIS_HOST"] = redis_host
    os.environ["REDIS_PORT"] = str(redis_port)
    os.environ.setdefault("LAMBDA_EXECUTOR", "local")
    os.environ.setdefault("MINISTACK_REGION", "us-east-1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Idle workers live as long as the local cloud (a week): re-initialising one costs a second or more
    # of the two cores everything shares, while an idle worker costs memory only (localcloud/lambda_pool.py).
    os.environ.setdefault("LAMBDA_WARM_TTL_SECONDS", str(7 * 24 * 3600))


def main() -> None:
    port = int(os.environ.get("LOCALCLOUD_PORT", DEFAULT_PORT))
    configure_environment(
        port,
        os.environ.get("LOCALCLOUD_REDIS_HOST", "127.0.0.1"),
        int(os.environ.get("LOCALCLOUD_REDIS_PORT", "6379")),
    )
    from localcloud import cdn, compat

    installed = compat.install()
    patched = compat.install_runtime_patches()
    viewer_port = int(os.environ.get("LOCALCLOUD_STOREFRONT_PORT", cdn.DEFAULT_VIEWER_PORT))
    cdn.install_viewer(viewer_port)
    logging.basicConfig(level=logging.WARNING)
    print(f"localcloud: compatibility shims installed: {', '.join(installed) or 'none'}", flush=True)
    print(f"localcloud: runtime patches installed: {', '.join(patched)}", flush=True)
    print(f"localcloud: storefront viewer endpoint on 127.0.0.1:{viewer_port}", flush=True)

    from ministack.app import main as serve

    sys.argv = [sys.argv[0]]  # MiniStack's own CLI flags (--detach/--stop) are not used here
    serve()


if __name__ == "__main__":
    main()
