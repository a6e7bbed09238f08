"""The typed stage configuration: profiles from cdk.json, overrides from -c, guard rails."""

import json
from pathlib import Path

import pytest

from stacks.config import StageConfig, load_config

CONTEXT = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]


def ctx(**extra):
    return {**CONTEXT, **extra}


def test_each_stage_profile_loads_into_a_frozen_config():
    for stage in ("sandbox", "production", "local"):
        config = load_config(ctx(stage=stage))
        assert isinstance(config, StageConfig) and config.stage == stage
        with pytest.raises(Exception):
            config.stage = "other"  # frozen


def test_production_is_multi_az_retained_and_nat_backed():
    config = load_config(ctx(stage="production"))
    assert config.cache_multi_az and config.cache_replicas >= 1
    assert config.nat_gateways >= 2 and not config.destroy_on_delete


def test_local_profile_pins_an_ami_and_the_emulator_runtime():
    config = load_config(ctx(stage="local"))
    assert config.ami_id and config.ami_id.startswith("ami-")
    assert config.lambda_runtime == "python3.11" and config.nat_gateways == 0


def test_no_account_region_or_ami_in_real_stage_profiles():
    for stage in ("sandbox", "production"):
        config = load_config(ctx(stage=stage))
        assert config.account is None and config.region is None and config.ami_id is None


def test_cli_overrides_are_coerced_to_the_field_type():
    config = load_config(ctx(stage="sandbox", natGateways="1", cacheMultiAz="true", alarmEmail="ops@example.com"))
    assert config.nat_gateways == 1 and config.cache_multi_az is True and config.alarm_email == "ops@example.com"


def test_unknown_stage_and_unknown_setting_are_refused():
    with pytest.raises(ValueError, match="unknown stage"):
        load_config(ctx(stage="prod"))
    with pytest.raises(ValueError, match="no such setting"):
        load_config(ctx(stage="sandbox", stages={"sandbox": {"natGateway": 1}}))


def test_guard_rails():
    with pytest.raises(ValueError, match="production must not destroy"):
        load_config(ctx(stage="production", destroyOnDelete="true"))
    with pytest.raises(ValueError, match="at least 2 instances"):
        load_config(ctx(stage="sandbox", webMinCapacity="1"))


def test_names_are_derived_from_prefix_and_stage():
    config = load_config(ctx(stage="sandbox"))
    assert config.stack_name("network") == "lc-sandbox-network"
    assert config.parameter_name("discovery", "backend-url") == "/lc/sandbox/discovery/backend-url"
