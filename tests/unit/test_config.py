"""The typed stage configuration: profiles from cdk.json, overrides from -c, guard rails."""

import json
import re
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError

from stacks.config import CONTEXT_KEYS, LOG_RETENTION_DAYS, STAGES, ConfigError, StageConfig, load_config

CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]


# A certificate of a made-up account: production refuses to synthesize without one.
CERTIFICATE = "arn:aws:acm:us-east-1:111111111111:certificate/00000000-0000-0000-0000-000000000000"


def ctx(**extra):
    return {**CONTEXT, **extra}


def production(**extra):
    """The production profile with the certificate that `-c certificateArn` gives on a real synth."""
    return ctx(stage="production", **{"certificateArn": CERTIFICATE, **extra})


def with_profile(stage: str, /, **settings):
    """The cdk.json context with extra settings written into `stages.<stage>` (JSON-typed values)."""
    stages = json.loads(json.dumps(CONTEXT["stages"]))
    stages[stage].update(settings)
    return ctx(stage=stage, stages=stages)


def refused(context, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(context)


def test_each_stage_profile_loads_into_a_frozen_config():
    for stage in STAGES:
        config = load_config(production() if stage == "production" else ctx(stage=stage))
        assert isinstance(config, StageConfig) and config.stage == stage
        with pytest.raises(ValidationError, match="frozen"):
            cast(Any, config).stage = "other"  # not a Stage either: only the refusal is under test


def test_stage_defaults_to_sandbox():
    assert load_config({"allowPlainHttp": "true"}).stage == "sandbox"


def test_the_defaults_alone_are_https_with_customer_managed_keys():
    refused({}, "stages.sandbox.certificateArn: Value error, the web ALB serves HTTPS only")
    assert load_config({"certificateArn": CERTIFICATE}).encryption_keys == "cmk"


def test_production_is_multi_az_retained_and_nat_backed():
    config = load_config(production())
    assert config.is_production
    assert config.cache_multi_az and config.cache_replicas >= 1
    assert config.nat_gateways >= 2 and not config.destroy_on_delete


def test_local_profile_pins_an_ami_and_the_emulator_runtime():
    config = load_config(ctx(stage="local"))
    assert config.ami_id and config.ami_id.startswith("ami-")
    assert config.lambda_runtime == "python3.11" and config.nat_gateways == 0


def test_no_account_region_or_ami_in_real_stage_profiles():
    for stage in ("sandbox", "production"):
        config = load_config(production() if stage == "production" else ctx(stage=stage))
        assert config.account is None and config.region is None and config.ami_id is None


# --- -c overrides: strings, validated by pydantic in lax mode -----------------------------------


def test_cli_override_strings_become_the_field_type():
    config = load_config(
        ctx(
            stage="sandbox",
            natGateways="1",
            cacheMultiAz="true",
            vpcEndpoints="false",
            logRetentionDays="365",
            alarmEmail="ops@example.com",
        )
    )
    assert config.nat_gateways == 1 and config.cache_multi_az is True and config.vpc_endpoints is False
    assert config.log_retention_days == 365 and config.alarm_email == "ops@example.com"


def test_cli_override_wins_over_the_profile():
    assert load_config(production(webMinCapacity="3", webMaxCapacity="3")).web_max_capacity == 3


@pytest.mark.parametrize("cleared", ["none", "null", "", "None"])
def test_cli_override_clears_an_optional_setting(cleared):
    assert load_config(ctx(stage="local", amiId=cleared)).ami_id is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"natGateways": "two"}, "-c natGateways: Input should be a valid integer"),
        ({"cacheMultiAz": "maybe"}, "-c cacheMultiAz: Input should be a valid boolean"),
        ({"webMinCapacity": "1"}, "-c webMinCapacity: Input should be greater than or equal to 2"),
        ({"logRetentionDays": "31"}, "-c logRetentionDays: Value error, CloudWatch Logs keeps logs for one of"),
        ({"apiEndpointType": "edge"}, "-c apiEndpointType: Input should be 'REGIONAL' or 'EDGE'"),
        ({"lambdaArchitecture": "arm64"}, "-c lambdaArchitecture: Input should be 'ARM_64' or 'X86_64'"),
        ({"lambdaRuntime": "nodejs22.x"}, "-c lambdaRuntime: String should match pattern"),
        ({"vpcCidr": "10.40.0.0/8"}, "-c vpcCidr: String should match pattern"),
        ({"vpcCidr": "10.40.0.1/16"}, "-c vpcCidr: Value error, 10.40.0.1/16 has host bits set"),
        ({"account": "12345"}, "-c account: String should match pattern"),
        ({"amiId": "ami-xyz"}, "-c amiId: String should match pattern"),
        ({"alarmEmail": "ops"}, "-c alarmEmail: String should match pattern"),
        ({"cancelGraceSeconds": "901"}, "-c cancelGraceSeconds: Input should be less than or equal to 900"),
        ({"wafRateLimitPer5min": "5"}, "-c wafRateLimitPer5min: Input should be greater than or equal to 10"),
        ({"stage": "prod"}, "-c stage: Input should be 'sandbox', 'production' or 'local'"),
    ],
)
def test_a_bad_cli_override_names_its_key(override, message):
    refused({**ctx(stage="sandbox"), **override}, message)


# --- cdk.json profiles: JSON types, validated strictly -------------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"natGateways": "1"}, "stages.local.natGateways: Input should be a valid integer"),
        ({"natGateways": 1.0}, "stages.local.natGateways: Input should be a valid integer"),
        ({"vpcEndpoints": "false"}, "stages.local.vpcEndpoints: Input should be a valid boolean"),
        ({"vpcEndpoints": 0}, "stages.local.vpcEndpoints: Input should be a valid boolean"),
        ({"cacheReplicas": True}, "stages.local.cacheReplicas: Input should be a valid integer"),
        ({"account": 0}, "stages.local.account: Input should be a valid string"),
        ({"lambdaArchitecture": "ARM64"}, "stages.local.lambdaArchitecture: Input should be 'ARM_64' or 'X86_64'"),
        ({"logRetentionDays": 2}, "stages.local.logRetentionDays: Value error, CloudWatch Logs keeps logs"),
    ],
)
def test_a_bad_cdk_json_value_names_its_camel_case_key(setting, message):
    refused(with_profile("local", **setting), message)


def test_unknown_setting_is_refused_with_its_key():
    refused(with_profile("sandbox", natGateway=1), "stages.sandbox.natGateway: Extra inputs are not permitted")


def test_snake_case_key_in_cdk_json_is_an_unknown_setting():
    refused(with_profile("sandbox", max_azs=3), "stages.sandbox.max_azs: Extra inputs are not permitted")


def test_unknown_stage_profile_is_refused():
    refused(ctx(stage="sandbox", stages={**CONTEXT["stages"], "staging": {}}), "stages.staging: unknown stage")


def test_a_profile_cannot_name_another_stage():
    refused(with_profile("sandbox", stage="production"), "stages.sandbox.stage:")


def test_every_error_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        load_config(with_profile("local", natGateways="1", maxAzs="3"))
    assert "stages.local.natGateways" in str(error.value) and "stages.local.maxAzs" in str(error.value)


def test_stages_given_as_a_json_string_with_c():
    config = load_config(
        {"stage": "production", "stages": json.dumps(CONTEXT["stages"]), "certificateArn": CERTIFICATE}
    )
    assert config.nat_gateways == 2


# --- cross-field guard rails ---------------------------------------------------------------------


def test_production_must_not_destroy_data_stores():
    refused(
        ctx(stage="production", destroyOnDelete="true"),
        "-c destroyOnDelete: Value error, production must not destroy data stores",
    )
    # Left out of the profile, the default (True) is refused as well: production must say so.
    stages = {
        **CONTEXT["stages"],
        "production": {k: v for k, v in CONTEXT["stages"]["production"].items() if k != "destroyOnDelete"},
    }
    refused(ctx(stage="production", stages=stages), "stages.production.destroyOnDelete: Value error, production")


def test_production_refuses_to_synthesize_without_a_certificate():
    refused(ctx(stage="production"), "stages.production.certificateArn: Value error, the web ALB serves HTTPS only")
    refused(production(certificateArn="none"), "-c certificateArn: Value error, the web ALB serves HTTPS only")
    assert load_config(production()).certificate_arn == CERTIFICATE


def test_only_a_profile_that_says_so_serves_plain_http():
    # sandbox and local say so in cdk.json; production may not, and no profile does by default.
    assert load_config(ctx(stage="sandbox")).allow_plain_http and load_config(ctx(stage="local")).allow_plain_http
    assert not load_config(production()).allow_plain_http
    refused(production(allowPlainHttp="true"), "-c allowPlainHttp: Value error, production serves HTTPS only")
    refused(
        with_profile("sandbox", allowPlainHttp=False),
        "stages.sandbox.certificateArn: Value error, the web ALB serves HTTPS only",
    )
    assert load_config(ctx(stage="sandbox", allowPlainHttp="false", certificateArn=CERTIFICATE)).certificate_arn


def test_the_certificate_must_be_in_the_stages_region_and_account():
    refused(
        ctx(stage="local", certificateArn=CERTIFICATE.replace("us-east-1", "eu-west-1")),
        "-c certificateArn: Value error, the certificate is in eu-west-1, the stage in us-east-1",
    )
    refused(
        ctx(stage="local", certificateArn=CERTIFICATE), "-c certificateArn: Value error, the certificate belongs to"
    )
    refused(
        ctx(stage="sandbox", certificateArn="arn:aws:acm:us-east-1:1:certificate/x"),
        "-c certificateArn: String should match",
    )


def test_production_holds_the_keys_of_its_logs_and_secrets():
    assert load_config(production()).encryption_keys == "cmk"
    assert {load_config(ctx(stage=s)).encryption_keys for s in ("sandbox", "local")} == {"default"}
    refused(
        production(encryptionKeys="default"), "-c encryptionKeys: Value error, production encrypts logs and secrets"
    )
    refused(ctx(stage="sandbox", encryptionKeys="kms"), "-c encryptionKeys: Input should be 'cmk' or 'default'")


def test_picture_workers_rest_at_zero_or_one_and_min_not_above_max():
    assert load_config(ctx(stage="sandbox", pictureWorkersMinCapacity="0")).picture_workers_min_capacity == 0
    refused(
        ctx(stage="sandbox", pictureWorkersMinCapacity="2"),
        "-c pictureWorkersMinCapacity: Input should be less than or equal to 1",
    )
    refused(
        ctx(stage="sandbox", pictureWorkersMinCapacity="1", pictureWorkersMaxCapacity="0"),
        "-c pictureWorkersMaxCapacity: Input should be greater than or equal to 1",
    )
    refused(
        ctx(stage="sandbox", pictureBacklogPerInstance="0"),
        "-c pictureBacklogPerInstance: Input should be greater than 0",
    )


@pytest.mark.parametrize("tier", ["web", "backend"])
def test_each_tier_keeps_two_instances_and_min_not_above_max(tier):
    refused(
        ctx(stage="sandbox", **{f"{tier}MinCapacity": "1"}),
        f"-c {tier}MinCapacity: Input should be greater than or equal to 2",
    )
    refused(
        ctx(stage="sandbox", **{f"{tier}MinCapacity": "5", f"{tier}MaxCapacity": "4"}),
        f"-c {tier}MaxCapacity: Value error, must not be below the tier's min capacity (5)",
    )
    refused(
        with_profile("sandbox", **{f"{tier}MinCapacity": 5}),
        f"stages.sandbox.{tier}MaxCapacity: Value error, must not be below",
    )


def test_at_most_one_nat_gateway_per_az():
    refused(ctx(stage="sandbox", natGateways="3"), "-c natGateways: Value error, 3 NAT gateways for maxAzs=2")
    assert load_config(ctx(stage="sandbox", natGateways="3", maxAzs="3")).nat_gateways == 3


def test_the_session_store_is_redis_unless_a_stage_chooses_dynamodb():
    profiles = [production() if stage == "production" else ctx(stage=stage) for stage in STAGES]
    assert {load_config(profile).session_store for profile in profiles} == {"redis"}
    assert load_config(ctx(stage="sandbox", sessionStore="dynamodb")).session_store == "dynamodb"
    assert load_config(with_profile("local", sessionStore="dynamodb")).session_store == "dynamodb"
    refused(ctx(stage="sandbox", sessionStore="memcached"), "-c sessionStore: Input should be 'redis' or 'dynamodb'")
    refused(with_profile("local", sessionStore="DynamoDB"), "stages.local.sessionStore: Input should be 'redis' or")


def test_multi_az_cache_needs_a_replica():
    refused(
        ctx(stage="sandbox", cacheReplicas="0", cacheMultiAz="true"),
        "-c cacheMultiAz: Value error, needs cacheReplicas",
    )


# --- the model itself ----------------------------------------------------------------------------


def test_defaults_pass_their_own_rules():
    assert StageConfig(stage="sandbox", certificate_arn=CERTIFICATE).log_retention_days in LOG_RETENTION_DAYS


def test_python_callers_use_snake_case_names_strictly():
    assert (
        StageConfig(stage="sandbox", allow_plain_http=True, waf_rate_limit_per_5min=777).waf_rate_limit_per_5min == 777
    )
    with pytest.raises(ValidationError):
        StageConfig(stage="sandbox", allow_plain_http=True, nat_gateways=cast(Any, "1"))  # the wrong type on purpose


def test_each_setting_is_read_from_context_under_its_camel_case_key():
    for name, info in StageConfig.model_fields.items():
        assert info.alias and info.alias[0].islower() and "_" not in info.alias, name
        assert info.alias.lower() == name.replace("_", ""), name
        assert info.alias in CONTEXT_KEYS
    assert "stages" in CONTEXT_KEYS


def test_names_are_derived_from_prefix_and_stage():
    config = load_config(ctx(stage="sandbox"))
    assert config.stack_name("network") == "lc-sandbox-network"
    assert config.parameter_name("discovery", "backend-url") == "/lc/sandbox/discovery/backend-url"


ZONE = "Z0123456789ABCDEFGHIJ"


def test_a_domain_needs_its_hosted_zone_and_the_other_way_round():
    refused(ctx(domainName="shop.example.com"), "hostedZoneId: Value error, domainName and hostedZoneId go together")
    refused(ctx(hostedZoneId=ZONE), "hostedZoneId: Value error, domainName and hostedZoneId go together")
    config = load_config(ctx(domainName="shop.example.com", hostedZoneId=ZONE))
    assert (config.domain_name, config.hosted_zone_id, config.serves_https) == ("shop.example.com", ZONE, True)
    assert load_config(ctx()).domain_name is None


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("domainName", "Shop.Example.com"),
        ("domainName", "shop.example.com."),
        ("domainName", "localhost"),
        ("domainName", "-shop.example.com"),
        ("hostedZoneId", "/hostedzone/Z0123456789ABCDEFGHIJ"),
        ("hostedZoneId", "z0123"),
    ],
)
def test_domain_settings_must_have_their_dns_shapes(setting, value):
    other = {"domainName": "shop.example.com", "hostedZoneId": ZONE}
    refused(ctx(**{**other, setting: value}), f"-c {setting}: String should match pattern")


def test_a_domain_lets_production_request_its_own_certificate():
    config = load_config(ctx(stage="production", domainName="shop.example.com", hostedZoneId=ZONE))
    assert config.certificate_arn is None and config.serves_https


def test_partner_accounts_come_from_cdk_json_or_a_comma_separated_c():
    assert load_config(ctx()).partner_account_ids == []
    from_profile = load_config(with_profile("sandbox", partnerAccountIds=["111111111111", "222222222222"]))
    from_c = load_config(ctx(partnerAccountIds="111111111111, 222222222222"))
    assert from_profile.partner_account_ids == from_c.partner_account_ids == ["111111111111", "222222222222"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12345", "String should match pattern"),
        ("111111111111,111111111111", "lists an account twice"),
        ("000000000000", "lists the stage's own account"),
    ],
)
def test_partner_accounts_are_other_twelve_digit_accounts_each_once(value, message):
    refused(ctx(stage="local", partnerAccountIds=value), message)


def test_the_catalogue_cache_ttl_is_a_stage_setting_api_gateway_accepts():
    assert load_config(ctx(catalogCacheTtlSeconds="60")).catalog_cache_ttl_seconds == 60
    with pytest.raises(ConfigError, match="catalogCacheTtlSeconds"):
        load_config(ctx(catalogCacheTtlSeconds="3601"))
