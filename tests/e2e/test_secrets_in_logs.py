"""After the e2e run, no secret of the deployment is in the local cloud's logs: not the Redis AUTH
token, not the API key value, not a credential-looking value (tests/secret_scan.py).

Named to sort after the other e2e tests, so the logs it reads hold what the whole session wrote:
MiniStack's (every AWS call, Lambda output included) and each tier process's. redis.conf is not a
log: it holds the token on purpose (mode 0600)."""

from __future__ import annotations

import pytest

from localcloud import runtime, tiers
from localcloud.identity import DEMO_USERS
from tests.e2e.harness import Harness
from tests.secret_scan import scan

pytestmark = pytest.mark.e2e


def deployment_secrets(cloud: Harness) -> list[tuple[str, str]]:
    """The values only this deployment knows, read the way its clients read them."""
    token = runtime.redis_auth_token(cloud.settings)
    assert token, "the Sessions stack's AUTH token is deployed"
    api_key = cloud.api.headers["x-api-key"]
    return [("Redis AUTH token", token), ("API key value", api_key)]


def test_no_secret_in_the_local_clouds_logs(store: Harness):
    # Traffic first, so every path that could log a secret has run at least once in this session.
    browser = store.browser()
    assert browser.post("/login", {"username": "alice", "password": DEMO_USERS["alice"]}).status == 200
    status, _ = store.place_order([{"sku": "SKU-TEA-001", "quantity": 1, "unit_price": 8.5}])
    assert status == 202
    # The logs are where the emulator's checkout keeps them (this one, or another that started the cloud):
    # the instances say where their console output goes.
    serving = [i for t in store.result.tiers.values() for i in tiers.instances(store.settings, t, ("InService",))]
    assert serving and all(i.log_file is not None and i.log_file.exists() for i in serving), serving
    state_dir = serving[0].log_file.parent.parent  # type: ignore[union-attr]
    logs = sorted({*state_dir.glob("*.log"), *state_dir.glob("instances/*.log")})
    assert {p.name for p in logs} >= {"ministack.log", "supervisor.log", *(f"{i.instance_id}.log" for i in serving)}
    secrets = deployment_secrets(store)
    findings = [f for path in logs for f in scan(path.read_text(errors="replace"), path.name, secrets)]
    assert findings == [], "\n".join(map(str, findings))
