"""`$connect` REQUEST authorizer of the live-status WebSocket API: the Cognito ID token in `?token=`
(browsers cannot set headers on a WebSocket) is verified with PyJWT against the pool's JWKS
(contracts/identity.py). Allowed: the customer's name is the authorizer context every route of the
connection sees. Anything else: Deny (API Gateway answers 403 and opens no socket)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from contracts.identity import IdTokenVerifier, InvalidToken
from plumbing.aws import env

logger = Logger()
# The JWKS comes from the emulator when the SDK is pointed at one (AWS_ENDPOINT_URL is never set on AWS).
verifier = IdTokenVerifier(
    user_pool_id=env("USER_POOL_ID"),
    client_id=env("USER_POOL_CLIENT_ID"),
    jwks_endpoint=os.environ.get("AWS_ENDPOINT_URL") or None,
)


def _policy(effect: str, resource: str, principal: str, context: dict[str, str] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
    }
    if context:
        answer["context"] = context
    return answer


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token") or ""
    resource = event.get("methodArn", "*")
    try:
        identity = verifier.verify(token)
    except InvalidToken as error:
        logger.info("connection refused", extra={"reason": type(error).__name__})  # never the token itself
        return _policy("Deny", resource, "anonymous")
    return _policy("Allow", resource, identity.customer, {"customer": identity.customer})
