"""ID-token verification (contracts/identity.py) with real crypto: RSA keys made here, the JWKS served over
HTTP to PyJWT's PyJWKClient as Cognito serves it, tokens signed with PyJWT. Nothing is mocked."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from contracts.identity import ExpiredToken, IdTokenVerifier, InvalidToken, issuer, jwks_url, region_of

POOL = "eu-west-1_TestPool1"
CLIENT = "storefront-web-client"
KID = "key-1"
NO_USER_NAME: dict[str, Any] = {"cognito:username": None}


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


SIGNING_KEY = _key()
OTHER_KEY = _key()


class _Jwks(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:
        _Jwks.requests.append(self.path)
        if self.path != f"/{POOL}/.well-known/jwks.json":
            self.send_error(404)
            return
        public = json.loads(RSAAlgorithm.to_jwk(SIGNING_KEY.public_key()))
        body = json.dumps({"keys": [{**public, "kid": KID, "alg": "RS256", "use": "sig"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def verifier(endpoint: str) -> IdTokenVerifier:
    return IdTokenVerifier(user_pool_id=POOL, client_id=CLIENT, jwks_endpoint=endpoint)


def token(
    key: Any = SIGNING_KEY, *, headers: dict[str, Any] | None = None, algorithm: str = "RS256", **changes: Any
) -> str:
    now = int(time.time())
    claims = {
        "sub": "5b6c-alice",
        "iss": issuer(POOL),
        "aud": CLIENT,
        "token_use": "id",
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
        "cognito:username": "alice",
        **changes,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": KID, **(headers or {})})


def test_addresses_follow_cognito():
    assert region_of(POOL) == "eu-west-1"
    assert issuer(POOL) == f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}"
    assert jwks_url(POOL) == f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}/.well-known/jwks.json"
    assert jwks_url(POOL, "http://127.0.0.1:4566/") == f"http://127.0.0.1:4566/{POOL}/.well-known/jwks.json"
    with pytest.raises(ValueError):
        region_of("nounderscore")


def test_a_valid_id_token_names_the_customer(verifier):
    identity = verifier.verify(token())
    assert identity.customer == "alice"
    assert identity.expires_at > time.time() and identity.claims["sub"] == "5b6c-alice"
    assert _Jwks.requests[-1] == f"/{POOL}/.well-known/jwks.json"


def test_an_expired_token_is_told_apart(verifier):
    with pytest.raises(ExpiredToken):
        verifier.verify(token(exp=int(time.time()) - 60))


@pytest.mark.parametrize(
    "forged",
    [
        pytest.param(lambda: token(OTHER_KEY), id="signed-with-another-key"),
        pytest.param(lambda: token(aud="another-client"), id="another-audience"),
        pytest.param(lambda: token(iss=issuer("eu-west-1_OtherPool")), id="another-pool"),
        pytest.param(lambda: token(token_use="access"), id="an-access-token"),
        pytest.param(lambda: token(**NO_USER_NAME), id="no-user-name"),
        pytest.param(lambda: token(exp=None), id="no-expiry"),
        pytest.param(lambda: token(headers={"kid": "unknown"}), id="unknown-key-id"),
        pytest.param(lambda: token("shared-secret-of-32-bytes-or-more!!", algorithm="HS256"), id="hs256"),
        pytest.param(lambda: token()[:-4] + "AAAA", id="tampered-signature"),
        pytest.param(lambda: "not-a-jwt", id="garbage"),
    ],
)
def test_anything_else_is_refused(verifier, forged):
    with pytest.raises(InvalidToken) as refused:
        verifier.verify(forged())
    assert not isinstance(refused.value, ExpiredToken)
