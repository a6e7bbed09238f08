"""Start (or reuse) the two servers the local cloud runs on: MiniStack and redis-server.

A server already answering on its port is reused and left running by `down` (it is not ours);
one that `up` started has a pid file under .localcloud/ and `down` stops it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sys
import time
import urllib.request
from pathlib import Path

from localcloud import compat
from localcloud.processes import ManagedProcess, port_open, wait_until
from localcloud.settings import CLOUD_PYTHON, ROOT, Settings

EMULATOR = "ministack"
REDIS = "redis"


def _redis_command(host: str, port: int, *args: str, timeout: float = 1.0) -> bytes | None:
    """Send one command in RESP (no client library: this runs before anything else is set up);
    return the first reply line, or None if nothing answers."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args
    )
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(payload)
            return sock.recv(256).split(b"\r\n", 1)[0]
    except OSError:
        return None


def redis_ping(host: str, port: int) -> bool:
    """True if a Redis server answers on the port (PONG, or NOAUTH when it requires a password)."""
    reply = _redis_command(host, port, "PING")
    return reply is not None and (reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH"))


def _redis_accepts(settings: Settings, password: str | None) -> bool:
    """True if the server serves a client that authenticates with `password` (None: no AUTH)."""
    if password is None:
        return (_redis_command(settings.host, settings.redis_port, "PING") or b"").startswith(b"+PONG")
    return (_redis_command(settings.host, settings.redis_port, "AUTH", password) or b"").startswith(b"+OK")


def _start_redis(settings: Settings, password: str | None, say) -> None:
    binary = shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server not found: run `make redis` (apt-get install redis-server)")
    # Sessions and carts survive a restart, as a replicated ElastiCache node keeps them through a node
    # replacement: an append-only file under the state directory (`localcloud down --reset` removes it).
    # The AUTH token goes in a private config file, not on the command line.
    conf = settings.state_dir / "redis.conf"
    conf.write_text("")
    conf.chmod(0o600)
    data = redis_data_dir(settings)
    data.mkdir(parents=True, exist_ok=True)
    lines = [
        f"bind {settings.host}",
        f"port {settings.redis_port}",
        'save ""',
        f"dir {data}",
        "appendonly yes",
        "appendfsync everysec",
        "protected-mode yes",
        "daemonize no",
        "loglevel warning",
    ]
    if password:
        lines.append(f"requirepass {_redis_quoted(password)}")
    conf.write_text("\n".join(lines) + "\n")
    proc = ManagedProcess(REDIS, settings.state_dir)
    proc.start([binary, str(conf)], env={"PATH": "/usr/bin:/bin"}, cwd=settings.state_dir)
    wait_until(
        lambda: proc.require_running() and _redis_accepts(settings, password), settings.start_timeout, "redis-server"
    )
    say(
        f"redis-server started on {settings.host}:{settings.redis_port} (pid {proc.pid()}"
        f"{', AUTH token of the Sessions stack' if password else ''})"
    )


def redis_data_dir(settings: Settings) -> Path:
    return settings.state_dir / "redis-data"


def emulator_state_dirs(settings: Settings) -> list[Path]:
    """Where MiniStack keeps its state between runs (service records; S3 object bodies)."""
    return [settings.state_dir / "ministack-state", settings.state_dir / "ministack-s3"]


def _redis_quoted(value: str) -> str:
    """A redis.conf string argument: double-quoted, backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ensure_redis(settings: Settings, say, password: str | None = None) -> str:
    """A redis-server on the configured port that accepts `password` (the ElastiCache AUTH token the
    app deployed, so the tiers authenticate exactly as on AWS). Returns 'started', 'reconfigured' (a
    running server given the token) or 'reused'."""
    ours = ManagedProcess(REDIS, settings.state_dir)
    if redis_ping(settings.host, settings.redis_port):
        if _redis_accepts(settings, password):
            say(f"redis-server already answering on {settings.host}:{settings.redis_port}: reusing it")
            return "reused"
        if ours.alive():  # ours, from a deployment whose token has since been regenerated
            ours.stop()
            _start_redis(settings, password, say)
            return "started"
        if password and _redis_accepts(settings, None):
            _redis_command(settings.host, settings.redis_port, "CONFIG", "SET", "requirepass", password)
            if _redis_accepts(settings, password):
                say(
                    f"redis-server on {settings.host}:{settings.redis_port} reused; AUTH token of the Sessions stack set"
                )
                return "reconfigured"
        raise RuntimeError(
            f"the redis-server on port {settings.redis_port} was not started by localcloud and does not accept "
            "the Sessions stack's AUTH token; stop it or set LOCALCLOUD_REDIS_PORT"
        )
    if port_open(settings.host, settings.redis_port):
        raise RuntimeError(
            f"port {settings.redis_port} is taken by something that is not Redis; set LOCALCLOUD_REDIS_PORT"
        )
    _start_redis(settings, password, say)
    return "started"


def redis_auth_token(settings: Settings) -> str | None:
    """The Sessions stack's AUTH token, found the way the tiers find it (SSM -> Secrets Manager)."""
    ssm = settings.client("ssm")
    try:
        arn = ssm.get_parameter(Name=f"{settings.discovery_prefix}/redis-auth-secret-arn")["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    secret = settings.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    try:
        document = json.loads(secret)
    except ValueError:
        return secret
    return next((str(document[k]) for k in ("password", "authToken", "token") if document.get(k)), secret)


def emulator_health(settings: Settings) -> dict | None:
    try:
        with urllib.request.urlopen(f"{settings.endpoint}/_ministack/health", timeout=2) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def shims_active(settings: Settings) -> list[str]:
    """Shimmed types the running emulator does NOT accept (empty: all shims active).

    Asks the emulator's own CloudFormation ValidateTemplate, which rejects unregistered types,
    so a MiniStack started without localcloud.emulator is detected before a deploy half-fails.
    """
    cfn = settings.client("cloudformation")
    missing = []
    for resource_type in compat.SHIMMED_TYPES:
        body = json.dumps({"Resources": {"Probe": {"Type": resource_type, "Properties": {}}}})
        try:
            cfn.validate_template(TemplateBody=body)
        except cfn.exceptions.ClientError as error:
            if "Unrecognized resource types" in str(error):
                missing.append(resource_type)
    return missing


def clear_scratch(settings: Settings) -> None:
    """MiniStack unpacks code + layer (~65 MB) into TMPDIR for every Lambda worker it spawns and does
    not remove them all; the directory belongs to one emulator run, so it is emptied around each."""
    scratch = settings.state_dir / "tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True, exist_ok=True)


def lambda_pool_status_file(settings: Settings) -> Path:
    return settings.state_dir / "lambda-pool.json"


def wait_for_warm_functions(settings: Settings, since: float, say, timeout: float = 90.0) -> float:
    """Wait until the emulator's warm-up thread (localcloud/lambda_pool.py) has a worker for every app
    function, as reported after `since` (epoch seconds: the end of the deploy). Returns the seconds
    waited; a timeout only says so, since a cold worker is slower, not broken."""
    from localcloud import lambda_pool

    started = time.monotonic()
    path = lambda_pool_status_file(settings)
    while time.monotonic() - started < timeout:
        status = lambda_pool.read_status(path)
        if status and status["at"] > since and status["cold"] == 0:
            return time.monotonic() - started
        time.sleep(0.25)
    say(f"some Lambda functions were still cold after {timeout:.0f}s; the first invocations start them")
    return time.monotonic() - started


def _launcher_fingerprint() -> str:
    """Hash of the launcher and its shims: an emulator of ours started from other code is restarted."""
    digest = hashlib.sha256()
    for module in (
        "compat.py",
        "emulator.py",
        "lambda_pool.py",
        "supervisor.py",
        "health.py",
        "scaling.py",
        "cdn.py",
        "processes.py",
    ):
        digest.update((Path(__file__).parent / module).read_bytes())
    return digest.hexdigest()


def instance_environment(settings: Settings) -> dict[str, str]:
    """What a tier instance gets on top of its launch template's environment: on AWS the instance
    profile, IMDS and DNS provide these; locally they point at the emulator."""
    return {
        **settings.aws_env(),
        # The local ALB data plane listens on the emulator's port and tells load balancers apart by
        # the Host header (services/web/backend_client.py).
        "ALB_GATEWAY": f"{settings.host}:{settings.port}",
        # The local ElastiCache endpoint is a plain redis-server: no TLS in transit (README, honest gaps).
        "REDIS_TLS": "false",
        # MiniStack signs Cognito tokens with the AWS issuer but serves the pool's JWKS itself, and serves
        # WebSocket APIs under /_aws/execute-api/<id>/<stage> (services/common/settings.py).
        "COGNITO_JWKS_ENDPOINT": settings.endpoint,
        "EXECUTE_API_ENDPOINT": settings.endpoint,
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def ensure_emulator(settings: Settings, say) -> str:
    """Return 'reused' or 'started'."""
    health = emulator_health(settings)
    ours = ManagedProcess(EMULATOR, settings.state_dir)
    fingerprint_file = settings.state_dir / "ministack.fingerprint"
    if health is not None and ours.alive():
        recorded = fingerprint_file.read_text() if fingerprint_file.exists() else ""
        if recorded != _launcher_fingerprint():
            say("MiniStack was started with an older compatibility layer: restarting it (its state is kept)")
            ours.stop()
            health = None
    if health is not None:
        missing = shims_active(settings)
        if missing:
            raise RuntimeError(
                f"a MiniStack on port {settings.port} was not started by localcloud (it lacks the shims for "
                f"{', '.join(missing)}); stop it or set LOCALCLOUD_PORT to another port"
            )
        say(f"MiniStack {health.get('version', '?')} already running at {settings.endpoint}: reusing it")
        return "reused"
    if port_open(settings.host, settings.port):
        raise RuntimeError(f"port {settings.port} is taken by something that is not MiniStack; set LOCALCLOUD_PORT")
    if not CLOUD_PYTHON.exists():
        raise RuntimeError(f"{CLOUD_PYTHON} missing: run `make setup` (MiniStack lives in its own venv)")
    proc = ours
    env = {
        "PATH": settings.cli_env()["PATH"],  # Node 22 first: MiniStack runs Node custom-resource handlers with it
        "HOME": str(settings.state_dir),
        "TMPDIR": str(settings.state_dir / "tmp"),
        "LOCALCLOUD_PORT": str(settings.port),
        "LOCALCLOUD_REDIS_HOST": settings.host,
        "LOCALCLOUD_REDIS_PORT": str(settings.redis_port),
        "LOCALCLOUD_STOREFRONT_PORT": str(settings.storefront_port),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LOCALCLOUD_LAMBDA_POOL_STATUS": str(lambda_pool_status_file(settings)),
        # State survives a graceful stop (saved on SIGTERM, restored at start): records of every service,
        # S3 object bodies on disk. Kept out of tmp/, which is emptied around each run.
        "PERSIST_STATE": "1",
        "STATE_DIR": str(emulator_state_dirs(settings)[0]),
        "S3_PERSIST": "1",
        "S3_DATA_DIR": str(emulator_state_dirs(settings)[1]),
        # The supervisor (localcloud/supervisor.py) runs the tier instances with the project's
        # interpreter, its log and the instances' logs under the state directory.
        "LOCALCLOUD_STATE_DIR": str(settings.state_dir),
        "LOCALCLOUD_INSTANCE_PYTHON": sys.executable,
        "LOCALCLOUD_INSTANCE_ENV": json.dumps(instance_environment(settings)),
    }
    clear_scratch(settings)
    proc.start([str(CLOUD_PYTHON), "-m", "localcloud.emulator"], env=env, cwd=ROOT)
    fingerprint_file.write_text(_launcher_fingerprint())
    wait_until(
        lambda: proc.require_running() and emulator_health(settings) is not None,
        settings.start_timeout,
        "MiniStack health endpoint",
    )
    say(f"MiniStack started at {settings.endpoint} (pid {proc.pid()}, log {proc.log_file.relative_to(ROOT)})")
    return "started"
