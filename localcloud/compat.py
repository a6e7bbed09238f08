"""What MiniStack 1.5.33 cannot do for the app's templates, filled in on MiniStack's own APIs.

MiniStack's CloudFormation engine provisions a resource through the handler registered for its type
in `ministack.services.cloudformation.provisioners._RESOURCE_HANDLERS`. Five kinds of gap:
- UNSUPPORTED: no handler, so the whole template is rejected ("Unrecognized resource types").
- NODE_SDK: a CDK custom resource whose Node.js handler needs an AWS SDK client that MiniStack's
  local Node runtime does not stub (and there is no Docker to run the real Lambda image).
- LAYER_BINARY: a CDK custom resource whose Python handler runs a binary from its Lambda layer
  (`/opt/awscli/aws`), which MiniStack's local executor does not unpack on the host.
- PLACEHOLDER: a handler exists but only returns an id, so the behaviour the template asks for is
  missing (an API that validates nothing).
- PARTIAL: a handler exists but refuses one property the app uses; the shim handles that case and
  leaves every other resource of the type to MiniStack.
Each shim creates the resource through the emulator's own service code (the functions that answer
`aws ec2 ...`, `aws apigateway ...`), so the describe/get APIs show what the template declared and
every stack holds every resource of its template. Nothing fakes traffic: MiniStack has no packet
filter, NAT or flow capture, so the network shims are control-plane records only.

`SHIMS` is the single list; tests/infra/test_local_compat.py fails as soon as MiniStack closes a gap
("MiniStack now supports X natively: delete its shim"). MiniStack is imported only inside the
shims and `install()`, so the project venv can read `SHIMS` without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localcloud import cdn, lambda_pool, supervisor

Handler = dict[str, Any]


UNSUPPORTED = "unsupported"  # MiniStack has no handler: the template is rejected
NODE_SDK = "node-sdk"  # a CDK custom resource whose Node.js handler needs an SDK client MiniStack lacks
PLACEHOLDER = "placeholder"  # MiniStack's handler returns an id but does not create what the API would
PARTIAL = "partial"  # MiniStack's handler rejects a property the app uses; the rest stays native
# A CDK custom resource whose Python handler runs a binary of its Lambda layer (/opt/...): MiniStack's local
# executor runs handlers on the host, where no layer is unpacked at /opt.
LAYER_BINARY = "layer-binary"


@dataclass(frozen=True)
class Shim:
    resource_type: str
    why: str  # what the app uses the type for, and what the shim records
    gap: str = UNSUPPORTED
    # NODE_SDK: the AWS SDK v3 module the custom resource's handler needs. MiniStack runs Node.js
    # handlers with stub SDK clients; once it has a stub for this module the real handler can run.
    sdk_module: str | None = None
    # LAYER_BINARY: the path the handler runs, which its layer provides on AWS.
    layer_binary: str | None = None


SHIMS: tuple[Shim, ...] = (
    Shim(
        "AWS::EC2::SecurityGroupIngress",
        "CDK emits a separate ingress resource for every rule that names another security group "
        "(ALB -> tier, tier -> Redis). The shim authorizes the rule on the group in MiniStack's EC2.",
    ),
    Shim(
        "AWS::EC2::SecurityGroupEgress",
        "Same as ingress, for the egress rules between groups (ALB -> targets).",
    ),
    Shim(
        "AWS::EC2::EIP",
        "Public IP of a NAT gateway (only when a stage sets natGateways > 0). AllocateAddress.",
    ),
    Shim(
        "AWS::EC2::NatGateway",
        "Outbound path of private subnets (natGateways > 0). CreateNatGateway.",
    ),
    Shim(
        "AWS::EC2::FlowLog",
        "VPC flow logs to CloudWatch Logs. CreateFlowLogs records it; no traffic is captured locally.",
    ),
    Shim(
        "AWS::WAFv2::WebACLAssociation",
        "Attaches the web ACL to the internet-facing ALB. AssociateWebACL in MiniStack's WAFv2 "
        "(GetWebACLForResource then answers); MiniStack does not filter ALB traffic through it.",
    ),
    Shim(
        "AWS::WAFv2::LoggingConfiguration",
        "WAF request logs of the edge web ACL. MiniStack's WAFv2 has no logging API, so the shim checks "
        "that the web ACL exists and records the configuration (physical id: the ACL's ARN, as on AWS); "
        "no log is written locally.",
    ),
    Shim(
        "Custom::VpcRestrictDefaultSG",
        "CDK's custom resource that strips every rule from the VPC's default security group. Its "
        "Node.js handler needs @aws-sdk/client-ec2, which MiniStack's local Node runtime lacks; the "
        "shim revokes the same rules in MiniStack's EC2 in-process.",
        gap=NODE_SDK,
        sdk_module="@aws-sdk/client-ec2",
    ),
    Shim(
        "Custom::CDKBucketDeployment",
        "CDK's BucketDeployment copies the storefront's pages and the diagrams into the assets bucket. Its "
        "Python handler runs the AWS CLI from its layer (/opt/awscli/aws), which MiniStack's local executor "
        "does not unpack; the shim does what the handler does in-process: unzips each source asset from the "
        "bootstrap bucket into the destination prefix (content types from the file names, Exclude honoured), "
        "prunes what the sources no longer hold, and leaves the objects on delete (RetainOnDelete). The "
        "invalidation is skipped: MiniStack's CloudFront caches nothing.",
        gap=LAYER_BINARY,
        layer_binary="/opt/awscli/aws",
    ),
    Shim(
        "AWS::ApiGateway::RequestValidator",
        "MiniStack's handler returns an id and creates nothing, so the API would accept any body. "
        "The shim creates the validator in MiniStack's API Gateway (CreateRequestValidator), whose "
        "data plane then answers 400 for a body that fails the model or a missing required header.",
        gap=PLACEHOLDER,
    ),
    Shim(
        "AWS::ApiGateway::Method",
        "MiniStack's handler drops RequestValidatorId. The shim keeps its handler and sets the "
        "method's validator afterwards (what PutMethod/UpdateMethod would store).",
        gap=PLACEHOLDER,
    ),
    Shim(
        "AWS::CloudWatch::Alarm",
        "MiniStack refuses alarms on metric math (Properties.Metrics), which cdk-monitoring-constructs "
        "emits. The shim stores such an alarm in MiniStack's CloudWatch with its Metrics, so "
        "DescribeAlarms lists it; MiniStack cannot evaluate metric math, so it stays INSUFFICIENT_DATA. "
        "Alarms on a single metric stay native (and are evaluated).",
        gap=PARTIAL,
    ),
)

SHIMMED_TYPES: tuple[str, ...] = tuple(s.resource_type for s in SHIMS)


# --- helpers -----------------------------------------------------------------------------------


def _call(action: str, params: dict[str, Any]) -> str:
    """Run one EC2 API action in-process; return its XML body or raise with the EC2 error."""
    from ministack.services import ec2

    query = {k: [str(v)] for k, v in params.items() if v is not None and v != ""}
    status, _headers, body = ec2._ACTION_MAP[action](query)
    text = body.decode() if isinstance(body, bytes) else str(body)
    if status >= 400:
        raise ValueError(f"EC2 {action} failed: {_tag(text, 'Code')}: {_tag(text, 'Message')}")
    return text


def _tag(xml: str, name: str) -> str:
    match = re.search(rf"<{name}>([^<]*)</{name}>", xml)
    return match.group(1) if match else ""


def _permission_params(props: dict[str, Any], peer_key: str) -> dict[str, Any]:
    """One SecurityGroupIngress/Egress resource -> the IpPermissions.1.* query parameters."""
    params: dict[str, Any] = {
        "IpPermissions.1.IpProtocol": props.get("IpProtocol", "tcp"),
        "IpPermissions.1.FromPort": props.get("FromPort"),
        "IpPermissions.1.ToPort": props.get("ToPort"),
    }
    description = props.get("Description")
    if props.get("CidrIp"):
        params["IpPermissions.1.IpRanges.1.CidrIp"] = props["CidrIp"]
        params["IpPermissions.1.IpRanges.1.Description"] = description
    if props.get("CidrIpv6"):
        params["IpPermissions.1.Ipv6Ranges.1.CidrIpv6"] = props["CidrIpv6"]
        params["IpPermissions.1.Ipv6Ranges.1.Description"] = description
    if props.get(peer_key):
        params["IpPermissions.1.Groups.1.GroupId"] = props[peer_key]
        params["IpPermissions.1.Groups.1.Description"] = description
    return params


def _sg_rule(direction: str) -> Handler:
    """Ingress/egress rule on an existing group: Authorize/RevokeSecurityGroup{Ingress,Egress}."""
    action = "Ingress" if direction == "ingress" else "Egress"
    peer_key = "SourceSecurityGroupId" if direction == "ingress" else "DestinationSecurityGroupId"

    def create(logical_id: str, props: dict, stack_name: str):
        xml = _call(
            f"AuthorizeSecurityGroup{action}",
            {"GroupId": props["GroupId"], **_permission_params(props, peer_key)},
        )
        rule_id = _tag(xml, "securityGroupRuleId")
        return rule_id, {"Id": rule_id, "GroupId": props["GroupId"]}

    def delete(physical_id: str, props: dict):
        try:
            _call(f"RevokeSecurityGroup{action}", {"GroupId": props["GroupId"], "SecurityGroupRuleId.1": physical_id})
        except ValueError as error:  # the group went first (stack deletion order): nothing to revoke
            if "NotFound" not in str(error):
                raise

    def update(physical_id: str, old_props: dict, new_props: dict, stack_name: str):
        delete(physical_id, old_props)
        return create(physical_id, new_props, stack_name)

    return {"create": create, "update": update, "delete": delete}


def _eip() -> Handler:
    def create(logical_id: str, props: dict, stack_name: str):
        xml = _call("AllocateAddress", {"Domain": props.get("Domain", "vpc")})
        public_ip, allocation_id = _tag(xml, "publicIp"), _tag(xml, "allocationId")
        # Ref of an EIP is its public IP; the NAT gateway asks for GetAtt AllocationId.
        return public_ip, {"AllocationId": allocation_id, "PublicIp": public_ip}

    def delete(physical_id: str, props: dict):
        from ministack.services import ec2

        for allocation_id, address in list(ec2._addresses.items()):
            if address.get("PublicIp") == physical_id:
                _call("ReleaseAddress", {"AllocationId": allocation_id})

    return {"create": create, "delete": delete}


def _nat_gateway() -> Handler:
    def create(logical_id: str, props: dict, stack_name: str):
        xml = _call(
            "CreateNatGateway",
            {
                "SubnetId": props["SubnetId"],
                "AllocationId": props.get("AllocationId"),
                "ConnectivityType": props.get("ConnectivityType"),
            },
        )
        nat_id = _tag(xml, "natGatewayId")
        return nat_id, {"NatGatewayId": nat_id}

    def delete(physical_id: str, props: dict):
        try:
            _call("DeleteNatGateway", {"NatGatewayId": physical_id})
        except ValueError as error:
            if "NotFound" not in str(error):
                raise

    return {"create": create, "delete": delete}


def _flow_log() -> Handler:
    def create(logical_id: str, props: dict, stack_name: str):
        xml = _call(
            "CreateFlowLogs",
            {
                "ResourceId.1": props["ResourceId"],
                "ResourceType": props.get("ResourceType", "VPC"),
                "TrafficType": props.get("TrafficType", "ALL"),
                "LogDestinationType": props.get("LogDestinationType", "cloud-watch-logs"),
                "LogDestination": props.get("LogDestination"),
                "LogGroupName": props.get("LogGroupName"),
                "DeliverLogsPermissionArn": props.get("DeliverLogsPermissionArn"),
            },
        )
        flow_log_id = _tag(xml, "item")
        return flow_log_id, {"Id": flow_log_id}

    def delete(physical_id: str, props: dict):
        _call("DeleteFlowLogs", {"FlowLogId.1": physical_id})

    return {"create": create, "delete": delete}


def _web_acl_association() -> Handler:
    def _waf(action: str, body: dict) -> None:
        from ministack.services import waf

        status, _headers, payload = getattr(waf, action)(body)
        if status >= 400:
            raise ValueError(f"WAFv2 {action.strip('_')} failed: {payload!r}")

    def create(logical_id: str, props: dict, stack_name: str):
        _waf("_associate_web_acl", {"WebACLArn": props["WebACLArn"], "ResourceArn": props["ResourceArn"]})
        return f"{props['ResourceArn']}|{props['WebACLArn']}", {}

    def delete(physical_id: str, props: dict):
        _waf("_disassociate_web_acl", {"ResourceArn": props["ResourceArn"]})

    def update(physical_id: str, old_props: dict, new_props: dict, stack_name: str):
        delete(physical_id, old_props)
        return create(physical_id, new_props, stack_name)

    return {"create": create, "update": update, "delete": delete}


# Resources MiniStack has no API for: type -> physical id -> properties (the shim's whole record).
RECORDS: dict[str, dict[str, dict]] = {}


def _waf_logging_configuration() -> Handler:
    def create(logical_id: str, props: dict, stack_name: str):
        from ministack.services import waf

        acl_arn = props["ResourceArn"]
        _acl, error = waf._resolve_local_web_acl(acl_arn)
        if error:
            raise ValueError(f"WAFv2 web ACL {acl_arn} not found")
        RECORDS.setdefault("AWS::WAFv2::LoggingConfiguration", {})[acl_arn] = dict(props)
        return acl_arn, {"ManagedByFirewallManager": False}

    def delete(physical_id: str, props: dict):
        RECORDS.get("AWS::WAFv2::LoggingConfiguration", {}).pop(physical_id, None)

    def update(physical_id: str, old_props: dict, new_props: dict, stack_name: str):
        delete(physical_id, old_props)
        return create(physical_id, new_props, stack_name)

    return {"create": create, "update": update, "delete": delete}


def _restrict_default_security_group() -> Handler:
    """What aws-cdk-lib's restrict-default-security-group-handler does: revoke the default group's
    self-referencing ingress and its allow-all egress (revoking a rule that is absent is a no-op)."""

    def revoke(group_id: str) -> None:
        _call(
            "RevokeSecurityGroupIngress",
            {"GroupId": group_id, "IpPermissions.1.IpProtocol": "-1", "IpPermissions.1.Groups.1.GroupId": group_id},
        )
        _call(
            "RevokeSecurityGroupEgress",
            {"GroupId": group_id, "IpPermissions.1.IpProtocol": "-1", "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0"},
        )

    def create(logical_id: str, props: dict, stack_name: str):
        group_id = props["DefaultSecurityGroupId"]
        revoke(group_id)
        return f"{group_id}-restricted", {}

    def update(physical_id: str, old_props: dict, new_props: dict, stack_name: str):
        return create(physical_id, new_props, stack_name)

    def delete(physical_id: str, props: dict):
        pass  # like the CDK handler on delete of the VPC: the default group goes with it

    return {"create": create, "update": update, "delete": delete}


def _bucket_deployment() -> Handler:
    import fnmatch
    import io
    import mimetypes
    import zipfile

    def s3_module() -> Any:
        from ministack.services import s3

        return s3

    def excluded(key: str, patterns: list[str], includes: list[str]) -> bool:
        return any(fnmatch.fnmatch(key, p) for p in patterns) and not any(fnmatch.fnmatch(key, p) for p in includes)

    def create(logical_id: str, props: dict, stack_name: str):
        s3 = s3_module()
        bucket, prefix = props["DestinationBucketName"], props.get("DestinationBucketKeyPrefix", "")
        exclude, include = list(props.get("Exclude", [])), list(props.get("Include", []))
        written: set[str] = set()
        for source_bucket, source_key in zip(props["SourceBucketNames"], props["SourceObjectKeys"], strict=True):
            data = s3._get_object_data(source_bucket, source_key)
            if data is None:
                raise ValueError(f"BucketDeployment source s3://{source_bucket}/{source_key} not found")
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.infolist():
                    if member.is_dir() or excluded(member.filename, exclude, include):
                        continue
                    content_type = mimetypes.guess_type(member.filename)[0] or "application/octet-stream"
                    status, _headers, body = s3._put_object(
                        bucket, prefix + member.filename, archive.read(member), {"content-type": content_type}
                    )
                    if status >= 300:
                        raise ValueError(f"BucketDeployment PutObject {prefix}{member.filename}: {body!r}")
                    written.add(prefix + member.filename)
        if props.get("Prune", True) in (True, "true"):
            for key in list(s3._buckets.get(bucket, {}).get("objects", {})):
                if key.startswith(prefix) and key not in written and not excluded(key[len(prefix) :], exclude, include):
                    s3._delete_object(bucket, key)
        return f"aws.cdk.s3deployment.{logical_id}", {"SourceObjectKeys": sorted(written)}

    def update(physical_id: str, old_props: dict, new_props: dict, stack_name: str):
        _new_id, attributes = create(physical_id.removeprefix("aws.cdk.s3deployment."), new_props, stack_name)
        return physical_id, attributes

    def delete(physical_id: str, props: dict):
        pass  # RetainOnDelete (CDK's default): the objects stay, as the bucket's versioning would keep them

    return {"create": create, "update": update, "delete": delete}


def _request_validator() -> Handler:
    def create(logical_id: str, props: dict, stack_name: str):
        from ministack.services import apigateway_v1

        status, _headers, body = apigateway_v1._create_request_validator(
            props["RestApiId"],
            {
                "name": props.get("Name") or logical_id,
                "validateRequestBody": _flag(props.get("ValidateRequestBody")),
                "validateRequestParameters": _flag(props.get("ValidateRequestParameters")),
            },
        )
        if status >= 400:
            raise ValueError(f"API Gateway CreateRequestValidator failed: {body!r}")
        validator_id = json.loads(body)["id"]
        return validator_id, {"RequestValidatorId": validator_id}

    def delete(physical_id: str, props: dict):
        from ministack.services import apigateway_v1

        apigateway_v1._request_validators.get(props.get("RestApiId", ""), {}).pop(physical_id, None)

    def update(physical_id: str, old_props: dict, new_props: dict, stack_name: str):
        delete(physical_id, old_props)
        return create(physical_id, new_props, stack_name)

    return {"create": create, "update": update, "delete": delete}


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _method_with_validator(native: Handler | None) -> Handler:
    """MiniStack's own Method handler, then the RequestValidatorId it leaves out."""
    assert native is not None, "MiniStack provisions AWS::ApiGateway::Method: the shim extends its handler"

    def attach_validator(props: dict) -> None:
        from ministack.services import apigateway_v1

        resource = apigateway_v1._resources.get(props.get("RestApiId", ""), {}).get(props.get("ResourceId", ""))
        method = (resource or {}).get("resourceMethods", {}).get(props.get("HttpMethod", "ANY"))
        if method is not None:
            method["requestValidatorId"] = props.get("RequestValidatorId")

    def create(logical_id: str, props: dict, stack_name: str):
        created = native["create"](logical_id, props, stack_name)
        attach_validator(props)
        return created

    def update(physical_id: str, old_props: dict, new_props: dict, stack_name: str):
        updated = native["update"](physical_id, old_props, new_props, stack_name)
        attach_validator(new_props)
        return updated

    return {**native, "create": create, "update": update}


def _alarm_with_metric_math(native: Handler | None) -> Handler:
    assert native is not None, "MiniStack provisions AWS::CloudWatch::Alarm: the shim extends its handler"

    def put(name: str, props: dict):
        from ministack.services import cloudwatch
        from ministack.services.cloudformation import provisioners

        # MiniStack's own record builder, given a stand-in metric so its validation passes; the
        # stand-in is then removed, which also keeps MiniStack's evaluator away from the alarm.
        record = provisioners._cw_metric_alarm_record(
            name, {**{k: v for k, v in props.items() if k != "Metrics"}, "MetricName": "-", "Namespace": "-"}
        )
        record.update({"MetricName": None, "Namespace": None, "Statistic": None, "Metrics": props["Metrics"]})
        cloudwatch.cloudformation_put_metric_alarm(record)
        return name, {"Arn": record["AlarmArn"]}

    def create(logical_id: str, props: dict, stack_name: str):
        if not props.get("Metrics"):
            return native["create"](logical_id, props, stack_name)
        from ministack.services.cloudformation import provisioners

        return put(props.get("AlarmName") or provisioners._physical_name(stack_name, logical_id, max_len=255), props)

    def update(physical_id: str, old_props: dict, new_props: dict, stack_name: str, logical_id: str | None = None):
        if not new_props.get("Metrics") and not old_props.get("Metrics"):
            return native["update"](physical_id, old_props, new_props, stack_name, logical_id)
        native["delete"](physical_id, old_props)
        return create(logical_id or physical_id, new_props, stack_name)

    return {**native, "create": create, "update": update, "update_with_logical_id": True}


# type -> factory(native handler or None) -> handler
_FACTORIES: dict[str, Callable[[Handler | None], Handler]] = {
    "AWS::ApiGateway::RequestValidator": lambda native: _request_validator(),
    "AWS::ApiGateway::Method": lambda native: _method_with_validator(native),
    "AWS::CloudWatch::Alarm": lambda native: _alarm_with_metric_math(native),
    "AWS::WAFv2::WebACLAssociation": lambda native: _web_acl_association(),
    "Custom::VpcRestrictDefaultSG": lambda native: _restrict_default_security_group(),
    "Custom::CDKBucketDeployment": lambda native: _bucket_deployment(),
    "AWS::WAFv2::LoggingConfiguration": lambda native: _waf_logging_configuration(),
    "AWS::EC2::SecurityGroupIngress": lambda native: _sg_rule("ingress"),
    "AWS::EC2::SecurityGroupEgress": lambda native: _sg_rule("egress"),
    "AWS::EC2::EIP": lambda native: _eip(),
    "AWS::EC2::NatGateway": lambda native: _nat_gateway(),
    "AWS::EC2::FlowLog": lambda native: _flow_log(),
}
assert set(_FACTORIES) == set(SHIMMED_TYPES), "every shim needs a factory and an entry in SHIMS"


# --- runtime patches ----------------------------------------------------------------------------
# Gaps outside CloudFormation, in how MiniStack runs the app. Same rule: each has a probe in
# tests/infra/test_local_compat.py that fails once MiniStack behaves like AWS by itself.

# MiniStack's Python worker reports a handler's exception as {"status": "error", "error": str(e)} and
# the local executor then answers errorType "Runtime.HandlerError" for every exception. AWS answers
# the exception's class name, and Step Functions Retry/Catch match on it (PaymentGatewayUnavailable
# is retried, PaymentDeclined compensated): without the name every failure looks the same.
_WORKER_ERROR_LINE = 'json.dumps({"status": "error", "error": str(e), "trace": traceback.format_exc()})'
_WORKER_ERROR_LINE_WITH_TYPE = (
    'json.dumps({"status": "error", "error": str(e), "error_type": type(e).__name__, "trace": traceback.format_exc()})'
)
LAMBDA_ERROR_TYPE = "Lambda error type (exception class name)"
ALB_TARGET_PORT = "ALB targets keyed by id and port"
API_VALIDATION_ERROR_STRING = "API Gateway $context.error.validationErrorString"
LAMBDA_WORKER_POOL = "Lambda workers: bounded cold starts, warm workers first"
TARGET_HEALTH = "ALB target health checks and routing to healthy targets"
AUTO_SCALING = "Auto Scaling groups run real instances, replace unhealthy ones, track targets"
S3_ORIGIN_TLS = cdn.S3_ORIGIN_TLS
API_GATEWAY_ORIGIN = cdn.API_GATEWAY_ORIGIN
RUNTIME_PATCHES = (
    LAMBDA_ERROR_TYPE,
    ALB_TARGET_PORT,
    API_VALIDATION_ERROR_STRING,
    LAMBDA_WORKER_POOL,
    TARGET_HEALTH,
    AUTO_SCALING,
    S3_ORIGIN_TLS,
    API_GATEWAY_ORIGIN,
)


def _patch_lambda_error_type() -> None:
    import threading

    from ministack.core import lambda_runtime
    from ministack.services import lambda_svc

    script = lambda_runtime._PYTHON_WORKER_SCRIPT
    if _WORKER_ERROR_LINE not in script:
        raise RuntimeError("MiniStack's Python worker changed: review the Lambda error-type patch in compat.py")
    lambda_runtime._PYTHON_WORKER_SCRIPT = script.replace(_WORKER_ERROR_LINE, _WORKER_ERROR_LINE_WITH_TYPE)

    # The worker's answer reaches the executor, which builds the error body, on the same thread.
    last = threading.local()
    invoke, execute_warm = lambda_runtime.Worker.invoke, lambda_svc._execute_function_warm

    def invoke_keeping_error_type(self, *args, **kwargs):
        result = invoke(self, *args, **kwargs)
        last.error_type = result.get("error_type") if isinstance(result, dict) else None
        return result

    def execute_warm_with_error_type(func, event, request_id):
        last.error_type = None
        outcome = execute_warm(func, event, request_id)
        body = outcome.get("body") if outcome.get("error") else None
        if isinstance(body, dict) and body.get("errorType") == "Runtime.HandlerError" and last.error_type:
            body["errorType"] = last.error_type
        return outcome

    lambda_runtime.Worker.invoke = invoke_keeping_error_type
    lambda_svc._execute_function_warm = execute_warm_with_error_type


# MiniStack's RegisterTargets/DeregisterTargets key a target by its Id alone: registering
# 127.0.0.1:8081 and 127.0.0.1:8082 keeps only the first. AWS keys a target by Id and Port (one
# instance may serve on several ports), and MiniStack's data plane already connects to the target's
# own Port. With the patch the tier processes all listen on 127.0.0.1, each on its own port.
def _patch_alb_target_port() -> None:
    from ministack.services import alb

    def key(target: dict, tg_arn: str) -> tuple[str, int]:
        return target["Id"], int(target.get("Port") or alb._tgs[tg_arn].get("Port") or 80)

    def register_targets(params):
        tg_arn = alb._p(params, "TargetGroupArn")
        if tg_arn not in alb._tgs:
            return alb._error("TargetGroupNotFound", f"Target group '{tg_arn}' not found.")
        existing = alb._targets.setdefault(tg_arn, [])
        known = {key(t, tg_arn) for t in existing}
        for target in alb._parse_targets_param(params):
            if key(target, tg_arn) not in known:
                existing.append(target)
                known.add(key(target, tg_arn))
        return alb._empty("RegisterTargets")

    def deregister_targets(params):
        tg_arn = alb._p(params, "TargetGroupArn")
        if tg_arn not in alb._tgs:
            return alb._error("TargetGroupNotFound", f"Target group '{tg_arn}' not found.")
        gone = {key(t, tg_arn) for t in alb._parse_targets_param(params)}
        alb._targets[tg_arn] = [t for t in alb._targets.get(tg_arn, []) if key(t, tg_arn) not in gone]
        return alb._empty("DeregisterTargets")

    for action in ("RegisterTargets", "DeregisterTargets"):
        if action not in alb._ACTION_MAP:
            raise RuntimeError(f"MiniStack's ALB has no {action} handler: review the target-port patch in compat.py")
    alb._ACTION_MAP["RegisterTargets"] = register_targets
    alb._ACTION_MAP["DeregisterTargets"] = deregister_targets


# MiniStack's request validator answers a body that fails the model (BAD_REQUEST_BODY) or a missing
# required header (BAD_REQUEST_PARAMETERS) through the gateway response, but its template renderer
# knows no $context.error.validationErrorString: the 400 carries that text literally. MiniStack checks
# models with its own JSON Schema draft 4 code (apigateway_v1._json_schema_valid, no jsonschema), which
# only says valid or not. AWS validates with the Java json-schema-validator and renders the variable as
# the list of its messages, e.g. `[object has missing required properties (["items"])]`, JSON-escaped in
# a JSON template; for parameters it is the message itself (`Missing required request parameters:
# [Idempotency-Key]`); for any other gateway error it renders empty. The patch keeps MiniStack's
# verdict and renders the variable: the messages come from a walk of the same schema that mirrors
# _json_schema_valid keyword by keyword (and reuses it for allOf/anyOf/oneOf/not), worded as AWS's
# validator words them. Like AWS (non-deep check), the members of an object or array are checked only
# when the container itself passes; a message names no path, as on AWS.
_VALIDATION_ERROR_STRING = re.compile(
    r"\$(?:\{context\.error\.validationErrorString\}|context\.error\.validationErrorString(?!\w|\.[A-Za-z]))"
)
# The Java validator's names of JSON types, in the order it lists allowed types.
_SCHEMA_TYPE_ORDER = ("array", "boolean", "integer", "null", "number", "object", "string")
_FORMAT_MESSAGES = {
    "date-time": "string {} is invalid against requested date format(s) [yyyy-MM-dd'T'HH:mm:ssZ, "
    "yyyy-MM-dd'T'HH:mm:ss.[0-9]{{1,12}}Z]",
    "email": "string {} is not a valid email address",
    "hostname": "string {} is not a valid hostname",
    "ipv4": "string {} is not a valid IPv4 address",
    "ipv6": "string {} is not a valid IPv6 address",
    "uri": "string {} is not a valid URI",
}


def _json_text(value: Any) -> str:
    """A JSON value as the Java validator prints it (compact)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "object")


def schema_errors(apigw: Any, schema: Any, value: Any, root: Any) -> list[str]:
    """Why `value` fails the draft 4 `schema` (MiniStack's apigateway_v1 module as `apigw`), in the
    Java json-schema-validator's words; [] when MiniStack's own check would accept it."""
    chain: set[int] = set()
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        if id(schema) in chain:
            return []
        chain.add(id(schema))
        schema, root = apigw._resolve_schema_ref(schema["$ref"], root)
    if not isinstance(schema, dict):
        return []

    def valid(sub: Any) -> bool:
        try:
            return apigw._json_schema_valid(sub, value, root)
        except (apigw._SchemaLoop, RecursionError, TypeError, AttributeError):
            return True

    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        allowed = types if isinstance(types, list) else [types]
        if not any(apigw._JSON_TYPES.get(t, lambda v: True)(value) for t in allowed):
            listed = sorted(allowed, key=lambda t: _SCHEMA_TYPE_ORDER.index(t) if t in _SCHEMA_TYPE_ORDER else 99)
            return [
                f"instance type ({_json_type_name(value)}) does not match any allowed primitive type "
                f"(allowed: {_json_text(listed)})"
            ]
    all_of = schema.get("allOf") or []
    if all_of and (matched := sum(map(valid, all_of))) < len(all_of):
        errors.append(f"instance failed to match all required schemas (matched only {matched} out of {len(all_of)})")
    if "anyOf" in schema and not any(map(valid, schema.get("anyOf") or [])):
        errors.append(f"instance failed to match at least one required schema among {len(schema.get('anyOf') or [])}")
    if "oneOf" in schema and (matched := sum(map(valid, schema.get("oneOf") or []))) != 1:
        errors.append(
            f"instance failed to match exactly one schema (matched {matched} out of {len(schema.get('oneOf') or [])})"
        )
    if "not" in schema and valid(schema["not"]):
        errors.append("instance matched a schema which it should not have")
    if "enum" in schema and not any(apigw._json_equal(value, e) for e in schema["enum"]):
        errors.append(
            f"instance value ({_json_text(value)}) not found in enum (possible values: {_json_text(schema['enum'])})"
        )
    if apigw._JSON_TYPES["number"](value):
        errors += _number_errors(apigw, schema, value)
    if isinstance(value, str):
        errors += _string_errors(apigw, schema, value)
    children: list[tuple[Any, Any]] = []
    if isinstance(value, list):
        errors += _array_errors(apigw, schema, value)
        items = schema.get("items", {})
        if isinstance(items, list):
            extra = schema.get("additionalItems", True)
            children = list(
                zip(items + [extra if isinstance(extra, dict) else {}] * (len(value) - len(items)), value, strict=False)
            )
        else:
            children = [(items, item) for item in value]
    if isinstance(value, dict):
        errors += _object_errors(apigw, schema, value, root)
        properties, patterns = schema.get("properties") or {}, schema.get("patternProperties") or {}
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            matched_subs = [sub for pattern, sub in patterns.items() if apigw._regex_search(pattern, name)]
            if name in properties:
                matched_subs.append(properties[name])
            elif not matched_subs and isinstance(extra, dict):
                matched_subs.append(extra)
            children += [(sub, item) for sub in matched_subs]
    if errors:
        return errors
    return [message for sub, item in children if sub for message in schema_errors(apigw, sub, item, root)]


def _number_errors(apigw: Any, schema: dict, value: Any) -> list[str]:
    errors = []
    if "minimum" in schema:
        minimum = _json_text(schema["minimum"])
        if schema.get("exclusiveMinimum") and value <= schema["minimum"]:
            errors.append(f"numeric instance is not strictly greater than the required minimum {minimum}")
        elif value < schema["minimum"]:
            errors.append(
                f"numeric instance is lower than the required minimum (minimum: {minimum}, found: {_json_text(value)})"
            )
    if "maximum" in schema:
        maximum = _json_text(schema["maximum"])
        if schema.get("exclusiveMaximum") and value >= schema["maximum"]:
            errors.append(f"numeric instance is not strictly lower than the required maximum {maximum}")
        elif value > schema["maximum"]:
            errors.append(
                f"numeric instance is greater than the required maximum (maximum: {maximum}, "
                f"found: {_json_text(value)})"
            )
    if "multipleOf" in schema and not apigw._multiple_of(value, schema["multipleOf"]):
        errors.append(f"remainder of division is not zero ({_json_text(value)} / {_json_text(schema['multipleOf'])})")
    return errors


def _string_errors(apigw: Any, schema: dict, value: str) -> list[str]:
    errors, shown = [], _json_text(value)
    if len(value) < schema.get("minLength", 0):
        errors.append(f"string {shown} is too short (length: {len(value)}, required minimum: {schema['minLength']})")
    if len(value) > schema.get("maxLength", len(value)):
        errors.append(f"string {shown} is too long (length: {len(value)}, maximum allowed: {schema['maxLength']})")
    if "pattern" in schema and apigw._regex_search(schema["pattern"], value) is False:
        errors.append(f"ECMA 262 regex {_json_text(schema['pattern'])} does not match input string {shown}")
    check = apigw._JSON_FORMATS.get(schema.get("format"))
    if check is not None and not check(value):
        template = _FORMAT_MESSAGES.get(schema["format"], "string {} is not a valid " + schema["format"])
        errors.append(template.format(shown))
    return errors


def _array_errors(apigw: Any, schema: dict, value: list) -> list[str]:
    errors = []
    if len(value) < schema.get("minItems", 0):
        errors.append(
            f"array is too short: must have at least {schema['minItems']} elements "
            f"but instance has {len(value)} elements"
        )
    if len(value) > schema.get("maxItems", len(value)):
        errors.append(
            f"array is too long: must have at most {schema['maxItems']} elements but instance has {len(value)} elements"
        )
    if schema.get("uniqueItems") and len({apigw._json_key(v) for v in value}) != len(value):
        errors.append("array must not contain duplicate elements")
    items = schema.get("items", {})
    if isinstance(items, list) and schema.get("additionalItems", True) is False and len(value) > len(items):
        errors.append(
            f"array instance has more elements than allowed by the schema (allowed: {len(items)}, found: {len(value)})"
        )
    return errors


def _object_errors(apigw: Any, schema: dict, value: dict, root: Any) -> list[str]:
    errors = []
    if len(value) < schema.get("minProperties", 0):
        errors.append(
            f"object has too few properties (found {len(value)} but schema requires at least {schema['minProperties']})"
        )
    if len(value) > schema.get("maxProperties", len(value)):
        errors.append(
            f"object has too many properties (found {len(value)} but schema requires at most {schema['maxProperties']})"
        )
    missing = sorted(name for name in schema.get("required") or [] if name not in value)
    if missing:
        errors.append(f"object has missing required properties ({_json_text(missing)})")
    if schema.get("additionalProperties", True) is False:
        properties, patterns = schema.get("properties") or {}, schema.get("patternProperties") or {}
        unwanted = sorted(
            name
            for name in value
            if name not in properties and not any(apigw._regex_search(pattern, name) for pattern in patterns)
        )
        if unwanted:
            errors.append(f"object instance has properties which are not allowed by the schema: {_json_text(unwanted)}")
    for name, needs in (schema.get("dependencies") or {}).items():
        if name not in value:
            continue
        if isinstance(needs, list):
            absent = sorted(n for n in needs if n not in value)
            if absent:
                errors.append(
                    f"property {_json_text(name)} of object has missing property dependencies "
                    f"(schema requires {_json_text(sorted(needs))}; missing: {_json_text(absent)})"
                )
        else:
            errors += schema_errors(apigw, needs, value, root)
    return errors


def body_validation_error_string(apigw: Any, method: dict, api_id: str, headers: dict, body: Any) -> str:
    """$context.error.validationErrorString of a body MiniStack refused: the model the method applies
    to the request's content type (MiniStack's own choice), then the validator's messages."""
    content_type = (apigw._header_ci(headers, "content-type") or "application/json").split(";", 1)[0].strip()
    models = method.get("requestModels") or {}
    schema = apigw._model_schema(api_id, models.get(content_type) or models.get("application/json") or "")
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, TypeError, ValueError, RecursionError) as error:
        return f"[the request body is not valid JSON: {getattr(error, 'msg', None) or error}]"
    if apigw._json_depth(document) > apigw._MAX_BODY_DEPTH:
        return f"[the request body nests deeper than {apigw._MAX_BODY_DEPTH} levels]"
    messages = schema_errors(apigw, schema, document, schema) if schema is not None else []
    return "[" + ", ".join(messages or ["instance failed to match the model schema"]) + "]"


def _patch_api_validation_error_string() -> None:
    from ministack.services import apigateway_v1 as apigw

    needed = (
        "_check_request_validation",
        "_gateway_error_response",
        "_GatewayError",
        "_json_schema_valid",
        "_SchemaLoop",
        "_resolve_schema_ref",
        "_model_schema",
        "_JSON_TYPES",
        "_JSON_FORMATS",
        "_json_equal",
        "_json_key",
        "_multiple_of",
        "_regex_search",
        "_json_depth",
        "_MAX_BODY_DEPTH",
        "_header_ci",
    )
    if missing := [name for name in needed if not hasattr(apigw, name)]:
        raise RuntimeError(
            f"MiniStack's API Gateway changed ({missing} gone): review the validation-error patch in compat.py"
        )
    check, render = apigw._check_request_validation, apigw._gateway_error_response

    def check_with_details(method_obj, api_id, request, headers, body, query_params):
        error = check(method_obj, api_id, request, headers, body, query_params)
        if isinstance(error, apigw._GatewayError):
            if error.response_type == "BAD_REQUEST_PARAMETERS":
                error.validation_error_string = error.message
            elif error.response_type == "BAD_REQUEST_BODY":
                error.validation_error_string = body_validation_error_string(apigw, method_obj, api_id, headers, body)
        return error

    def render_with_details(error, request):
        status, headers, body = render(error, request)
        # MiniStack leaves the variables it does not know verbatim; the rest of the body it rendered holds
        # no request data (message, request id, resource path, stage), so this is the only substitution.
        value = json.dumps(getattr(error, "validation_error_string", None) or "", ensure_ascii=False)[1:-1]
        text = body.decode("utf-8") if isinstance(body, bytes) else str(body)
        return status, headers, _VALIDATION_ERROR_STRING.sub(lambda _match: value, text).encode("utf-8")

    apigw._check_request_validation = check_with_details
    apigw._gateway_error_response = render_with_details


def install_runtime_patches() -> list[str]:
    _patch_lambda_error_type()
    _patch_alb_target_port()
    _patch_api_validation_error_string()
    lambda_pool.install()
    supervisor.install()  # TARGET_HEALTH and AUTO_SCALING: one control loop
    cdn.patch_s3_origin_tls()
    cdn.patch_api_gateway_origin()
    return list(RUNTIME_PATCHES)


def install() -> list[str]:
    """Register the shims; return the types installed.

    An UNSUPPORTED or NODE_SDK type that MiniStack has learned to provision keeps its native
    handler (the shim is skipped), so an upgrade never replaces real behaviour with a record.
    """
    from ministack.services.cloudformation.provisioners import _RESOURCE_HANDLERS

    installed = []
    for shim in SHIMS:
        native = _RESOURCE_HANDLERS.get(shim.resource_type)
        if shim.gap in (UNSUPPORTED, NODE_SDK, LAYER_BINARY) and native is not None:
            continue
        _RESOURCE_HANDLERS[shim.resource_type] = _FACTORIES[shim.resource_type](native)
        installed.append(shim.resource_type)
    return installed
