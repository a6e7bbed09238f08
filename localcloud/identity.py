"""The demo users of the local cloud, created in the Identity stack's Cognito user pool after the deploy.

They live in Cognito only: the web tier stores no passwords (services/web/auth.py). The passwords pass
the pool's policy (stacks/identity_stack.py: 12+ characters, upper and lower case, a digit, a symbol).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from localcloud.settings import Settings

# The README lists them. Demo credentials of an emulator, never of a real account.
DEMO_USERS: dict[str, str] = {"alice": "Wonderland-2026!", "bob": "Builder-2026-x!"}


def user_pool_id(settings: Settings) -> str:
    """The pool the Identity stack published (SSM discovery parameter `user-pool-id`)."""
    name = f"{settings.discovery_prefix}/user-pool-id"
    return settings.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]


def ensure_demo_users(settings: Settings, say) -> list[str]:
    """Create each demo user with a permanent password (idempotent: an existing user gets its password
    set again). Returns the user names."""
    cognito, pool = settings.client("cognito-idp"), user_pool_id(settings)
    for name, password in DEMO_USERS.items():
        try:
            cognito.admin_create_user(UserPoolId=pool, Username=name, MessageAction="SUPPRESS")
        except ClientError as error:
            if error.response["Error"]["Code"] != "UsernameExistsException":
                raise
        cognito.admin_set_user_password(UserPoolId=pool, Username=name, Password=password, Permanent=True)
    say(f"demo users in the Cognito user pool {pool}: {', '.join(DEMO_USERS)}")
    return list(DEMO_USERS)
