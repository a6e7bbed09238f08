"""The network stack's isolation properties: subnet tiers across AZs, NAT per stage, flow logs,
VPC endpoints, and the security-group chain exactly as designed (each hop admits only the previous one)."""

from __future__ import annotations

import json

import pytest
from aws_cdk import Stack

from stacks.constructs.tier_security_groups import NO_TRAFFIC_EGRESS
from stacks.network_stack import APP_SUBNETS, DATA_SUBNETS, INTERFACE_ENDPOINTS, PUBLIC_SUBNETS

STAGES = ["sandbox", "production", "local"]
CHAIN = ("web_alb", "web_instances", "internal_alb", "backend_instances", "cache")
# Not links of the chain: groups of instances that take their work from a queue.
WORKERS = ("picture_workers",)
ANYWHERE = "0.0.0.0/0"


def logical_id(construct) -> str:
    return Stack.of(construct).resolve(construct.node.default_child.logical_id)


def group_names(synthesized) -> dict[str, str]:
    """logical id -> chain name (web_alb, ...), plus the interface endpoints' group."""
    network = synthesized.app.stacks["network"]
    names = {logical_id(getattr(network.security_groups, name)): name for name in (*CHAIN, *WORKERS)}
    if network.endpoints_security_group is not None:
        names[logical_id(network.endpoints_security_group)] = "endpoints"
    return names


def _peer(rule: dict, names: dict[str, str]) -> str | None:
    for key in ("SourceSecurityGroupId", "DestinationSecurityGroupId"):
        if key in rule:
            return names[rule[key]["Fn::GetAtt"][0]]
    return rule.get("CidrIp") or rule.get("CidrIpv6") or rule.get("DestinationPrefixListId")


def sg_rules(synthesized) -> set[tuple]:
    """Every rule of the network stack, inline or separate: (direction, group, protocol, from, to, peer)."""
    names = group_names(synthesized)
    rules = set()
    for resource_id, resource in synthesized.templates["network"]["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::EC2::SecurityGroup" and resource_id in names:
            for direction, key in (("in", "SecurityGroupIngress"), ("out", "SecurityGroupEgress")):
                for rule in props.get(key, []):
                    rules.add(
                        (
                            direction,
                            names[resource_id],
                            rule["IpProtocol"],
                            rule.get("FromPort"),
                            rule.get("ToPort"),
                            _peer(rule, names),
                        )
                    )
        elif resource["Type"] in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
            direction = "in" if resource["Type"].endswith("Ingress") else "out"
            rules.add(
                (
                    direction,
                    names[props["GroupId"]["Fn::GetAtt"][0]],
                    props["IpProtocol"],
                    props.get("FromPort"),
                    props.get("ToPort"),
                    _peer(props, names),
                )
            )
    return rules


def _tcp(direction: str, group: str, port: int, peer: str) -> tuple:
    return (direction, group, "tcp", port, port, peer)


def _subnets(template: dict) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::EC2::Subnet"}


def _tag(resource: dict, key: str) -> str | None:
    return next((t["Value"] for t in resource["Properties"].get("Tags", []) if t["Key"] == key), None)


# --- subnets, NAT, routes -------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_three_subnet_tiers_each_spread_over_every_az(stage, request):
    synthesized = request.getfixturevalue(stage)
    config = synthesized.app.config
    subnets = _subnets(synthesized.templates["network"])
    by_group: dict[str | None, list[dict]] = {}  # None: a subnet without its group tag
    for subnet in subnets.values():
        by_group.setdefault(_tag(subnet, "aws-cdk:subnet-name"), []).append(subnet)
    assert set(by_group) == {PUBLIC_SUBNETS, APP_SUBNETS, DATA_SUBNETS}
    assert config.max_azs >= 2
    for name, members in by_group.items():
        zones = {json.dumps(s["Properties"]["AvailabilityZone"], sort_keys=True) for s in members}
        assert len(members) == config.max_azs and len(zones) == config.max_azs, name
        # Zones come from Fn::GetAZs at deploy time, never from a synth-time lookup (or its placeholders).
        assert all("Fn::GetAZs" in zone and "dummy" not in zone for zone in zones), name
    expected_app_type = "Private" if config.nat_gateways else "Isolated"
    assert {_tag(s, "aws-cdk:subnet-type") for s in by_group[APP_SUBNETS]} == {expected_app_type}
    assert {_tag(s, "aws-cdk:subnet-type") for s in by_group[DATA_SUBNETS]} == {"Isolated"}
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in by_group[PUBLIC_SUBNETS])


@pytest.mark.parametrize("stage,nat_gateways", [("sandbox", 0), ("production", 2), ("local", 0)])
def test_nat_gateway_count_follows_the_stage(stage, nat_gateways, request):
    synthesized = request.getfixturevalue(stage)
    assert synthesized.app.config.nat_gateways == nat_gateways
    synthesized.template("network").resource_count_is("AWS::EC2::NatGateway", nat_gateways)


def _default_routes_by_subnet_group(template: dict) -> dict[str | None, set[str]]:
    """subnet group -> targets of its 0.0.0.0/0 routes ("nat", "igw")."""
    resources = template["Resources"]
    table_group: dict[str, str | None] = {}
    for assoc in (r for r in resources.values() if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation"):
        subnet = resources[assoc["Properties"]["SubnetId"]["Ref"]]
        table_group[assoc["Properties"]["RouteTableId"]["Ref"]] = _tag(subnet, "aws-cdk:subnet-name")
    routes: dict[str | None, set[str]] = {group: set() for group in table_group.values()}
    for route in (r for r in resources.values() if r["Type"] == "AWS::EC2::Route"):
        props = route["Properties"]
        if props.get("DestinationCidrBlock") == ANYWHERE:
            target = "nat" if "NatGatewayId" in props else "igw" if "GatewayId" in props else "other"
            routes[table_group[props["RouteTableId"]["Ref"]]].add(target)
    return routes


@pytest.mark.parametrize("stage", STAGES)
def test_only_public_subnets_face_the_internet_and_data_subnets_have_no_way_out(stage, request):
    synthesized = request.getfixturevalue(stage)
    routes = _default_routes_by_subnet_group(synthesized.templates["network"])
    assert routes[PUBLIC_SUBNETS] == {"igw"}
    assert routes[APP_SUBNETS] == ({"nat"} if synthesized.app.config.nat_gateways else set())
    assert routes[DATA_SUBNETS] == set()


# --- flow logs and endpoints ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_vpc_flow_logs_capture_all_traffic_into_a_retained_log_group(stage, request):
    synthesized = request.getfixturevalue(stage)
    resources = synthesized.templates["network"]["Resources"]
    flow_logs = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::EC2::FlowLog"]
    assert len(flow_logs) == 1
    flow_log = flow_logs[0]
    assert flow_log["ResourceType"] == "VPC" and flow_log["TrafficType"] == "ALL"
    assert flow_log["LogDestinationType"] == "cloud-watch-logs"
    log_group = resources[flow_log["LogGroupName"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == synthesized.app.config.flow_log_retention_days


def _service_suffix(endpoint: dict) -> str:
    name = endpoint["Properties"]["ServiceName"]
    return name if isinstance(name, str) else name["Fn::Join"][1][-1]


@pytest.mark.parametrize("stage", ["sandbox", "production"])
def test_endpoints_let_isolated_tiers_reach_aws_apis(stage, request):
    synthesized = request.getfixturevalue(stage)
    names = group_names(synthesized)
    endpoints = [
        r for r in synthesized.templates["network"]["Resources"].values() if r["Type"] == "AWS::EC2::VPCEndpoint"
    ]
    gateways = sorted(_service_suffix(e) for e in endpoints if e["Properties"]["VpcEndpointType"] == "Gateway")
    interfaces = [e for e in endpoints if e["Properties"]["VpcEndpointType"] == "Interface"]
    assert gateways == [".dynamodb", ".s3"]
    assert len(interfaces) == len(INTERFACE_ENDPOINTS)
    suffixes = {_service_suffix(e) for e in interfaces}
    assert suffixes == {
        ".ssm",
        ".ssmmessages",
        ".ec2messages",
        ".sns",
        ".sqs",
        ".secretsmanager",
        ".logs",
        ".monitoring",
        ".kms",
        ".sts",
        ".cognito-idp",  # the web tier's sign-in and token verification, from isolated subnets
    }
    for endpoint in interfaces:
        props = endpoint["Properties"]
        assert props["PrivateDnsEnabled"] is True
        assert [names[g["Fn::GetAtt"][0]] for g in props["SecurityGroupIds"]] == ["endpoints"]
    # The endpoints' group admits HTTPS from the three instance groups and nothing else.
    endpoint_ingress = {r for r in sg_rules(synthesized) if r[0] == "in" and r[1] == "endpoints"}
    assert endpoint_ingress == {
        _tcp("in", "endpoints", 443, "web_instances"),
        _tcp("in", "endpoints", 443, "backend_instances"),
        _tcp("in", "endpoints", 443, "picture_workers"),
    }


def test_local_stage_has_no_endpoints(local):
    assert local.app.config.vpc_endpoints is False
    local.template("network").resource_count_is("AWS::EC2::VPCEndpoint", 0)


# --- the security-group chain ----------------------------------------------------------------------


def _expected_chain_ingress(https: bool) -> set[tuple]:
    expected = {
        _tcp("in", "web_alb", 80, ANYWHERE),
        _tcp("in", "web_instances", 8080, "web_alb"),
        _tcp("in", "internal_alb", 80, "web_instances"),
        _tcp("in", "backend_instances", 8080, "internal_alb"),
        _tcp("in", "cache", 6379, "web_instances"),
    }
    if https:
        expected.add(_tcp("in", "web_alb", 443, ANYWHERE))
    return expected


EXPECTED_CHAIN_EGRESS = {
    _tcp("out", "web_alb", 8080, "web_instances"),
    _tcp("out", "web_instances", 80, "internal_alb"),
    _tcp("out", "web_instances", 6379, "cache"),
    _tcp("out", "web_instances", 443, ANYWHERE),
    _tcp("out", "internal_alb", 8080, "backend_instances"),
    _tcp("out", "backend_instances", 443, ANYWHERE),
}


@pytest.mark.parametrize("stage", STAGES)
def test_security_group_chain_ingress_is_exactly_hop_by_hop(stage, request):
    synthesized = request.getfixturevalue(stage)
    ingress = {r for r in sg_rules(synthesized) if r[0] == "in" and r[1] in CHAIN}
    assert ingress == _expected_chain_ingress(https=synthesized.app.config.certificate_arn is not None)


@pytest.mark.parametrize("stage", STAGES)
def test_security_group_chain_egress_is_exactly_the_next_hop(stage, request):
    synthesized = request.getfixturevalue(stage)
    egress = {r for r in sg_rules(synthesized) if r[0] == "out" and r[1] in CHAIN}
    placeholder = ("icmp", NO_TRAFFIC_EGRESS["FromPort"], NO_TRAFFIC_EGRESS["ToPort"], NO_TRAFFIC_EGRESS["CidrIp"])
    real = {r for r in egress if r[2:] != placeholder}
    assert real == EXPECTED_CHAIN_EGRESS


@pytest.mark.parametrize("stage", STAGES)
def test_picture_workers_admit_nothing_and_reach_aws_apis_only(stage, request):
    """Queue workers are never called: no ingress rule at all, whoever the peer; HTTPS out only."""
    synthesized = request.getfixturevalue(stage)
    rules = {r for r in sg_rules(synthesized) if r[1] == "picture_workers"}
    assert {r for r in rules if r[0] == "in"} == set()
    assert {r for r in rules if r[0] == "out"} == {_tcp("out", "picture_workers", 443, ANYWHERE)}
    assert not [r for r in sg_rules(synthesized) if r[0] == "out" and r[5] == "picture_workers"]


@pytest.mark.parametrize("stage", STAGES)
def test_every_group_declares_inline_egress_so_ec2_adds_no_allow_all_default(stage, request):
    synthesized = request.getfixturevalue(stage)
    names = group_names(synthesized)
    resources = synthesized.templates["network"]["Resources"]
    for resource_id, name in names.items():
        egress = resources[resource_id]["Properties"].get("SecurityGroupEgress")
        assert egress, f"{name}: no inline egress, CloudFormation would add allow-all"
        assert all(rule["IpProtocol"] != "-1" for rule in egress), name


@pytest.mark.parametrize("stage", STAGES)
def test_web_instances_can_never_reach_backend_instances_directly(stage, request):
    rules = sg_rules(request.getfixturevalue(stage))
    assert not [r for r in rules if r[0] == "in" and r[1] == "backend_instances" and r[5] != "internal_alb"]
    assert not [r for r in rules if r[0] == "out" and r[1] == "web_instances" and r[5] == "backend_instances"]
    # No group admits its own members (instance-to-instance traffic inside a tier).
    assert not [r for r in rules if r[0] == "in" and r[1] == r[5]]


def test_only_the_public_alb_accepts_traffic_from_anywhere(sandbox, production, local):
    """Across every template of every stage: no ingress from 0.0.0.0/0 or ::/0 but the web ALB's."""
    for synthesized in (sandbox, production, local):
        public_alb = logical_id(synthesized.app.stacks["network"].security_groups.web_alb)
        for key, template in synthesized.templates.items():
            for resource_id, resource in template.get("Resources", {}).items():
                props = resource.get("Properties", {})
                if resource["Type"] == "AWS::EC2::SecurityGroup":
                    rules = [(resource_id, rule) for rule in props.get("SecurityGroupIngress", [])]
                elif resource["Type"] == "AWS::EC2::SecurityGroupIngress":
                    rules = [(json.dumps(props.get("GroupId")), props)]
                else:
                    continue
                for group, rule in rules:
                    if rule.get("CidrIp") == ANYWHERE or rule.get("CidrIpv6") == "::/0":
                        assert (key, group) == ("network", public_alb), f"{synthesized.app.config.stage}: {key}/{group}"
