"""The Cognito user pool and the web tier's app client: strong passwords, threat protection, no
self sign-up, no client secret, the flows the web tier uses and nothing more, short-lived tokens;
discoverable through SSM."""

from __future__ import annotations

import pytest

from stacks.identity_stack import PASSWORD_MIN_LENGTH

STAGES = ["sandbox", "production", "local"]


def _only(template: dict, resource_type: str) -> dict:
    found = [v for v in template["Resources"].values() if v["Type"] == resource_type]
    assert len(found) == 1, resource_type
    return found[0]["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_user_pool_has_a_strong_password_policy_and_threat_protection(stage, request):
    pool = _only(request.getfixturevalue(stage).templates["identity"], "AWS::Cognito::UserPool")
    policy = pool["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] == PASSWORD_MIN_LENGTH >= 12
    assert all(policy[k] is True for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"))
    assert policy["TemporaryPasswordValidityDays"] <= 7
    assert pool["UserPoolTier"] == "PLUS"
    assert pool["UserPoolAddOns"] == {"AdvancedSecurityMode": "ENFORCED"}
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True  # no self sign-up
    assert pool["MfaConfiguration"] == "OPTIONAL" and pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert pool["UsernameConfiguration"] == {"CaseSensitive": False}


@pytest.mark.parametrize("stage", ["sandbox", "production"])
def test_the_pool_has_no_domain_so_isolated_subnets_reach_it_through_privatelink(stage, request):
    """The web tier signs in through the Network stack's cognito-idp endpoint: AWS PrivateLink serves a
    user pool's API only while the pool has no domain (no hosted UI, no OAuth endpoints)."""
    template = request.getfixturevalue(stage).templates["identity"]
    types = {r["Type"] for r in template["Resources"].values()}
    assert "AWS::Cognito::UserPool" in types and "AWS::Cognito::UserPoolDomain" not in types


def test_production_keeps_its_users(production):
    template = production.templates["identity"]
    resource = next(v for v in template["Resources"].values() if v["Type"] == "AWS::Cognito::UserPool")
    assert resource["Properties"]["DeletionProtection"] == "ACTIVE"
    assert resource["DeletionPolicy"] == "Retain"


@pytest.mark.parametrize("stage", STAGES)
def test_app_client_has_no_secret_and_only_the_web_tiers_flows(stage, request):
    client = _only(request.getfixturevalue(stage).templates["identity"], "AWS::Cognito::UserPoolClient")
    assert client["GenerateSecret"] is False
    assert sorted(client["ExplicitAuthFlows"]) == [
        "ALLOW_REFRESH_TOKEN_AUTH",
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
    ]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["EnableTokenRevocation"] is True
    assert client["AllowedOAuthFlowsUserPoolClient"] is False
    assert client["IdTokenValidity"] == 60 and client["TokenValidityUnits"]["IdToken"] == "minutes"


@pytest.mark.parametrize("stage", STAGES)
def test_the_web_tier_finds_pool_and_client_through_discovery(stage, request):
    template = request.getfixturevalue(stage).templates["identity"]
    names = {
        v["Properties"]["Name"]: v["Properties"]["Value"]
        for v in template["Resources"].values()
        if v["Type"] == "AWS::SSM::Parameter"
    }
    prefix = f"/lc/{stage}/discovery/"
    assert set(names) == {prefix + "user-pool-id", prefix + "user-pool-client-id"}
    assert "Ref" in names[prefix + "user-pool-id"] and "Ref" in names[prefix + "user-pool-client-id"]
