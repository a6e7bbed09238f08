"""What every EC2 instance of the app shares, whatever it runs (a load-balanced tier or a queue worker):

- `service_user_data`: user data that installs the service bundle (stacks/constructs/service_bundle.py)
  and keeps `python -m services.<name>` running under systemd as an unprivileged user;
- `hardened_launch_template`: the instance role (Session Manager only, no SSH key, no port 22) and a
  launch template with IMDSv2 required, hop limit 1 and an encrypted gp3 root volume;
- `grant_boot_and_discovery`: the bundle's one S3 object and this stage's discovery parameters, read-only.

Both `AlbAutoScalingTier` and `QueueWorkerFleet` build their instances from these, so a hardening
change reaches every instance of the app at once. They create their resources in the caller's scope
under the ids the tiers have always used, so existing stacks keep their logical ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Fn, Stack, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.config import StageConfig
from stacks.constructs.service_bundle import ServiceBundle, ServiceBundleProps
from stacks.nag import acknowledge, iam5_resource_finding

ROOT_DEVICE = "/dev/xvda"  # Amazon Linux 2023's root device name
INSTALL_ROOT = "/opt/storefront"
SERVICE_USER = "storefront"
# Instances of this account and region, for ssm:UpdateInstanceInformation.
INSTANCES_ARN = "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"


def machine_image(config: StageConfig, stack: Stack) -> ec2.IMachineImage:
    """config.ami_id when set (pinned images, and the local stage: no SSM lookup there); otherwise the
    latest Amazon Linux 2023 for the instance architecture, resolved by CloudFormation from the public
    SSM parameter at deploy time (not a synth-time lookup)."""
    if config.ami_id:
        if Token.is_unresolved(stack.region):
            raise ValueError("amiId is region-specific: set `region` for this stage as well")
        return ec2.MachineImage.generic_linux({stack.region: config.ami_id})
    arm = ec2.InstanceType(config.instance_type).architecture == ec2.InstanceArchitecture.ARM_64
    return ec2.MachineImage.latest_amazon_linux2023(
        cpu_type=ec2.AmazonLinuxCpuType.ARM_64 if arm else ec2.AmazonLinuxCpuType.X86_64
    )


def systemd_unit(*, service: str, description: str, python: str, environment: Mapping[str, str]) -> str:
    """The unit that keeps the service running (restarted on any exit) as an unprivileged user."""
    env_lines = "\n".join(f"Environment={key}={value}" for key, value in environment.items())
    return f"""[Unit]
Description={description}
After=network-online.target
Wants=network-online.target

[Service]
User={SERVICE_USER}
WorkingDirectory={INSTALL_ROOT}
{env_lines}
ExecStart={python} -m services.{service.removeprefix("storefront-")}
Restart=always
RestartSec=2
NoNewPrivileges=true
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class ServiceUserDataProps:
    service: str  # systemd unit name `storefront-<name>`, which runs `python -m services.<name>`
    description: str
    instance_type: ec2.InstanceType  # the bundle's wheels are for its architecture
    environment: Mapping[str, str]  # the unit's Environment= lines


@dataclass(frozen=True)
class ServiceUserData:
    user_data: ec2.UserData
    bundle: ServiceBundle


def service_user_data(scope: Construct, *, props: ServiceUserDataProps) -> ServiceUserData:
    """The bundle (construct id `ServiceCode` in `scope`) and the user data that installs and starts it."""
    stack = Stack.of(scope)
    bundle = ServiceBundle(
        scope, "ServiceCode", props=ServiceBundleProps(architecture=props.instance_type.architecture)
    )
    user_data = ec2.UserData.for_linux()
    user_data.add_commands("set -euo pipefail")
    python = bundle.add_install_commands(user_data, root=INSTALL_ROOT, region=stack.region)
    unit = systemd_unit(
        service=props.service, description=props.description, python=python, environment=props.environment
    )
    user_data.add_commands(
        f"id -u {SERVICE_USER} >/dev/null 2>&1 || useradd --system --no-create-home --shell /sbin/nologin {SERVICE_USER}",
        f"cat > /etc/systemd/system/{props.service}.service <<'UNIT'\n{unit}UNIT",
        "systemctl daemon-reload",
        f"systemctl enable --now {props.service}.service",
    )
    return ServiceUserData(user_data, bundle)


def session_manager_policy() -> iam.PolicyDocument:
    """The SSM Agent's Session Manager permissions, nothing else (no Run Command, no parameters)."""
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                actions=[
                    "ssmmessages:CreateControlChannel",
                    "ssmmessages:CreateDataChannel",
                    "ssmmessages:OpenControlChannel",
                    "ssmmessages:OpenDataChannel",
                ],
                resources=["*"],
            ),
            iam.PolicyStatement(actions=["ssm:UpdateInstanceInformation"], resources=[Fn.sub(INSTANCES_ARN)]),
        ]
    )


@dataclass(frozen=True)
class HardenedLaunchTemplateProps:
    instance_type: ec2.InstanceType
    machine_image: ec2.IMachineImage
    security_group: ec2.ISecurityGroup
    user_data: ec2.UserData
    root_volume_gib: int = 8
    role_description: str = "Tier instance: Session Manager plus the service's own grants"


def hardened_launch_template(
    scope: Construct, *, props: HardenedLaunchTemplateProps
) -> tuple[iam.Role, ec2.LaunchTemplate]:
    """`InstanceRole` and `LaunchTemplate` in `scope`.

    Session Manager is the only way in, with the minimal agent permissions AWS documents for a
    "Session Manager only" instance profile. Not AmazonSSMManagedInstanceCore: that policy also allows
    ssm:GetParameter(s) on every parameter in the account, which would void the discovery-path scoping
    of `grant_boot_and_discovery`. Everything the service needs is granted by its owner."""
    role = iam.Role(
        scope,
        "InstanceRole",
        assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
        description=props.role_description,
        inline_policies={"SessionManager": session_manager_policy()},
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "The ssmmessages channel actions Session Manager's agent needs have no resource types: AWS "
        "documents them with Resource *.",
    )
    acknowledge(
        role,
        iam5_resource_finding(scope, INSTANCES_ARN),
        "ssm:UpdateInstanceInformation is the agent registering its own instance; instance IDs are only "
        "known at launch, so the resource is any EC2 instance of this account and region.",
    )
    launch_template = ec2.LaunchTemplate(
        scope,
        "LaunchTemplate",
        machine_image=props.machine_image,
        instance_type=props.instance_type,
        role=role,
        security_group=props.security_group,
        user_data=props.user_data,
        require_imdsv2=True,  # HttpTokens=required: no credential theft through SSRF on IMDSv1
        http_put_response_hop_limit=1,  # credentials never leave the instance (no containers here)
        detailed_monitoring=True,  # 1-minute metrics: target tracking reacts faster
        block_devices=[
            ec2.BlockDevice(
                device_name=ROOT_DEVICE,
                volume=ec2.BlockDeviceVolume.ebs(
                    props.root_volume_gib,
                    encrypted=True,
                    volume_type=ec2.EbsDeviceVolumeType.GP3,
                    delete_on_termination=True,
                ),
            )
        ],
    )
    return role, launch_template


def grant_boot_and_discovery(role: iam.IRole, *, bundle: ServiceBundle, discovery_prefix: str) -> None:
    """Exactly the one object the instances boot from (no bucket-wide read), and read-only access to
    the stage's discovery namespace: GetParametersByPath is authorized on the path itself, single
    reads on the parameters below it; nothing outside it."""
    stack = Stack.of(role)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[bundle.asset.bucket.arn_for_objects(bundle.asset.s3_object_key)],
        )
    )
    discovery_path = stack.format_arn(service="ssm", resource="parameter", resource_name=discovery_prefix.lstrip("/"))
    discovery_parameters = f"{discovery_path}/*"
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ssm:GetParametersByPath", "ssm:GetParameter", "ssm:GetParameters"],
            resources=[discovery_path, discovery_parameters],
        )
    )
    acknowledge(
        role,
        iam5_resource_finding(stack, discovery_parameters),
        "Read-only access to this stage's service-discovery namespace: the parameters are written by "
        "other stacks and found by name at runtime, which is the point of service discovery.",
    )
