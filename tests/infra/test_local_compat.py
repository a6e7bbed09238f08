"""The local cloud's compatibility shims (localcloud/compat.py): needed, working, and sufficient.

MiniStack runs in its own venv (.venv-cloud: it pins botocore), so these tests ask that interpreter
in a subprocess. Without .venv-cloud (`make test-fast`) they skip; `make test` builds it first.
"""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from localcloud import compat
from localcloud.settings import CLOUD_PYTHON, ROOT

pytestmark = pytest.mark.skipif(not CLOUD_PYTHON.exists(), reason=".venv-cloud missing: run `make setup`")


# An alarm on metric math, the form cdk-monitoring-constructs emits.
METRIC_MATH_ALARM = {
    "ComparisonOperator": "GreaterThanThreshold", "EvaluationPeriods": 1, "Threshold": 0,
    "Metrics": [
        {"Id": "m1", "ReturnData": False, "MetricStat": {"Metric": {
            "Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible"}, "Period": 300, "Stat": "Maximum"}},
        {"Id": "expr", "Expression": "FILL(m1, 0)", "ReturnData": True},
    ],
}
METRIC_MATH_ALARM_SOURCE = f"METRIC_MATH_ALARM = json.loads({json.dumps(json.dumps(METRIC_MATH_ALARM))})"


def _in_cloud_venv(script: str) -> dict:
    """Run `script` with MiniStack's interpreter; it prints one JSON document as its last line."""
    result = subprocess.run(
        [str(CLOUD_PYTHON), "-c", textwrap.dedent(script)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def native_types() -> set[str]:
    return set(
        _in_cloud_venv(
            """
            import json
            from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS
            print(json.dumps(sorted(_RESOURCE_HANDLERS)))
            """
        )
    )


@pytest.fixture(scope="module")
def node_sdk_stubs() -> str:
    """Source of MiniStack's Node.js Lambda worker, which carries its AWS SDK v3 client stubs."""
    return _in_cloud_venv(
        """
        import json
        from ministack.core import lambda_runtime
        print(json.dumps(lambda_runtime._NODEJS_WORKER_SCRIPT))
        """
    )


@pytest.fixture(scope="module")
def placeholder_behaviour() -> dict[str, bool]:
    """Run MiniStack's own (unshimmed) API Gateway handlers; True where they still create nothing."""
    return _in_cloud_venv(
        """
        import json
        from ministack.services import apigateway_v1 as apigw
        from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS as H
        """ + METRIC_MATH_ALARM_SOURCE + """
        api, _ = H["AWS::ApiGateway::RestApi"]["create"]("Api", {"Name": "probe"}, "t")
        root = next(iter(apigw._resources[api]))
        validator, _ = H["AWS::ApiGateway::RequestValidator"]["create"](
            "V", {"RestApiId": api, "ValidateRequestBody": True}, "t")
        H["AWS::ApiGateway::Method"]["create"]("M", {
            "RestApiId": api, "ResourceId": root, "HttpMethod": "POST", "RequestValidatorId": validator}, "t")
        method = apigw._resources[api][root]["resourceMethods"]["POST"]
        try:
            H["AWS::CloudWatch::Alarm"]["create"]("A", METRIC_MATH_ALARM, "t")
            refuses_metric_math = False
        except ValueError as error:
            refuses_metric_math = "metric math" in str(error)
        print(json.dumps({
            "AWS::ApiGateway::RequestValidator": validator not in apigw._request_validators.get(api, {}),
            "AWS::ApiGateway::Method": method.get("requestValidatorId") != validator,
            "AWS::CloudWatch::Alarm": refuses_metric_math,
        }))
        """
    )


@pytest.mark.parametrize("shim", compat.SHIMS, ids=lambda shim: shim.resource_type)
def test_each_shim_is_still_needed(native_types, node_sdk_stubs, placeholder_behaviour, shim):
    message = f"MiniStack now supports {shim.resource_type} natively: delete its shim"
    if shim.gap in (compat.PLACEHOLDER, compat.PARTIAL):
        assert placeholder_behaviour[shim.resource_type] is True, message
        return
    assert shim.resource_type not in native_types, message
    if shim.gap == compat.NODE_SDK:
        assert f'"{shim.sdk_module}"' not in node_sdk_stubs, message
        assert '"@aws-sdk/client-sqs"' in node_sdk_stubs  # the probe reads the real stub table


def test_every_resource_type_of_the_local_stage_can_be_provisioned(local, native_types):
    """A new stack that uses a type MiniStack cannot provision fails here, not halfway through `make local`."""
    used = {
        resource["Type"]
        for template in local.templates.values()
        for resource in template.get("Resources", {}).values()
    }
    unprovisionable = sorted(t for t in used if t not in native_types and t not in compat.SHIMMED_TYPES
                             and not t.startswith("Custom::"))
    assert unprovisionable == [], f"add a shim to localcloud/compat.py for: {unprovisionable}"
    assert {"AWS::DynamoDB::Table", "AWS::SQS::Queue"} <= used  # the synthesized app really was inspected


def test_shims_record_resources_in_ministacks_ec2_api():
    """Provision each shim the way MiniStack's CloudFormation engine does, then read EC2's own state back."""
    state = _in_cloud_venv(
        """
        import json
        from localcloud import compat
        from ministack.services import ec2
        from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS as H

        from ministack.services import waf

        def from_waf(resource_arn):
            status, _, body = waf._get_web_acl_for_resource({"ResourceArn": resource_arn})
            return json.loads(body)["WebACL"]["ARN"] if status == 200 else None

        installed = compat.install()
        vpc, _ = H["AWS::EC2::VPC"]["create"]("Vpc", {"CidrBlock": "10.9.0.0/16"}, "t")
        subnet, _ = H["AWS::EC2::Subnet"]["create"]("Sn", {"VpcId": vpc, "CidrBlock": "10.9.0.0/24"}, "t")
        alb, _ = H["AWS::EC2::SecurityGroup"]["create"]("Alb", {"GroupDescription": "alb", "VpcId": vpc}, "t")
        web, _ = H["AWS::EC2::SecurityGroup"]["create"]("Web", {"GroupDescription": "web", "VpcId": vpc}, "t")
        rule_props = {"GroupId": web, "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                      "SourceSecurityGroupId": alb, "Description": "from the ALB"}
        rule, _ = H["AWS::EC2::SecurityGroupIngress"]["create"]("In", rule_props, "t")
        egress_props = {"GroupId": alb, "IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080,
                        "DestinationSecurityGroupId": web}
        out_rule, _ = H["AWS::EC2::SecurityGroupEgress"]["create"]("Out", egress_props, "t")
        ingress = ec2._security_groups[web]["IpPermissions"]
        egress = ec2._security_groups[alb]["IpPermissionsEgress"]
        ip, eip = H["AWS::EC2::EIP"]["create"]("Eip", {"Domain": "vpc"}, "t")
        nat, _ = H["AWS::EC2::NatGateway"]["create"]("Nat", {"SubnetId": subnet, "AllocationId": eip["AllocationId"]}, "t")
        flow, _ = H["AWS::EC2::FlowLog"]["create"]("Flow", {"ResourceId": vpc, "ResourceType": "VPC",
                                                           "TrafficType": "REJECT", "LogGroupName": "flows"}, "t")
        acl, acl_attrs = H["AWS::WAFv2::WebACL"]["create"]("Acl", {
            "Scope": "REGIONAL", "DefaultAction": {"Allow": {}},
            "VisibilityConfig": {"CloudWatchMetricsEnabled": True, "MetricName": "acl", "SampledRequestsEnabled": True},
        }, "t")
        lb_arn = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef"
        assoc_props = {"WebACLArn": acl_attrs["Arn"], "ResourceArn": lb_arn}
        assoc, _ = H["AWS::WAFv2::WebACLAssociation"]["create"]("Assoc", assoc_props, "t")
        logging_props = {"ResourceArn": acl_attrs["Arn"], "LogDestinationConfigs": ["arn:aws:logs:us-east-1:0:log-group:aws-waf-logs-x"]}
        logging_id, _ = H["AWS::WAFv2::LoggingConfiguration"]["create"]("Log", logging_props, "t")
        try:
            H["AWS::WAFv2::LoggingConfiguration"]["create"]("Log2", {**logging_props, "ResourceArn": acl_attrs["Arn"] + "x"}, "t")
            logging_of_missing_acl = "accepted"
        except ValueError:
            logging_of_missing_acl = "refused"
        vpc_attrs = H["AWS::EC2::VPC"]["create"]("Vpc2", {"CidrBlock": "10.8.0.0/16"}, "t")[1]
        default_sg = vpc_attrs["DefaultSecurityGroup"]
        default_egress_before = len(ec2._security_groups[default_sg]["IpPermissionsEgress"])
        H["Custom::VpcRestrictDefaultSG"]["create"]("Restrict", {"DefaultSecurityGroupId": default_sg}, "t")
        snapshot = {
            "installed": installed,
            "waf": from_waf(lb_arn) == acl_attrs["Arn"],
            "waf_logging": [logging_id == acl_attrs["Arn"], logging_of_missing_acl,
                            compat.RECORDS["AWS::WAFv2::LoggingConfiguration"][logging_id]["LogDestinationConfigs"][0][-1]],
            "default_sg": [default_egress_before, len(ec2._security_groups[default_sg]["IpPermissionsEgress"]),
                           len(ec2._security_groups[default_sg]["IpPermissions"])],
            "ingress": [[p["IpProtocol"], p["FromPort"], p["ToPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]]]
                        for p in ingress],
            "egress_to_web": sum(1 for p in egress for g in p["UserIdGroupPairs"] if g.get("GroupId") == web),
            "eip": ec2._addresses[eip["AllocationId"]]["PublicIp"] == ip,
            "nat": [ec2._nat_gateways[nat]["SubnetId"] == subnet, ec2._nat_gateways[nat]["AllocationId"]],
            "flow": [ec2._flow_logs[flow]["ResourceId"] == vpc, ec2._flow_logs[flow]["TrafficType"]],
        }
        H["AWS::WAFv2::WebACLAssociation"]["delete"](assoc, assoc_props)
        H["AWS::EC2::SecurityGroupIngress"]["delete"](rule, rule_props)
        H["AWS::EC2::SecurityGroupEgress"]["delete"](out_rule, egress_props)
        H["AWS::EC2::FlowLog"]["delete"](flow, {})
        H["AWS::EC2::NatGateway"]["delete"](nat, {})
        H["AWS::EC2::EIP"]["delete"](ip, {})
        snapshot["after_delete"] = {
            "ingress": len(ec2._security_groups[web]["IpPermissions"]),
            "egress_to_web": sum(1 for p in ec2._security_groups[alb]["IpPermissionsEgress"]
                                 for g in p["UserIdGroupPairs"] if g.get("GroupId") == web),
            "flow": flow in ec2._flow_logs,
            "nat": ec2._nat_gateways[nat]["State"],
            "eip": eip["AllocationId"] in ec2._addresses,
            "waf": from_waf(lb_arn),
        }
        print(json.dumps(snapshot))
        """
    )
    assert sorted(state["installed"]) == sorted(compat.SHIMMED_TYPES)  # every gap is still open
    assert state["ingress"] == [["tcp", 8080, 8080, [state["ingress"][0][3][0]]]]
    assert state["egress_to_web"] == 1
    assert state["eip"] is True
    assert state["nat"][0] is True and state["nat"][1].startswith("eipalloc-")
    assert state["flow"] == [True, "REJECT"]
    assert state["waf"] is True
    assert state["waf_logging"] == [True, "refused", "x"]
    assert state["default_sg"] == [1, 0, 0]  # allow-all egress revoked, no ingress left
    assert state["after_delete"] == {
        "ingress": 0, "egress_to_web": 0, "flow": False, "nat": "deleted", "eip": False, "waf": None,
    }


def test_emulator_binds_loopback_only():
    """The launcher's environment keeps MiniStack off every interface but 127.0.0.1."""
    env = _in_cloud_venv(
        """
        import json, os
        from localcloud.emulator import configure_environment
        os.environ["BIND_HOST"] = "0.0.0.0"
        configure_environment(4999, "127.0.0.1", 6390)
        print(json.dumps({k: os.environ[k] for k in ("BIND_HOST", "GATEWAY_PORT", "REDIS_HOST", "REDIS_PORT")}))
        """
    )
    assert env == {"BIND_HOST": "127.0.0.1", "GATEWAY_PORT": "4999", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": "6390"}


def test_api_gateway_shims_create_a_validator_the_method_uses():
    state = _in_cloud_venv(
        """
        import json
        from localcloud import compat
        from ministack.services import apigateway_v1 as apigw
        from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS as H

        compat.install()
        api, _ = H["AWS::ApiGateway::RestApi"]["create"]("Api", {"Name": "probe"}, "t")
        root = next(iter(apigw._resources[api]))
        props = {"RestApiId": api, "ValidateRequestBody": True, "ValidateRequestParameters": "false"}
        validator, attrs = H["AWS::ApiGateway::RequestValidator"]["create"]("V", props, "t")
        H["AWS::ApiGateway::Method"]["create"]("M", {
            "RestApiId": api, "ResourceId": root, "HttpMethod": "POST", "RequestValidatorId": validator}, "t")
        stored = apigw._request_validators[api][validator]
        method = apigw._resources[api][root]["resourceMethods"]["POST"]
        H["AWS::ApiGateway::RequestValidator"]["delete"](validator, props)
        print(json.dumps({
            "attr": attrs["RequestValidatorId"] == validator,
            "flags": [stored["validateRequestBody"], stored["validateRequestParameters"]],
            "method": method["requestValidatorId"] == validator,
            "deleted": validator not in apigw._request_validators[api],
        }))
        """
    )
    assert state == {"attr": True, "flags": [True, False], "method": True, "deleted": True}


def test_alarm_shim_stores_metric_math_alarms_and_leaves_plain_alarms_native():
    state = _in_cloud_venv(
        """
        import json
        from localcloud import compat
        from ministack.services import cloudwatch
        from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS as H
        """ + METRIC_MATH_ALARM_SOURCE + """
        compat.install()
        math_name, _ = H["AWS::CloudWatch::Alarm"]["create"]("Math", METRIC_MATH_ALARM, "t")
        plain = {"MetricName": "Errors", "Namespace": "AWS/Lambda", "ComparisonOperator": "GreaterThanThreshold",
                 "EvaluationPeriods": 1, "Threshold": 1, "Period": 60, "Statistic": "Sum"}
        plain_name, _ = H["AWS::CloudWatch::Alarm"]["create"]("Plain", plain, "t")
        math, native = cloudwatch._alarms[math_name], cloudwatch._alarms[plain_name]
        result = {
            "math": [len(math["Metrics"]), math["Threshold"], math["StateValue"], math["MetricName"]],
            "plain": [native["MetricName"], native.get("Metrics")],
        }
        H["AWS::CloudWatch::Alarm"]["delete"](math_name, METRIC_MATH_ALARM)
        result["deleted"] = math_name not in cloudwatch._alarms
        print(json.dumps(result))
        """
    )
    assert state == {"math": [2, 0.0, "INSUFFICIENT_DATA", None], "plain": ["Errors", None], "deleted": True}


LAMBDA_RAISING = """
import json
from localcloud import compat
from ministack.services import lambda_svc
from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS as H

if PATCHED:
    compat.install_runtime_patches()
code = "class PaymentGatewayUnavailable(Exception):\\n    pass\\n\\ndef handler(event, context):\\n    raise PaymentGatewayUnavailable('retry me')\\n"
H["AWS::Lambda::Function"]["create"]("Fn", {
    "FunctionName": "probe", "Runtime": "python3.11", "Handler": "index.handler",
    "Role": "arn:aws:iam::000000000000:role/probe", "Code": {"ZipFile": code}}, "t")
print(json.dumps(lambda_svc._execute_function(lambda_svc._functions["probe"], {})["body"]))
"""


ALB_TWO_PORTS = """
import json
from localcloud import compat
from ministack.services import alb

if PATCHED:
    compat.install_runtime_patches()
tg = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/probe/1"
alb._tgs[tg] = {"TargetGroupArn": tg, "Port": 8080, "TargetType": "instance"}
alb._targets[tg] = []
def call(action, **params):
    return alb._ACTION_MAP[action]({"TargetGroupArn": [tg], **{k: [v] for k, v in params.items()}})
call("RegisterTargets", **{"Targets.member.1.Id": "127.0.0.1", "Targets.member.1.Port": "8081",
                          "Targets.member.2.Id": "127.0.0.1", "Targets.member.2.Port": "8082"})
after_register = sorted((t["Id"], t.get("Port")) for t in alb._targets[tg])
call("DeregisterTargets", **{"Targets.member.1.Id": "127.0.0.1", "Targets.member.1.Port": "8081"})
after_deregister = sorted((t["Id"], t.get("Port")) for t in alb._targets[tg])
print(json.dumps({"registered": after_register, "left": after_deregister}))
"""

PROBES = {
    compat.LAMBDA_ERROR_TYPE: LAMBDA_RAISING,
    compat.ALB_TARGET_PORT: ALB_TWO_PORTS,
}


def test_every_runtime_patch_has_a_probe():
    assert set(PROBES) == set(compat.RUNTIME_PATCHES)


@pytest.mark.parametrize("patch", compat.RUNTIME_PATCHES)
def test_each_runtime_patch_is_still_needed(patch):
    unpatched = _in_cloud_venv("PATCHED = False\n" + PROBES[patch])
    still_needed = f"MiniStack now handles {patch!r} natively: delete its patch in localcloud/compat.py"
    if patch == compat.LAMBDA_ERROR_TYPE:
        assert unpatched["errorMessage"] == "retry me"
        assert unpatched["errorType"] == "Runtime.HandlerError", still_needed
    else:
        # Two ports of one host collapse into the first one registered; deregistering it empties the group.
        assert unpatched == {"registered": [["127.0.0.1", 8081]], "left": []}, still_needed


def test_alb_keeps_one_target_per_host_and_port_as_on_aws():
    patched = _in_cloud_venv("PATCHED = True\n" + ALB_TWO_PORTS)
    assert patched == {"registered": [["127.0.0.1", 8081], ["127.0.0.1", 8082]], "left": [["127.0.0.1", 8082]]}


def test_lambda_errors_carry_the_exception_class_name_as_on_aws():
    body = _in_cloud_venv("PATCHED = True\n" + LAMBDA_RAISING)
    assert body == {"errorMessage": "retry me", "errorType": "PaymentGatewayUnavailable"}
