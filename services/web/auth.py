"""Sign-in with Amazon Cognito, server-side: the web tier holds no password and no user table.

`POST /login` hands the user name and password to Cognito's InitiateAuth (USER_PASSWORD_AUTH, the
app client has no secret) and verifies the ID token it gets back (contracts/identity.py) before it
opens a session. The user pool and app client are found through discovery (`user-pool-id`,
`user-pool-client-id`, written by the Identity stack), so a replaced pool is followed within the
discovery TTL.

Nothing about the user reaches a log here: not the name, not the password, not the token.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from contracts.identity import Identity, IdTokenVerifier, InvalidToken
from services.common.discovery import Discovery

logger = logging.getLogger("web.auth")
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=3, read_timeout=10)
# What Cognito answers for wrong credentials and locked or unconfirmed users: all the same to the client.
_REFUSED = {
    "NotAuthorizedException",
    "UserNotFoundException",
    "UserNotConfirmedException",
    "PasswordResetRequiredException",
}


class SignInRefused(Exception):
    """Wrong user name or password (or a user who may not sign in): a 401, with no detail."""


class IdentityUnavailable(Exception):
    """Cognito (or its key set) could not be reached: a 503, try again."""


@dataclass(frozen=True)
class SignedIn:
    identity: Identity
    id_token: str


class CognitoSignIn:
    def __init__(self, discovery: Discovery, *, jwks_endpoint: str | None = None, client: Any = None) -> None:
        self._discovery = discovery
        self._jwks_endpoint = jwks_endpoint
        self._client = client
        self._lock = threading.Lock()
        self._verifier: IdTokenVerifier | None = None

    def _cognito(self) -> Any:
        if self._client is None:
            self._client = boto3.client("cognito-idp", config=_BOTO_CONFIG)
        return self._client

    def verifier(self) -> IdTokenVerifier:
        """The verifier of the pool and client discovery names now (a new one when either changed)."""
        pool_id, client_id = self._discovery.get("user-pool-id"), self._discovery.get("user-pool-client-id")
        with self._lock:
            current = self._verifier
            if current is None or (current.user_pool_id, current.client_id) != (pool_id, client_id):
                current = self._verifier = IdTokenVerifier(
                    user_pool_id=pool_id, client_id=client_id, jwks_endpoint=self._jwks_endpoint
                )
            return current

    def sign_in(self, username: str, password: str) -> SignedIn:
        verifier = self.verifier()
        try:
            answer = self._cognito().initiate_auth(
                ClientId=verifier.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in _REFUSED:
                raise SignInRefused from None
            logger.error("cognito sign-in failed", extra={"error_code": code})
            raise IdentityUnavailable(code) from None
        except BotoCoreError as error:
            logger.error("cognito unreachable", extra={"error": type(error).__name__})
            raise IdentityUnavailable(type(error).__name__) from None
        result = answer.get("AuthenticationResult")
        if not result:  # a challenge (new password, MFA) that this sign-in form does not take
            raise SignInRefused
        token = result["IdToken"]
        try:
            identity = verifier.verify(token)
        except InvalidToken as error:
            logger.error("cognito returned a token that does not verify", extra={"error": type(error).__name__})
            raise IdentityUnavailable("invalid token") from None
        except Exception as error:  # the JWKS could not be fetched
            logger.error("cognito key set unreachable", extra={"error": type(error).__name__})
            raise IdentityUnavailable("jwks") from None
        return SignedIn(identity=identity, id_token=token)
