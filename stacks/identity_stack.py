"""Who the customers are: an Amazon Cognito user pool and the storefront's app client (seed 002: "user
authentication and user state storage are handled by managed AWS services").

Stateful (the users), so a stack of its own that the web tier, the REST API and the live-status
WebSocket API are handed; it changes only when the sign-in policy does.

- Strong passwords (12+ characters, all four character classes), no self sign-up (the storefront
  creates its customers; the local cloud its demo users, localcloud/identity.py).
- The Plus feature plan with threat protection enforced: compromised-credential checks and adaptive
  authentication block risky sign-ins (cdk-nag COG8).
- TOTP MFA available to every user but not required (acknowledged below: the sign-in form takes no
  second factor yet).
- One app client, no secret: the web tier signs in server-side with USER_PASSWORD_AUTH (InitiateAuth)
  and SRP is allowed for a browser-side sign-in later; a secret would add a credential to store and
  rotate on every web instance and buys nothing against a caller who already has the password.
  `preventUserExistenceErrors` hides which user names exist. ID tokens live 1 hour: the web tier's
  session ends with its token (services/web/app.py).
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.config import StageConfig
from stacks.constructs.discovery import publish
from stacks.nag import acknowledge
from stacks.stage_defaults import removal_policy

PASSWORD_MIN_LENGTH = 12
ID_TOKEN_VALIDITY = Duration.hours(1)


class IdentityStack(Stack):
    """`.user_pool`, `.web_client` (the app client the web tier and the authorizers trust)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.user_pool = cognito.UserPool(
            self,
            "Customers",
            user_pool_name=config.stack_name("customers"),
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(username=True),
            sign_in_case_sensitive=False,
            password_policy=cognito.PasswordPolicy(
                min_length=PASSWORD_MIN_LENGTH,
                require_lowercase=True,
                require_uppercase=True,
                require_digits=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            deletion_protection=not config.destroy_on_delete,
            removal_policy=removal_policy(config),
        )
        acknowledge(
            self.user_pool,
            "AwsSolutions-COG2",
            "MFA is optional (TOTP, no SMS): the storefront's sign-in form does not take a second factor yet, "
            "and the Plus plan's adaptive authentication blocks risky sign-ins meanwhile.",
        )
        self.web_client = self.user_pool.add_client(
            "StorefrontWeb",
            user_pool_client_name=config.stack_name("storefront-web"),
            auth_flows=cognito.AuthFlow(user_password=True, user_srp=True),
            generate_secret=False,
            disable_o_auth=True,  # no hosted UI: the storefront's own page signs in through the web tier
            prevent_user_existence_errors=True,
            enable_token_revocation=True,
            id_token_validity=ID_TOKEN_VALIDITY,
            access_token_validity=ID_TOKEN_VALIDITY,
            refresh_token_validity=Duration.hours(8),
        )

        def discovery(name: str, value: str, description: str) -> ssm.StringParameter:
            return publish(self, config.parameter_name("discovery"), name, value, description)

        discovery("user-pool-id", self.user_pool.user_pool_id, "Cognito user pool of the storefront's customers")
        discovery("user-pool-client-id", self.web_client.user_pool_client_id, "Cognito app client of the web tier")
        CfnOutput(self, "UserPoolId", value=self.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.web_client.user_pool_client_id)
