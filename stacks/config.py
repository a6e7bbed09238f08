"""One typed configuration object per environment, read from CDK context.

`cdk synth -c stage=sandbox|production|local` picks a profile from the `stages` map in cdk.json;
any single field can be overridden with `-c <field>=<value>` (for example `-c alarmEmail=ops@example.com`).
No account id, region or AMI id is written in code: they come from context or the CLI's environment.

cdk.json values are JSON, so they are validated strictly (`"2"` is not a number there). `-c` values
always arrive as strings, so each is validated on its own in pydantic's lax mode ("3" -> 3,
"true" -> True) before the whole profile is validated strictly. Errors name the key as written.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.alias_generators import to_camel

Stage = Literal["sandbox", "production", "local"]
STAGES: tuple[str, ...] = get_args(Stage)

# CloudWatch Logs refuses any other retention period.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


class ConfigError(ValueError):
    """A stage configuration that must not synthesize; one line per offending key."""


def _blank_is_none(value: Any) -> Any:
    """`-c` can only pass strings, so "none", "null" or "" is how an optional setting is cleared."""
    return None if isinstance(value, str) and value.strip().lower() in ("", "none", "null") else value


def _cloudwatch_retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(f"CloudWatch Logs keeps logs for one of {', '.join(map(str, LOG_RETENTION_DAYS))} days")
    return days


def _network_address(cidr: str) -> str:
    ipaddress.IPv4Network(cidr)  # ValueError when host bits are set (10.40.0.1/16) or an octet is > 255
    return cidr


CLEARABLE = BeforeValidator(_blank_is_none)
RetentionDays = Annotated[int, AfterValidator(_cloudwatch_retention)]
# A VPC takes a /16 to /28 IPv4 block.
VpcCidr = Annotated[
    str, StringConstraints(pattern=r"^\d{1,3}(\.\d{1,3}){3}/(1[6-9]|2[0-8])$"), AfterValidator(_network_address)
]
AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")]
AmiId = Annotated[str, StringConstraints(pattern=r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")]
CertificateArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+$")
]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
# A fully qualified DNS name, lower case, no trailing dot: labels of 1-63 letters, digits and inner hyphens.
DomainName = Annotated[
    str,
    StringConstraints(pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", max_length=253),
]
# Route 53 hosted zone ids: Z followed by upper-case letters and digits (no /hostedzone/ prefix).
HostedZoneId = Annotated[str, StringConstraints(pattern=r"^Z[A-Z0-9]{1,31}$")]


def _comma_list(value: Any) -> Any:
    """`-c partnerAccountIds=111111111111,222222222222`: a -c value is a string; cdk.json gives a list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


COMMA_LIST = BeforeValidator(_comma_list)
# Two AZs at least: the load balancers need subnets in two zones, each tier spreads over them.
Capacity = Annotated[int, Field(ge=2)]
PositiveInt = Annotated[int, Field(gt=0)]


class StageConfig(BaseModel):
    """Everything that differs between environments. Field names are the cdk.json keys in snake_case."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",  # a misspelt key in cdk.json must not silently fall back to the default
        alias_generator=to_camel,  # the camelCase alias is the cdk.json / -c key
        populate_by_name=True,  # Python callers (tests) build it with the snake_case names
        strict=True,
        validate_default=True,  # the defaults obey the same rules, and cross-field checks see them
    )

    stage: Stage
    # Prefix of every stack name and of the SSM service-discovery namespace (/<prefix>/...).
    prefix: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*$", max_length=20)] = "lc"
    account: Annotated[AccountId | None, CLEARABLE] = None  # None: the CLI's CDK_DEFAULT_ACCOUNT
    region: Annotated[Region | None, CLEARABLE] = None  # None: the CLI's CDK_DEFAULT_REGION

    # --- network -----------------------------------------------------------------------------
    vpc_cidr: VpcCidr = "10.40.0.0/16"
    max_azs: Annotated[int, Field(ge=2)] = 2
    nat_gateways: Annotated[int, Field(ge=0)] = 0  # 0: private subnets reach AWS APIs through VPC endpoints only
    vpc_endpoints: bool = True
    flow_log_retention_days: RetentionDays = 30

    # --- compute tiers --------------------------------------------------------------------------
    instance_type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")] = "t4g.micro"
    # None: the latest Amazon Linux 2023 AMI from the public SSM parameter (real AWS only).
    ami_id: Annotated[AmiId | None, CLEARABLE] = None
    web_min_capacity: Capacity = 2
    web_max_capacity: Capacity = 4
    backend_min_capacity: Capacity = 2
    backend_max_capacity: Capacity = 4
    target_cpu_percent: Annotated[int, Field(ge=1, le=100)] = 50
    # Second target-tracking policy of the web tier: ALB requests per target per minute.
    web_requests_per_target_per_minute: Annotated[int, Field(ge=1)] = 1000
    # ALB health checks (ELB takes 5-300 s) and the boot time Auto Scaling allows before they count:
    # dnf install + venv + service start on EC2; a process start in the local cloud.
    health_check_interval_seconds: Annotated[int, Field(ge=5, le=300)] = 15
    health_check_grace_seconds: Annotated[int, Field(ge=0, le=7200)] = 300
    # The web ALB serves plain HTTP only where a profile says so (sandbox, local: no domain, nothing
    # real behind it). Off by default, and production refuses it: there HTTP only redirects to HTTPS.
    allow_plain_http: bool = False
    # Route 53 in front of the storefront: `domainName` (e.g. shop.example.com) gets an alias record to the
    # web ALB in the hosted zone `hostedZoneId`, and a DNS-validated ACM certificate unless certificateArn
    # is given. Both or neither; absent, nothing DNS-related is synthesized.
    domain_name: Annotated[DomainName | None, CLEARABLE] = None
    hosted_zone_id: Annotated[HostedZoneId | None, CLEARABLE] = None
    # ACM certificate of the web ALB's HTTPS listener; required unless allowPlainHttp or domainName.
    certificate_arn: Annotated[CertificateArn | None, CLEARABLE] = None

    # --- picture workers (a queue feeds an EC2 fleet, scaled on its backlog per instance) ----------
    # 0 or 1: keep one worker warm, or rest at zero; at zero the backlog-per-instance policy scales out
    # only once more than pictureBacklogPerInstance jobs wait (fewer wait until more arrive).
    picture_workers_min_capacity: Annotated[int, Field(ge=0, le=1)] = 1
    picture_workers_max_capacity: Annotated[int, Field(ge=1, le=100)] = 4
    # Acceptable backlog per instance = the latency a staff member accepts / the time one job takes
    # (AWS's backlog-per-instance pattern): 60 s / ~3 s per picture.
    picture_backlog_per_instance: PositiveInt = 20
    # The queue's visibility timeout; a running job extends it (a heartbeat every third of it).
    picture_job_visibility_seconds: Annotated[int, Field(ge=10, le=43_200)] = 60

    # --- sessions -------------------------------------------------------------------------------
    # Where the web tier keeps sessions, carts and checkout tokens: ElastiCache for Redis, or a DynamoDB
    # table (pay-per-request, TTL); with `dynamodb` no cache cluster is created (stacks/sessions_stack.py).
    session_store: Literal["redis", "dynamodb"] = "redis"
    # The cache (ElastiCache), when sessionStore is redis:
    cache_node_type: Annotated[str, StringConstraints(pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")] = "cache.t4g.micro"
    # Replicas per shard (ElastiCache allows 0-5); >=1 is needed for automatic failover.
    cache_replicas: Annotated[int, Field(ge=0, le=5)] = 1
    cache_multi_az: bool = False

    # --- API -----------------------------------------------------------------------------------
    api_endpoint_type: Literal["REGIONAL", "EDGE"] = "REGIONAL"
    api_rate_limit: PositiveInt = 50  # steady-state requests/s per stage
    api_burst_limit: PositiveInt = 100
    api_quota_per_day: PositiveInt = 100_000
    # The delivery partners' own usage plan (POST /partners/deliveries): metered and capped apart from
    # the storefront's clients, so a chatty carrier cannot use up their quota, nor they its.
    partner_rate_limit: PositiveInt = 10
    partner_burst_limit: PositiveInt = 20
    partner_quota_per_day: PositiveInt = 20_000
    # GET /catalog is cached at the stage (the only cached method; API Gateway keeps entries 0-3600 s).
    catalog_cache_ttl_seconds: Annotated[int, Field(ge=1, le=3600)] = 300
    # The stage's cache cluster in GB (API Gateway's sizes); billed per hour while the stage exists.
    api_cache_size_gb: Literal["0.5", "1.6", "6.1", "13.5", "28.4", "58.2", "118", "237"] = "0.5"

    # --- Lambda --------------------------------------------------------------------------------
    # The local cloud runs Python Lambdas with its own interpreter (3.11), so the `local` profile
    # builds the dependency layer for that interpreter; real stages use the newest runtime CDK offers.
    lambda_runtime: Annotated[str, StringConstraints(pattern=r"^python3\.\d{1,2}$")] = "python3.14"
    lambda_architecture: Literal["ARM_64", "X86_64"] = "ARM_64"
    # Protects DynamoDB and downstreams from a backlog burst; SQS event sources take 2-1000.
    consumer_max_concurrency: Annotated[int, Field(ge=2, le=1000)] = 5

    # --- workflow -------------------------------------------------------------------------------
    approval_timeout_seconds: PositiveInt = 3600
    # Delay queue: the order-cancel grace period; SQS delays a message by at most 15 minutes.
    cancel_grace_seconds: Annotated[int, Field(ge=0, le=900)] = 60

    # --- partners ---------------------------------------------------------------------------------
    # Accounts allowed to send to the partner inbound queue (resource-based policy, TLS only; the owner
    # pays for the queue). Empty: no other account may send.
    partner_account_ids: Annotated[list[AccountId], COMMA_LIST] = []

    # --- operations ------------------------------------------------------------------------------
    alarm_email: Annotated[Email | None, CLEARABLE] = None
    log_retention_days: RetentionDays = 30
    queue_age_slo_seconds: PositiveInt = 300
    # Explicit alias: the documented key predates the generator, which would spell it ...Per5Min.
    # WAF rate-based rules take 10 to 2e9 requests per window.
    waf_rate_limit_per_5min: Annotated[int, Field(alias="wafRateLimitPer5min", ge=10, le=2_000_000_000)] = 2000
    destroy_on_delete: bool = True  # sandbox/local: data stores go with the stack; production retains
    # Who holds the keys of the CloudWatch log groups and the Redis AUTH secret: customer managed KMS
    # keys (`cmk`: key policies limited to this account and region, rotation on, use audited in
    # CloudTrail), or the services' own default encryption (`default`: sandbox, local). Production: cmk.
    encryption_keys: Literal["cmk", "default"] = "cmk"

    # Cross-field rules are field validators (not one model validator) so that the error names the key
    # to change. `info.data` holds the fields declared above the validated one, if they were valid.

    @field_validator("nat_gateways")
    @classmethod
    def _one_nat_per_az_at_most(cls, value: int, info: ValidationInfo) -> int:
        if value > info.data.get("max_azs", value):
            raise ValueError(f"{value} NAT gateways for maxAzs={info.data['max_azs']}: at most one per AZ")
        return value

    @field_validator("web_max_capacity", "backend_max_capacity", "picture_workers_max_capacity")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        assert info.field_name is not None  # set for a field validator
        minimum = info.data.get(info.field_name.replace("_max_", "_min_"), value)
        if value < minimum:
            raise ValueError(f"must not be below the tier's min capacity ({minimum})")
        return value

    @field_validator("cache_multi_az")
    @classmethod
    def _multi_az_needs_a_replica(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("cache_replicas", 1) < 1:
            raise ValueError("needs cacheReplicas >= 1: failover promotes a replica")
        return value

    @field_validator("destroy_on_delete")
    @classmethod
    def _production_retains_data(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("stage") == "production":
            raise ValueError("production must not destroy data stores on stack deletion")
        return value

    @field_validator("allow_plain_http")
    @classmethod
    def _production_serves_https_only(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("stage") == "production":
            raise ValueError("production serves HTTPS only (HTTP just redirects); set certificateArn instead")
        return value

    @field_validator("hosted_zone_id")
    @classmethod
    def _a_domain_needs_its_zone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "domain_name" not in info.data:  # an invalid domainName has its own error
            return value
        if (value is None) != (info.data["domain_name"] is None):
            raise ValueError("domainName and hostedZoneId go together: the alias records live in that zone")
        return value

    @field_validator("certificate_arn")
    @classmethod
    def _https_needs_a_certificate(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("domain_name") is not None:
                return value  # the Domain stack requests a DNS-validated certificate for it
            if not info.data.get("allow_plain_http", True):  # an invalid allowPlainHttp has its own error
                raise ValueError(
                    "the web ALB serves HTTPS only: give the ACM certificate of its domain "
                    "(-c certificateArn=arn:aws:acm:<region>:<account>:certificate/<id>); only a non-production "
                    "profile may set allowPlainHttp instead"
                )
            return value
        _, _, _, region, account, _ = value.split(":", 5)
        if info.data.get("region") not in (None, region):
            raise ValueError(
                f"the certificate is in {region}, the stage in {info.data['region']}: an ALB needs one of its region"
            )
        if info.data.get("account") not in (None, account):
            raise ValueError(f"the certificate belongs to account {account}, not to the stage's account")
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _production_holds_its_keys(cls, value: str, info: ValidationInfo) -> str:
        if value != "cmk" and info.data.get("stage") == "production":
            raise ValueError("production encrypts logs and secrets with customer managed keys (cmk)")
        return value

    @field_validator("partner_account_ids")
    @classmethod
    def _partners_are_other_accounts(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists an account twice")
        if info.data.get("account") in value:
            raise ValueError("lists the stage's own account: its principals need no resource policy")
        return value

    @property
    def serves_https(self) -> bool:
        """The web ALB terminates HTTPS: a certificate is given, or the Domain stack requests one."""
        return self.certificate_arn is not None or self.domain_name is not None

    @property
    def is_production(self) -> bool:
        return self.stage == "production"

    def stack_name(self, part: str) -> str:
        return f"{self.prefix}-{self.stage}-{part}"

    def parameter_name(self, *parts: str) -> str:
        """SSM parameter path for service discovery, e.g. /lc/sandbox/discovery/backend-url."""
        return "/" + "/".join((self.prefix, self.stage, *parts))


# cdk.json / -c key by field name, and back.
_KEY_BY_FIELD: dict[str, str] = {name: info.alias or name for name, info in StageConfig.model_fields.items()}
_FIELD_BY_KEY: dict[str, str] = {key: name for name, key in _KEY_BY_FIELD.items()}
# Every context key load_config reads: the profiles plus one override per field (`stage` included).
CONTEXT_KEYS: tuple[str, ...] = ("stages", *_FIELD_BY_KEY)


@functools.cache
def _field_type(name: str) -> TypeAdapter[Any]:
    """The field's type with its constraints, to validate one -c string on its own (in lax mode).
    Cross-field rules run afterwards, when the whole config is validated."""
    info = StageConfig.model_fields[name]
    # A type put together at runtime: there is no static type to give it.
    field_type: Any = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    return TypeAdapter(field_type)


def _error_lines(error: ValidationError, where: Callable[[str], str]) -> str:
    lines = []
    for e in error.errors(include_url=False):
        key = ".".join(str(part) for part in e["loc"])
        if e["type"] != "extra_forbidden":  # errors on defaults (validate_default) name the field
            key = _KEY_BY_FIELD.get(key, key)
        lines.append(f"{where(key)}: {e['msg']} (got {e['input']!r})")
    return "\n".join(lines)


def _override(key: str, value: Any) -> Any:
    try:
        return _field_type(_FIELD_BY_KEY[key]).validate_python(value, strict=False)
    except ValidationError as error:
        raise ConfigError(_error_lines(error, lambda _: f"-c {key}")) from None


def load_config(context: Mapping[str, Any]) -> StageConfig:
    """Build the StageConfig for `context['stage']` from the cdk.json `stages` map plus overrides.

    `context` is anything with .get (the CDK node's try_get_context wrapped in a dict works too).
    """
    stage = _override("stage", context.get("stage") or "sandbox")
    stages = context.get("stages") or {}
    if isinstance(stages, str):  # -c stages='{...}'
        stages = json.loads(stages)
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ConfigError(
            "\n".join(f"stages.{name}: unknown stage; expected one of {', '.join(STAGES)}" for name in unknown)
        )
    profile = dict(stages.get(stage) or {})
    if "stage" in profile:
        raise ConfigError(f"stages.{stage}.stage: the profile's key in `stages` is its stage")
    overrides = {
        key: _override(key, context[key]) for key in _FIELD_BY_KEY if key != "stage" and context.get(key) is not None
    }

    def where(key: str) -> str:
        if key in overrides:
            return f"-c {key}"
        return f"stages.{stage}.{key}" if key else f"stages.{stage}"

    try:
        # by_name=False: cdk.json spells keys in camelCase only; a snake_case key is an unknown one.
        return StageConfig.model_validate({**profile, **overrides, "stage": stage}, by_name=False)
    except ValidationError as error:
        raise ConfigError(_error_lines(error, where)) from None
