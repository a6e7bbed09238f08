"""The local cloud's compatibility shims (localcloud/compat.py): needed, working, and sufficient.

MiniStack runs in its own venv (.venv-cloud: it pins botocore), so these tests ask that interpreter
in a subprocess. Without .venv-cloud (`make test-fast`) they skip; `make test` builds it first.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import textwrap
from typing import Any

import pytest

from localcloud import compat
from localcloud.settings import CLOUD_PYTHON, ROOT

pytestmark = pytest.mark.skipif(not CLOUD_PYTHON.exists(), reason=".venv-cloud missing: run `make setup`")


# An alarm on metric math, the form cdk-monitoring-constructs emits.
METRIC_MATH_ALARM = {
    "ComparisonOperator": "GreaterThanThreshold",
    "EvaluationPeriods": 1,
    "Threshold": 0,
    "Metrics": [
        {
            "Id": "m1",
            "ReturnData": False,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/SQS", "MetricName": "ApproximateNumberOfMessagesVisible"},
                "Period": 300,
                "Stat": "Maximum",
            },
        },
        {"Id": "expr", "Expression": "FILL(m1, 0)", "ReturnData": True},
    ],
}
METRIC_MATH_ALARM_SOURCE = f"METRIC_MATH_ALARM = json.loads({json.dumps(json.dumps(METRIC_MATH_ALARM))})"


def _in_cloud_venv(script: str) -> Any:
    """Run `script` with MiniStack's interpreter; it prints one JSON document as its last line."""
    scratch = tempfile.mkdtemp(prefix="localcloud-probe-")  # the supervisor's log and instance logs
    result = subprocess.run(
        [str(CLOUD_PYTHON), "-c", textwrap.dedent(script)],
        cwd=ROOT,
        env={**os.environ, "LOCALCLOUD_STATE_DIR": scratch, "LOCALCLOUD_INSTANCE_PYTHON": str(CLOUD_PYTHON)},
        capture_output=True,
        text=True,
        timeout=120,
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
        """
        + METRIC_MATH_ALARM_SOURCE
        + """
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
    if shim.gap == compat.LAYER_BINARY:
        # MiniStack's local executor runs the handler on this host, where no layer is unpacked at /opt.
        assert shim.layer_binary is not None and not os.path.exists(shim.layer_binary), message
    if shim.gap == compat.NODE_SDK:
        assert f'"{shim.sdk_module}"' not in node_sdk_stubs, message
        assert '"@aws-sdk/client-sqs"' in node_sdk_stubs  # the probe reads the real stub table


def test_every_resource_type_of_the_local_stage_can_be_provisioned(local, native_types):
    """A new stack that uses a type MiniStack cannot provision fails here, not halfway through `make local`."""
    used = {
        resource["Type"] for template in local.templates.values() for resource in template.get("Resources", {}).values()
    }
    unprovisionable = sorted(
        t for t in used if t not in native_types and t not in compat.SHIMMED_TYPES and not t.startswith("Custom::")
    )
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
        "ingress": 0,
        "egress_to_web": 0,
        "flow": False,
        "nat": "deleted",
        "eip": False,
        "waf": None,
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
        """
        + METRIC_MATH_ALARM_SOURCE
        + """
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

# A REST API like the app's POST /orders (model, validator on body and header, the app's gateway-response
# templates) on a MOCK integration, driven through MiniStack's own control and data planes.
API_VALIDATION = """
import asyncio, json
from localcloud import compat
from ministack.services import apigateway_v1 as apigw

if PATCHED:
    compat.install_runtime_patches()
MODEL = {"type": "object", "required": ["customer_id", "items"], "properties": {
    "customer_id": {"type": "string", "minLength": 1},
    "items": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["quantity"],
              "properties": {"quantity": {"type": "integer", "minimum": 1}}}}}}
TEMPLATE = '{"message": "$context.error.message: $context.error.validationErrorString", "requestId": "$context.requestId"}'

async def call(method, path, data):
    status, _, body = await apigw.handle_request(method, path, {}, json.dumps(data).encode(), {})
    assert status < 300, (method, path, status, body)
    return json.loads(body) if body else {}

async def probe():
    api = (await call("POST", "/restapis", {"name": "probe"}))["id"]
    root = (await call("GET", f"/restapis/{api}/resources", {}))["item"][0]["id"]
    orders = (await call("POST", f"/restapis/{api}/resources/{root}", {"pathPart": "orders"}))["id"]
    await call("POST", f"/restapis/{api}/models", {"name": "Order", "contentType": "application/json",
                                                   "schema": json.dumps(MODEL)})
    validator = (await call("POST", f"/restapis/{api}/requestvalidators", {
        "name": "all", "validateRequestBody": True, "validateRequestParameters": True}))["id"]
    await call("PUT", f"/restapis/{api}/resources/{orders}/methods/POST", {
        "authorizationType": "NONE", "requestValidatorId": validator, "requestModels": {"application/json": "Order"},
        "requestParameters": {"method.request.header.Idempotency-Key": True}})
    await call("PUT", f"/restapis/{api}/resources/{orders}/methods/POST/integration", {
        "type": "MOCK", "requestTemplates": {"application/json": '{"statusCode": 200}'}})
    for response_type in ("BAD_REQUEST_BODY", "BAD_REQUEST_PARAMETERS", "DEFAULT_4XX"):
        await call("PUT", f"/restapis/{api}/gatewayresponses/{response_type}", {
            "statusCode": "400" if response_type != "DEFAULT_4XX" else "404",
            "responseTemplates": {"application/json": TEMPLATE}})
    await call("POST", f"/restapis/{api}/deployments", {"stageName": "v1"})
    answers = {}
    for name, path, body, headers in (
        ("missing items", "/orders", {"customer_id": "c"}, {"Idempotency-Key": "k"}),
        ("quantity 0", "/orders", {"customer_id": "c", "items": [{"quantity": 0}]}, {"Idempotency-Key": "k"}),
        ("not JSON", "/orders", "{not json", {"Idempotency-Key": "k"}),
        ("no Idempotency-Key", "/orders", {"customer_id": "c", "items": [{"quantity": 1}]}, {}),
        ("valid", "/orders", {"customer_id": "c", "items": [{"quantity": 1}]}, {"Idempotency-Key": "k"}),
        ("no such path", "/nowhere", {}, {}),
    ):
        raw = body if isinstance(body, str) else json.dumps(body)
        status, response_headers, answer = await apigw.handle_execute(
            api, "v1", "POST", path, {"Content-Type": "application/json", **headers}, raw.encode(), {})
        answers[name] = [status, json.loads(answer), response_headers.get("x-amzn-requestid")]
    return answers

print(json.dumps(asyncio.run(probe())))
"""

# Five concurrent invocations of a function whose module takes 0.4 s to import (its init), on a host
# with one init slot; every init writes its start and end time.
LAMBDA_BURST = """
import json, os, tempfile, threading, time
os.environ["LOCALCLOUD_LAMBDA_INIT_SLOTS"] = "1"
from localcloud import compat
from ministack.services import lambda_svc
from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS as H

if PATCHED:
    compat.install_runtime_patches()
log = tempfile.mktemp()
code = (
    "import os, time\\nstarted = time.time()\\ntime.sleep(0.4)\\n"
    "with open(os.environ['INIT_LOG'], 'a') as f:\\n    f.write(f'{started} {time.time()}\\\\n')\\n"
    "def handler(event, context):\\n    return {'n': event['n']}\\n"
)
H["AWS::Lambda::Function"]["create"]("Fn", {
    "FunctionName": "burst", "Runtime": "python3.11", "Handler": "index.handler", "Timeout": 30,
    "Role": "arn:aws:iam::000000000000:role/probe", "Code": {"ZipFile": code},
    "Environment": {"Variables": {"INIT_LOG": log}}}, "t")
answers = []
def invoke(n):
    answers.append(lambda_svc._execute_function(lambda_svc._functions["burst"], {"n": n})["body"])
threads = [threading.Thread(target=invoke, args=(n,)) for n in range(5)]
threads[0].start()
time.sleep(0.1)  # the first worker is initialising when the other four arrive
for t in threads[1:]: t.start()
for t in threads: t.join()
inits = sorted(tuple(map(float, line.split())) for line in open(log))
overlap = max(sum(1 for s, e in inits if s <= start < e) for start, _ in inits)
print(json.dumps({"answers": sorted(a["n"] for a in answers), "inits": len(inits), "overlap": overlap}))
"""

# Two targets of one instance target group: one answers /health, nothing listens on the other (two
# host names, so that MiniStack's own RegisterTargets, which keys targets by Id, keeps both).
TARGETS_LIVE_AND_DEAD = """
import asyncio, http.server, json, re, socket, threading, time
from localcloud import compat
from ministack.services import alb

if PATCHED:
    compat.install_runtime_patches()
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
threading.Thread(target=server.serve_forever, daemon=True).start()
live = server.server_address[1]
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0)); dead = sock.getsockname()[1]
tg = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/probe/2"
alb._tgs[tg] = {"TargetGroupArn": tg, "Port": live, "TargetType": "instance", "HealthCheckPath": "/health",
                "HealthCheckIntervalSeconds": 1, "HealthCheckTimeoutSeconds": 1, "HealthyThresholdCount": 2,
                "UnhealthyThresholdCount": 2, "Matcher": {"HttpCode": "200"}}
alb._targets[tg] = []
alb._ACTION_MAP["RegisterTargets"]({"TargetGroupArn": [tg], "Targets.member.1.Id": ["127.0.0.1"],
    "Targets.member.1.Port": [str(live)], "Targets.member.2.Id": ["localhost"], "Targets.member.2.Port": [str(dead)]})
time.sleep(4)
xml = alb._ACTION_MAP["DescribeTargetHealth"]({"TargetGroupArn": [tg]})[2].decode()
states = {port: state for port, state in re.findall(r"<Port>(\\d+)</Port>.*?<State>(\\w+)</State>", xml)}
async def forward():
    answer = await alb._forward_to_tg(tg, "GET", "/", {}, b"", {})
    status = answer[0] if isinstance(answer, tuple) else answer.status
    return status
statuses = [asyncio.run(forward()) for _ in range(20)]
print(json.dumps({"live": states.get(str(live)), "dead": states.get(str(dead)), "statuses": sorted(set(statuses))}))
"""

# An Auto Scaling group created as CloudFormation creates it, with a launch template whose user data
# starts `python -m services.probe` from a bundle in S3 (served here by a stand-in gateway), desired 2.
GROUP_OF_TWO = """
import base64, http.server, io, json, os, signal, tempfile, threading, time, zipfile
bundle = io.BytesIO()
with zipfile.ZipFile(bundle, "w") as archive:
    archive.writestr("services/__init__.py", "")
    archive.writestr("services/probe/__init__.py", "")
    archive.writestr("services/probe/__main__.py",
        "import http.server, os\\n"
        "class H(http.server.BaseHTTPRequestHandler):\\n"
        "    def do_GET(self):\\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\\n"
        "    def log_message(self, *a): pass\\n"
        "http.server.HTTPServer(('127.0.0.1', int(os.environ['SERVICE_PORT'])), H).serve_forever()\\n")
class Gateway(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(bundle.getvalue())
    def log_message(self, *args):
        pass
gateway = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
threading.Thread(target=gateway.serve_forever, daemon=True).start()
os.environ["GATEWAY_PORT"] = str(gateway.server_address[1])
os.environ["LOCALCLOUD_INSTANCE_PORTS"] = "18081-18099"
from localcloud import compat
from ministack.services import autoscaling, ec2
from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS as H

if PATCHED:
    compat.install_runtime_patches()
user_data = (
    "#!/bin/bash\\naws s3 cp 's3://probe-bucket/bundle.zip' '/var/tmp/b.zip'\\n"
    "Environment=PROBE=1\\nExecStart=/opt/venv/bin/python -m services.probe\\n"
)
lt_id, _ = H["AWS::EC2::LaunchTemplate"]["create"]("Lt", {"LaunchTemplateData": {
    "ImageId": "ami-0123456789abcdef0", "UserData": base64.b64encode(user_data.encode()).decode()}}, "probe")
tg_arn = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/probe/3"
name, _ = H["AWS::AutoScaling::AutoScalingGroup"]["create"]("Asg", {
    "MinSize": "2", "MaxSize": "3", "LaunchTemplate": {"LaunchTemplateId": lt_id, "Version": "1"},
    "TargetGroupARNs": [tg_arn], "HealthCheckType": "ELB", "HealthCheckGracePeriod": 30}, "probe")
def in_service():
    return [i for i in autoscaling._asgs[name]["Instances"] if i["LifecycleState"] == "InService"]
deadline = time.time() + 30
while time.time() < deadline and len(in_service()) < 2:
    time.sleep(0.2)
first = [i["InstanceId"] for i in in_service()]
pids = [int(t["Value"]) for i in first for t in ec2._tags.get(i, []) if t["Key"] == "localcloud:pid"]
replaced = False
if pids:
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.time() + 30
    while time.time() < deadline and not replaced:
        now = [i["InstanceId"] for i in in_service()]
        replaced = len(now) == 2 and first[0] not in now
        time.sleep(0.2)
for pid in pids:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
if PATCHED:
    compat.supervisor._supervisor.shutdown()
print(json.dumps({"in_service": len(first), "with_process": len(pids), "replaced": replaced,
                  "target_groups": autoscaling._asgs[name].get("TargetGroupARNs")}))
"""

# The storefront's bucket as the Data stack makes it (enforce-SSL deny, CloudFront's origin access control
# admitted for this account's distributions), one page in it, fetched as a distribution's S3 origin.
S3_ORIGIN_BEHIND_OAC = """
import json
from localcloud import compat
from ministack.services import cloudfront, s3
from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS as H

if PATCHED:
    compat.install_runtime_patches()
bucket, _ = H["AWS::S3::Bucket"]["create"]("Assets", {"BucketName": "probe-assets"}, "t")
H["AWS::S3::BucketPolicy"]["create"]("Policy", {"Bucket": bucket, "PolicyDocument": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}/*"],
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Effect": "Allow", "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
     "Resource": f"arn:aws:s3:::{bucket}/*",
     "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:cloudfront::000000000000:distribution/*"}}}]}}, "t")
s3._put_object(bucket, "index.html", b"<html>probe</html>", {"content-type": "text/html"})
origin = {"s3_bucket": bucket, "oac_id": "E1PROBE", "origin_path": ""}
arn = "arn:aws:cloudfront::000000000000:distribution/E2PROBE"
status, _headers, body = cloudfront._serve_s3_origin(origin, "GET", "/index.html", {}, arn)
other, _h, _b = cloudfront._serve_s3_origin(origin, "GET", "/index.html", {}, "arn:aws:cloudfront::111111111111:distribution/E3")
print(json.dumps({"status": status, "body": body.decode() if isinstance(body, bytes) else str(body), "other_account": other}))
"""

# The distribution's /me/* behaviour: the REST API as a custom origin (RestApiOrigin: the execute-api host,
# the stage as origin path), fetched for a viewer's POST; a recording server stands where the emulator listens.
API_GATEWAY_AS_ORIGIN = """
import asyncio, json, os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from localcloud import cdn
from ministack.services import cloudfront

seen = []
class Gateway(BaseHTTPRequestHandler):
    def do_POST(self):
        seen.append({"path": self.path, "host": self.headers["Host"], "authorization": self.headers["Authorization"],
                     "body": self.rfile.read(int(self.headers["Content-Length"])).decode()})
        self.send_response(202); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ["GATEWAY_PORT"] = str(server.server_address[1])
if PATCHED:
    cdn.patch_api_gateway_origin()
origin = {"domain_name": "abc123.execute-api.us-east-1.amazonaws.com", "origin_path": "/v1", "protocol_policy": "https-only",
          "http_port": 80, "https_port": 443, "custom_headers": [], "read_timeout": 10}
viewer = {"host": "d111.cloudfront.net", "authorization": "id-token", "content-type": "application/json"}
try:
    status, _reason, _headers, _body = asyncio.run(cloudfront._fetch_from_origin(
        origin, "POST", "/me/orders/o-1/checkout", "", viewer, b'{"card_number": "4242424242424242"}',
        True, "127.0.0.1", "", "arn:aws:cloudfront::000000000000:distribution/E1"))
    answer = {"status": status, "seen": seen}
except Exception as error:
    answer = {"error": type(error).__name__, "message": str(error), "seen": seen}
print(json.dumps(answer))
"""

PROBES = {
    compat.API_GATEWAY_ORIGIN: API_GATEWAY_AS_ORIGIN,
    compat.S3_ORIGIN_TLS: S3_ORIGIN_BEHIND_OAC,
    compat.TARGET_HEALTH: TARGETS_LIVE_AND_DEAD,
    compat.AUTO_SCALING: GROUP_OF_TWO,
    compat.LAMBDA_WORKER_POOL: LAMBDA_BURST,
    compat.LAMBDA_ERROR_TYPE: LAMBDA_RAISING,
    compat.ALB_TARGET_PORT: ALB_TWO_PORTS,
    compat.API_VALIDATION_ERROR_STRING: API_VALIDATION,
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
    elif patch == compat.API_VALIDATION_ERROR_STRING:
        # MiniStack refuses the requests (and renders $context.error.message) but leaves the variable verbatim.
        refused = {name: unpatched[name] for name in ("missing items", "quantity 0", "no Idempotency-Key")}
        assert {name: status for name, (status, _body, _id) in refused.items()} == {name: 400 for name in refused}
        assert unpatched["no Idempotency-Key"][1]["message"].startswith("Missing required request parameters")
        assert all(
            "$context.error.validationErrorString" in body["message"] for _status, body, _id in refused.values()
        ), still_needed
    elif patch == compat.API_GATEWAY_ORIGIN:
        # The execute-api host is AWS-owned: MiniStack refuses to dial it, and nothing reaches an API.
        assert unpatched["error"] == "OriginUnreachable" and unpatched["seen"] == [], still_needed
    elif patch == compat.S3_ORIGIN_TLS:
        # The enforce-SSL deny matches the origin fetch (the viewer's plain HTTP decides it): every page is 403.
        assert unpatched["status"] == 403, still_needed
    elif patch == compat.LAMBDA_WORKER_POOL:
        # Every invocation that finds the pool busy starts a worker, and all of them initialise at once.
        assert unpatched["answers"] == [0, 1, 2, 3, 4]
        assert unpatched["inits"] == 5 and unpatched["overlap"] > 1, still_needed
    elif patch == compat.TARGET_HEALTH:
        # Every target reports healthy forever, and the data plane sends requests to the dead one too.
        assert unpatched["live"] == "healthy"
        assert unpatched["dead"] == "healthy" and 502 in unpatched["statuses"], still_needed
    elif patch == compat.AUTO_SCALING:
        # The group holds no instance (or mock ones that run nothing) and forgets its target groups.
        assert unpatched["with_process"] == 0 and unpatched["target_groups"] is None, still_needed
    else:
        # Two ports of one host collapse into the first one registered; deregistering it empties the group.
        assert unpatched == {"registered": [["127.0.0.1", 8081]], "left": []}, still_needed


def test_cloudfront_sends_the_customer_routes_to_the_emulators_api_with_the_token_and_without_the_viewers_host():
    patched = _in_cloud_venv("PATCHED = True\n" + API_GATEWAY_AS_ORIGIN)
    assert patched["status"] == 202, patched
    (request,) = patched["seen"]
    assert request["path"] == "/_aws/execute-api/abc123/v1/me/orders/o-1/checkout"
    assert request["authorization"] == "id-token" and request["host"] != "d111.cloudfront.net"
    assert request["body"] == '{"card_number": "4242424242424242"}'


def test_cloudfront_reads_the_pages_through_origin_access_control_and_another_account_cannot():
    patched = _in_cloud_venv("PATCHED = True\n" + S3_ORIGIN_BEHIND_OAC)
    assert patched == {"status": 200, "body": "<html>probe</html>", "other_account": 403}


def test_the_bucket_deployment_shim_unzips_the_assets_into_the_prefix_and_prunes_the_rest():
    state = _in_cloud_venv(
        """
        import io, json, zipfile
        from localcloud import compat
        from ministack.services import s3
        from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS as H

        compat.install()
        def archive(files):
            data = io.BytesIO()
            with zipfile.ZipFile(data, "w") as z:
                for name, text in files.items():
                    z.writestr(name, text)
            return data.getvalue()
        staging, _ = H["AWS::S3::Bucket"]["create"]("Staging", {"BucketName": "probe-staging"}, "t")
        target, _ = H["AWS::S3::Bucket"]["create"]("Target", {"BucketName": "probe-target"}, "t")
        s3._put_object(staging, "v1.zip", archive({"index.html": "<html>", "app.js": "x", "old.css": "y"}), {})
        s3._put_object(staging, "v2.zip", archive({"index.html": "<html>2", "app.js": "x",
                                                    "products/a.svg": "<svg/>", "diagrams/skip.png": "z"}), {})
        s3._put_object(target, "diagrams/kept.png", b"png", {})
        props = {"SourceBucketNames": [staging], "SourceObjectKeys": ["v1.zip"], "DestinationBucketName": target,
                 "Prune": True, "Exclude": ["diagrams/*"]}
        handler = H["Custom::CDKBucketDeployment"]
        physical, _ = handler["create"]("Pages", props, "t")
        first = sorted(s3._buckets[target]["objects"])
        handler["update"](physical, props, {**props, "SourceObjectKeys": ["v2.zip"]}, "t")
        objects = s3._buckets[target]["objects"]
        types = {key: s3._head_object(target, key, {}, {})[1].get("Content-Type") for key in objects}
        print(json.dumps({"first": first, "second": sorted(objects), "types": types,
                          "index": s3._get_object_data(target, "index.html").decode()}))
        """
    )
    assert state["first"] == ["app.js", "diagrams/kept.png", "index.html", "old.css"]
    # Pruned old.css; the excluded prefix is neither written nor pruned.
    assert state["second"] == ["app.js", "diagrams/kept.png", "index.html", "products/a.svg"]
    assert state["index"] == "<html>2"
    assert state["types"]["index.html"] == "text/html"
    assert state["types"]["app.js"] in {"text/javascript", "application/javascript"}  # ES modules need a JS type
    assert state["types"]["products/a.svg"] == "image/svg+xml"


def test_a_burst_waits_for_a_warm_worker_instead_of_starting_cold_ones_at_once():
    """With one init slot, the four invocations that arrive while the first worker initialises wait;
    once it is warm one of them takes the slot for a second worker and the rest are served warm by the
    two: two inits, one at a time, instead of five at once; every invocation answered."""
    patched = _in_cloud_venv("PATCHED = True\n" + LAMBDA_BURST)
    assert patched == {"answers": [0, 1, 2, 3, 4], "inits": 2, "overlap": 1}


def test_health_checks_mark_a_dead_target_unhealthy_and_the_alb_routes_around_it():
    patched = _in_cloud_venv("PATCHED = True\n" + TARGETS_LIVE_AND_DEAD)
    assert patched == {"live": "healthy", "dead": "unhealthy", "statuses": [200]}


def test_auto_scaling_runs_the_user_data_service_and_replaces_a_dead_instance():
    patched = _in_cloud_venv("PATCHED = True\n" + GROUP_OF_TWO)
    assert patched["in_service"] == 2 and patched["with_process"] == 2
    assert patched["replaced"] is True
    assert patched["target_groups"] == ["arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/probe/3"]


def test_alb_keeps_one_target_per_host_and_port_as_on_aws():
    patched = _in_cloud_venv("PATCHED = True\n" + ALB_TWO_PORTS)
    assert patched == {"registered": [["127.0.0.1", 8081], ["127.0.0.1", 8082]], "left": [["127.0.0.1", 8082]]}


def test_lambda_errors_carry_the_exception_class_name_as_on_aws():
    body = _in_cloud_venv("PATCHED = True\n" + LAMBDA_RAISING)
    assert body == {"errorMessage": "retry me", "errorType": "PaymentGatewayUnavailable"}


def test_api_validation_errors_are_rendered_as_on_aws():
    answers = _in_cloud_venv("PATCHED = True\n" + API_VALIDATION)
    messages = {name: body["message"] for name, (_status, body, _id) in answers.items() if name != "valid"}
    assert messages == {
        "missing items": 'Invalid request body: [object has missing required properties (["items"])]',
        "quantity 0": "Invalid request body: [numeric instance is lower than the required minimum (minimum: 1, found: 0)]",
        "not JSON": "Invalid request body: [the request body is not valid JSON: Expecting property name enclosed in "
        "double quotes]",
        "no Idempotency-Key": "Missing required request parameters: [Idempotency-Key]: "
        "Missing required request parameters: [Idempotency-Key]",
        # Not a validation failure: the variable renders empty, as on AWS.
        "no such path": "Missing Authentication Token: ",
    }
    assert answers["valid"][0] == 200
    assert {
        name: status for name, (status, _body, _id) in answers.items() if name not in ("valid", "no such path")
    } == {name: 400 for name in ("missing items", "quantity 0", "not JSON", "no Idempotency-Key")}
    assert all(body["requestId"] == request_id for name, (_s, body, request_id) in answers.items() if name != "valid")


SCHEMA_ERRORS = """
import json
from localcloud import compat
from ministack.services import apigateway_v1 as apigw

ORDER = {"type": "object", "required": ["customer_id", "items"], "additionalProperties": False, "properties": {
    "customer_id": {"type": "string", "minLength": 1, "maxLength": 4},
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "decision": {"type": "string", "enum": ["approve", "reject"]},
    "items": {"type": "array", "minItems": 1, "maxItems": 2, "uniqueItems": True, "items": {
        "type": "object", "required": ["quantity", "unit_price"], "properties": {
            "quantity": {"type": "integer", "minimum": 1, "maximum": 100},
            "unit_price": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "multipleOf": 0.01}}}}}}
DOCUMENTS = json.loads(DOCUMENTS_JSON)
print(json.dumps([[apigw._json_schema_valid(ORDER, d, ORDER), compat.schema_errors(apigw, ORDER, d, ORDER)]
                  for d in DOCUMENTS]))
"""


@pytest.mark.parametrize(
    ("document", "errors"),
    [
        ({"customer_id": "c", "items": [{"quantity": 1, "unit_price": 1.5}]}, []),
        ([], ['instance type (array) does not match any allowed primitive type (allowed: ["object"])']),
        ({}, ['object has missing required properties (["customer_id","items"])']),
        (
            {"customer_id": "c", "items": [], "extra": 1, "more": 2},
            ['object instance has properties which are not allowed by the schema: ["extra","more"]'],
        ),
        # The container passes, so its members are checked, in document order.
        (
            {"customer_id": "", "currency": "eur", "decision": "maybe", "items": []},
            [
                'string "" is too short (length: 0, required minimum: 1)',
                'ECMA 262 regex "^[A-Z]{3}$" does not match input string "eur"',
                'instance value ("maybe") not found in enum (possible values: ["approve","reject"])',
                "array is too short: must have at least 1 elements but instance has 0 elements",
            ],
        ),
        (
            {"customer_id": "abcde", "items": [{"quantity": 1, "unit_price": 1}] * 3},
            [
                'string "abcde" is too long (length: 5, maximum allowed: 4)',
                "array is too long: must have at most 2 elements but instance has 3 elements",
                "array must not contain duplicate elements",
            ],
        ),
        (
            {"customer_id": "c", "items": [{"quantity": 1.5, "unit_price": 0}, {"quantity": 101, "unit_price": 0.005}]},
            [
                'instance type (number) does not match any allowed primitive type (allowed: ["integer"])',
                "numeric instance is not strictly greater than the required minimum 0",
                "numeric instance is greater than the required maximum (maximum: 100, found: 101)",
                "remainder of division is not zero (0.005 / 0.01)",
            ],
        ),
        (
            {"customer_id": "c", "items": [{"quantity": True}]},
            ['object has missing required properties (["unit_price"])'],
        ),
    ],
    ids=["valid", "not an object", "missing", "unknown properties", "members", "lengths", "numbers", "bool member"],
)
def test_validation_messages_word_aws_validator_and_agree_with_ministack(document, errors):
    [[valid, found]] = _in_cloud_venv(f"DOCUMENTS_JSON = {json.dumps(json.dumps([document]))}\n" + SCHEMA_ERRORS)
    assert found == errors
    assert valid is (errors == [])  # a message exactly when MiniStack's own check refuses
