"""Who a customer is: the Amazon Cognito ID token, as the web tier and the WebSocket authorizer check it.

The token crosses three boundaries (Cognito -> web tier -> browser -> WebSocket `$connect`), so it is
verified in one way only, here, with PyJWT and its `PyJWKClient`: RS256 signature against the user
pool's JWKS (keys cached, fetched again for an unknown `kid`), issuer = the pool, audience = the app
client, `token_use` = `id`, and expiry. Nothing is hand-written but the claim names.

Where the keys are: `https://cognito-idp.<region>.amazonaws.com/<pool id>/.well-known/jwks.json` on
AWS. An emulator (MiniStack, moto in server mode) signs with the same issuer but serves the JWKS at
`<its endpoint>/<pool id>/.well-known/jwks.json`: `jwks_endpoint` names that endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

USERNAME_CLAIM = "cognito:username"
ALGORITHMS = ["RS256"]
# Clock skew tolerated between Cognito and the verifier, in seconds.
LEEWAY_SECONDS = 5


class InvalidToken(Exception):
    """The token is not a valid ID token of this pool and client (bad signature, issuer, audience, use)."""


class ExpiredToken(InvalidToken):
    """The token was valid but has expired: sign in again."""


def region_of(user_pool_id: str) -> str:
    """A user pool id is `<region>_<suffix>` (us-east-1_AbC123)."""
    region, sep, _ = user_pool_id.partition("_")
    if not sep or not region:
        raise ValueError(f"not a user pool id: {user_pool_id!r}")
    return region


def issuer(user_pool_id: str) -> str:
    return f"https://cognito-idp.{region_of(user_pool_id)}.amazonaws.com/{user_pool_id}"


def jwks_url(user_pool_id: str, jwks_endpoint: str | None = None) -> str:
    base = (
        jwks_endpoint.rstrip("/") if jwks_endpoint else f"https://cognito-idp.{region_of(user_pool_id)}.amazonaws.com"
    )
    return f"{base}/{user_pool_id}/.well-known/jwks.json"


@dataclass(frozen=True)
class Identity:
    """A verified ID token: the customer (Cognito user name, the orders' `customer_id`) and its expiry."""

    customer: str
    expires_at: int
    claims: dict[str, Any]


class IdTokenVerifier:
    """Verifies ID tokens of one user pool and app client. Thread-safe; keep one per process (the JWKS
    is cached for `jwks_cache_seconds`)."""

    def __init__(
        self,
        *,
        user_pool_id: str,
        client_id: str,
        jwks_endpoint: str | None = None,
        jwks_cache_seconds: int = 3600,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.user_pool_id = user_pool_id
        self.client_id = client_id
        self.issuer = issuer(user_pool_id)
        self.jwks_url = jwks_url(user_pool_id, jwks_endpoint)
        self._keys = jwt.PyJWKClient(self.jwks_url, lifespan=jwks_cache_seconds, timeout=int(timeout_seconds))

    def verify(self, token: str) -> Identity:
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.client_id,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "token_use"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise ExpiredToken("the token has expired") from error
        except jwt.PyJWKClientConnectionError:
            raise  # the key set is unreachable: not the token's fault (the caller answers 503)
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from error
        if claims.get("token_use") != "id":
            raise InvalidToken("not an ID token")
        customer = claims.get(USERNAME_CLAIM)
        if not isinstance(customer, str) or not customer:
            raise InvalidToken(f"the token has no {USERNAME_CLAIM} claim")
        return Identity(customer=customer, expires_at=int(claims["exp"]), claims=claims)
