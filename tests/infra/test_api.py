"""The API front door: keys and a usage plan on the partners' methods, SigV4 (IAM) on the staff ones, requests validated at the gateway,
structured access logs, tracing, per-stage endpoint type, and least-privilege function roles."""

from __future__ import annotations

import json

import pytest

from contracts.api import IDEMPOTENCY_HEADER
from tests.infra.test_processing import actions_of, cross_stack_target, logical_id, resources, statements

ROUTES = {
    ("GET", "/catalog"),
    ("POST", "/orders"),
    ("GET", "/orders/{order_id}"),
    ("DELETE", "/orders/{order_id}"),
    ("POST", "/orders/{order_id}/checkout"),
    ("GET", "/approvals"),
    ("POST", "/approvals/{order_id}"),
    ("POST", "/partners/deliveries"),
    ("GET", "/me/orders/{order_id}"),
    ("DELETE", "/me/orders/{order_id}"),
    ("POST", "/me/orders/{order_id}/checkout"),
}
# The signed-in customer's own orders: the Cognito user pool authorizer, no API key.
CUSTOMER_ROUTES = {
    ("GET", "/me/orders/{order_id}"),
    ("DELETE", "/me/orders/{order_id}"),
    ("POST", "/me/orders/{order_id}/checkout"),
}
# Operator actions: authorized with SigV4 as the back-office role, no API key.
STAFF_ROUTES = {("GET", "/approvals"), ("POST", "/approvals/{order_id}")}
# Routes with no compute in the path: API Gateway calls an AWS service itself.
SERVICE_ROUTES = {("POST", "/partners/deliveries")}


def resource_paths(template: dict) -> dict[str, str]:
    """Logical id of each AWS::ApiGateway::Resource -> its full path."""
    nodes = resources(template, "AWS::ApiGateway::Resource")

    def path(logical: str) -> str:
        props = nodes[logical]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {logical: path(logical) for logical in nodes}


def methods(template: dict) -> dict[tuple[str, str], dict]:
    paths = resource_paths(template)
    return {
        (m["Properties"]["HttpMethod"], paths[m["Properties"]["ResourceId"]["Ref"]]): m["Properties"]
        for m in resources(template, "AWS::ApiGateway::Method").values()
    }


@pytest.fixture(scope="module")
def api(sandbox) -> dict:
    return sandbox.templates["api"]


def test_routes_match_the_design_and_partner_routes_need_an_api_key(api):
    found = methods(api)
    assert set(found) == ROUTES
    for route, method in found.items():
        assert method["Integration"]["Type"] == ("AWS" if route in SERVICE_ROUTES else "AWS_PROXY"), route
        if route not in STAFF_ROUTES | CUSTOMER_ROUTES:
            assert method["ApiKeyRequired"] is True, route
            assert method.get("AuthorizationType", "NONE") == "NONE", route


def test_staff_routes_are_sigv4_signed_and_take_no_api_key(api):
    found = methods(api)
    for route in STAFF_ROUTES:
        assert found[route]["AuthorizationType"] == "AWS_IAM", route
        assert found[route].get("ApiKeyRequired", False) is False, route


@pytest.mark.parametrize("stage", ["sandbox", "production", "local"])
def test_customer_routes_take_the_identity_stacks_cognito_token_and_no_api_key(stage, request):
    template = request.getfixturevalue(stage).templates["api"]
    found = methods(template)
    ((authorizer_id, authorizer),) = resources(template, "AWS::ApiGateway::Authorizer").items()
    props = authorizer["Properties"]
    assert props["Type"] == "COGNITO_USER_POOLS"
    assert props["IdentitySource"] == "method.request.header.Authorization"
    assert props["AuthorizerResultTtlInSeconds"] == 300
    (pool_arn,) = props["ProviderARNs"]
    assert "identity" in json.dumps(pool_arn) and "Customers" in json.dumps(pool_arn)  # the Identity stack's pool
    for route, method in found.items():
        if route in CUSTOMER_ROUTES:
            assert method["AuthorizationType"] == "COGNITO_USER_POOLS", route
            assert method["AuthorizerId"] == {"Ref": authorizer_id}, route
            assert method.get("ApiKeyRequired", False) is False, route
        else:  # partners keep their API keys, the back office its SigV4
            assert "AuthorizerId" not in method, route


def _invoke_arns(statement: dict) -> list[tuple[str, str]]:
    """(method, path) of each execute-api ARN a statement names: arn:...:<api>/<stage>/<METHOD>/<path>."""
    found = []
    for arn in statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]:
        tail = "".join(part for part in arn["Fn::Join"][1] if isinstance(part, str)).rsplit("/v1/", 1)[1]
        method, _, path = tail.partition("/")
        found.append((method, f"/{path}"))
    return found


def test_the_back_office_role_may_invoke_the_staff_routes_and_nothing_else(api):
    roles = {k: r for k, r in resources(api, "AWS::IAM::Role").items() if k.startswith("BackOfficeRole")}
    assert len(roles) == 1
    ((role_id, role),) = roles.items()
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"]["AWS"] for s in trust] == [
        {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    ]  # this account only: operators assume it as IAM allows them
    policies = [p for p in resources(api, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]]
    granted = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert [s["Action"] for s in granted] == ["execute-api:Invoke"]
    assert granted[0]["Effect"] == "Allow"
    assert sorted(_invoke_arns(granted[0])) == [("GET", "/approvals"), ("POST", "/approvals/*")]
    # No other role or policy in the app's API stack grants execute-api.
    others = [
        s
        for k, p in resources(api, "AWS::IAM::Policy").items()
        if {"Ref": role_id} not in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert not [s for s in others if "execute-api" in json.dumps(s["Action"])]


def test_post_orders_validates_body_and_idempotency_header(api):
    method = methods(api)[("POST", "/orders")]
    assert method["RequestParameters"] == {f"method.request.header.{IDEMPOTENCY_HEADER}": True}
    validator = api["Resources"][method["RequestValidatorId"]["Ref"]]["Properties"]
    assert validator["ValidateRequestBody"] is True and validator["ValidateRequestParameters"] is True
    model = api["Resources"][method["RequestModels"]["application/json"]["Ref"]]["Properties"]
    schema = model["Schema"]
    assert {"items", "customer_id"} <= set(schema["required"])
    items = schema["properties"]["items"]
    assert items["type"] == "array" and items["minItems"] == 1
    assert set(items["items"]["required"]) == {"sku", "quantity", "unit_price"}
    assert items["items"]["properties"]["quantity"]["minimum"] == 1


def test_gateway_models_are_generated_from_the_contract(api):
    """One contract: the gateway validates with the draft-4 rendering of the very pydantic models the
    Lambdas and the backend tier validate with, so no body passes one and fails the other."""
    from contracts import limits
    from contracts.api import ApprovalDecision
    from contracts.orders import OrderRequest
    from stacks.constructs.request_model import draft4

    for route, model in ((("POST", "/orders"), OrderRequest), (("POST", "/approvals/{order_id}"), ApprovalDecision)):
        method = methods(api)[route]
        schema = api["Resources"][method["RequestModels"]["application/json"]["Ref"]]["Properties"]["Schema"]
        assert schema == draft4(model.model_json_schema(mode="validation")), route
    # ... and that rendering carries the contract's limits, in draft 4's words.
    schema = draft4(OrderRequest.model_json_schema(mode="validation"))
    items = schema["properties"]["items"]
    assert (items["minItems"], items["maxItems"]) == (1, limits.MAX_ITEMS)
    line = items["items"]["properties"]
    assert (line["quantity"]["minimum"], line["quantity"]["maximum"]) == (1, limits.MAX_QUANTITY)
    assert line["unit_price"]["minimum"] == 0 and line["unit_price"]["exclusiveMinimum"] is True  # 0 is refused
    assert line["unit_price"]["maximum"] == float(limits.MAX_UNIT_PRICE)
    assert line["sku"]["pattern"] == limits.SKU_PATTERN
    assert schema["properties"]["customer_id"]["pattern"] == limits.CUSTOMER_ID_PATTERN
    assert schema["additionalProperties"] is False and items["items"]["additionalProperties"] is False


def test_api_functions_touch_only_order_partitions_and_never_the_cancel_window(api):
    """The orders API publishes one event (no send to the cancel window) and reads/updates order items
    only; the approvals API also lists pending approvals with a Scan, granted on its own."""
    from contracts.tables import ORDER_PREFIX

    leading = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{ORDER_PREFIX}*"]}}
    for role, extra in (("OrdersApiRole", set()), ("ApprovalsApiRole", {"dynamodb:Scan"})):
        stmts = statements(api, role)
        orders_table = [s for s in stmts if "OrdersTable" in str(s["Resource"])]
        item_level = [s for s in orders_table if "Condition" in s]
        assert [s["Condition"] for s in item_level] == [leading], role
        assert actions_of(item_level) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}, role
        assert actions_of([s for s in orders_table if "Condition" not in s]) == extra, role
        for statement in stmts:  # the only queue: its own DLQ for failed asynchronous invocations
            if "sqs:SendMessage" in actions_of([statement]):
                assert logical_id(statement["Resource"]).startswith("LambdaPackagingAsyncInvokeFailures"), role


def test_approval_decision_body_is_validated(api):
    method = methods(api)[("POST", "/approvals/{order_id}")]
    assert api["Resources"][method["RequestValidatorId"]["Ref"]]["Properties"]["ValidateRequestBody"] is True
    schema = api["Resources"][method["RequestModels"]["application/json"]["Ref"]]["Properties"]["Schema"]
    assert schema["properties"]["decision"]["enum"] == ["approve", "reject"]
    assert schema["required"] == ["decision"] and schema["additionalProperties"] is False


def test_invalid_bodies_get_a_readable_400(api):
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in resources(api, "AWS::ApiGateway::GatewayResponse").values()
    }
    body = responses["BAD_REQUEST_BODY"]
    assert body["StatusCode"] == "400"
    assert "$context.error.validationErrorString" in body["ResponseTemplates"]["application/json"]
    assert IDEMPOTENCY_HEADER in responses["BAD_REQUEST_PARAMETERS"]["ResponseTemplates"]["application/json"]


@pytest.mark.parametrize("stage", ["sandbox", "production"])
def test_usage_plan_throttle_and_quota_come_from_config(stage, request):
    synthesized = request.getfixturevalue(stage)
    template, config = synthesized.templates["api"], synthesized.app.config
    plans = {p["Properties"]["UsagePlanName"]: k for k, p in resources(template, "AWS::ApiGateway::UsagePlan").items()}
    plan_id = plans[config.stack_name("api-clients")]
    props = template["Resources"][plan_id]["Properties"]
    assert props["Throttle"] == {"RateLimit": config.api_rate_limit, "BurstLimit": config.api_burst_limit}
    assert props["Quota"] == {"Limit": config.api_quota_per_day, "Period": "DAY"}
    (stage_id,) = resources(template, "AWS::ApiGateway::Stage")
    assert [s["Stage"] for s in props["ApiStages"]] == [{"Ref": stage_id}]
    (key_link,) = [
        k
        for k in resources(template, "AWS::ApiGateway::UsagePlanKey").values()
        if k["Properties"]["UsagePlanId"] == {"Ref": plan_id}
    ]
    assert key_link["Properties"]["KeyType"] == "API_KEY"
    assert logical_id(key_link["Properties"]["KeyId"]) in resources(template, "AWS::ApiGateway::ApiKey")


def test_stage_is_traced_throttled_and_access_logged_as_json(sandbox, api):
    (stage,) = resources(api, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    fields = json.loads(props["AccessLogSetting"]["Format"])  # valid JSON, one object per request
    assert {"requestId", "traceId", "status", "apiKeyId"} <= set(fields)
    log_group = props["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1][-1]
    assert api["Resources"][log_group["Ref"]]["Properties"]["RetentionInDays"] == sandbox.app.config.log_retention_days
    (defaults,) = [m for m in props["MethodSettings"] if m["ResourcePath"] == "/*" and m["HttpMethod"] == "*"]
    assert defaults["ThrottlingRateLimit"] == sandbox.app.config.api_rate_limit
    assert defaults["ThrottlingBurstLimit"] == sandbox.app.config.api_burst_limit
    assert defaults["LoggingLevel"] in {"ERROR", "INFO"} and defaults["DataTraceEnabled"] is False
    (account,) = resources(api, "AWS::ApiGateway::Account").values()
    assert "CloudWatchRoleArn" in account["Properties"]


@pytest.mark.parametrize("stage", ["sandbox", "production", "local"])
def test_only_get_catalog_is_cached_with_the_stage_ttl_and_encrypted(stage, request):
    """MiniStack drops CacheClusterEnabled and caches nothing: these settings are proven here only."""
    synthesized = request.getfixturevalue(stage)
    template, config = synthesized.templates["api"], synthesized.app.config
    (stage_resource,) = resources(template, "AWS::ApiGateway::Stage").values()
    props = stage_resource["Properties"]
    assert props["CacheClusterEnabled"] is True
    assert props["CacheClusterSize"] == config.api_cache_size_gb
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in props["MethodSettings"]}
    assert settings[("/*", "*")]["CachingEnabled"] is False  # every other method: no cache
    catalog = settings[("/~1catalog", "GET")]
    assert catalog["CachingEnabled"] is True
    assert catalog["CacheTtlInSeconds"] == config.catalog_cache_ttl_seconds
    assert catalog["CacheDataEncrypted"] is True
    assert catalog["ThrottlingRateLimit"] == config.api_rate_limit  # the method keeps the stage's throttle
    assert [key for key, m in settings.items() if m.get("CachingEnabled")] == [("/~1catalog", "GET")]
    assert ("GET", "/catalog") in methods(template)


@pytest.mark.parametrize("stage, endpoint", [("sandbox", "REGIONAL"), ("production", "EDGE")])
def test_endpoint_type_per_stage(stage, endpoint, request):
    (api,) = resources(request.getfixturevalue(stage).templates["api"], "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["EndpointConfiguration"]["Types"] == [endpoint]


def test_stage_has_no_acl_of_its_own_the_edge_acl_protects_it(sandbox, api):
    """One ACL per resource: the Edge stack's (tests/infra/test_edge.py checks its rules)."""
    assert resources(api, "AWS::WAFv2::WebACL") == {}
    assert resources(api, "AWS::WAFv2::WebACLAssociation") == {}
    associations = resources(sandbox.templates["edge"], "AWS::WAFv2::WebACLAssociation").values()
    protected = [json.dumps(a["Properties"]["ResourceArn"]) for a in associations]
    assert sum("Stage" in arn for arn in protected) == 1, protected


def test_approvals_function_may_complete_only_checkout_tasks(sandbox, api):
    stmts = statements(api, "ApprovalsApiRole")
    (task,) = [s for s in stmts if "states:SendTaskSuccess" in actions_of([s])]
    assert actions_of([task]) == {"states:SendTaskSuccess", "states:SendTaskFailure"}
    key, value = cross_stack_target(sandbox, task["Resource"])  # the checkout state machine, not "*"
    assert key == "workflow" and logical_id(value).startswith("Checkout")
    assert not any(a.startswith(("sns:", "states:Start")) for a in actions_of(stmts))
    for statement in stmts:  # its only queue is its own dead-letter queue
        if "sqs:SendMessage" in actions_of([statement]):
            assert logical_id(statement["Resource"]).startswith("LambdaPackagingAsyncInvokeFailures")


def test_orders_function_grants(sandbox, api):
    stmts = statements(api, "OrdersApiRole")
    granted = actions_of(stmts)
    assert {"sns:Publish", "sqs:SendMessage", "states:StartExecution", "dynamodb:PutItem"} <= granted
    assert not {"states:SendTaskSuccess", "s3:PutObject"} & granted
    (start,) = [s for s in stmts if "states:StartExecution" in actions_of([s])]
    assert cross_stack_target(sandbox, start["Resource"])[0] == "workflow"


def test_api_url_is_published_for_service_discovery(sandbox, api):
    names = [p["Properties"]["Name"] for p in resources(api, "AWS::SSM::Parameter").values()]
    assert names == [sandbox.app.config.parameter_name("discovery", "api-url")]


def test_the_recommendations_side_call_is_fire_and_forget_with_bounded_retries_and_kept_failures(sandbox, api):
    """Seed 003 (asynchronous operations): what makes the side call decoupled from POST /orders is that
    the orders API may only *invoke* it (its handler does so with InvocationType=Event, see
    tests/unit/lambdas/orders/test_api.py), and that Lambda, not the caller, owns its failures: one retry,
    ten minutes at most, then the event and its error on an on-failure queue that alarms."""
    from scripts.diagram import Assembly
    from stacks.api_stack import RECOMMENDATIONS_ASYNC_INVOKE
    from tests.infra.test_security import _queues_with_a_depth_alarm, refs, typed

    functions = resources(api, "AWS::Lambda::Function")
    (recommendations,) = [k for k in functions if k.startswith("RecommendationsFunction")]
    (orders,) = [k for k in functions if k.startswith("OrdersApiFunction")]
    variables = functions[orders]["Properties"]["Environment"]["Variables"]
    assert variables["RECOMMENDATIONS_FUNCTION_NAME"] == {"Ref": recommendations}

    (config,) = [
        c["Properties"]
        for c in resources(api, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": recommendations}
    ]
    assert config["MaximumRetryAttempts"] == RECOMMENDATIONS_ASYNC_INVOKE.retry_attempts == 1
    assert config["MaximumEventAgeInSeconds"] == RECOMMENDATIONS_ASYNC_INVOKE.max_event_age.to_seconds() == 600
    destination = logical_id(config["DestinationConfig"]["OnFailure"]["Destination"])
    assert destination.startswith("RecommendationsAsyncInvokeOnFailure")

    # The orders API's only Lambda permission is invoking the side call.
    invoke = [s for s in statements(api, "OrdersApiRole") if any(a.startswith("lambda:") for a in actions_of([s]))]
    assert actions_of(invoke) == {"lambda:InvokeFunction"}
    assert [logical_id(s["Resource"]) for s in invoke] == [recommendations]  # the function, no version wildcard

    # The side service writes only its own partition.
    from contracts.tables import RECOMMENDATION_PREFIX

    side = [s for s in statements(api, "RecommendationsRole") if "OrdersTable" in str(s["Resource"])]
    assert actions_of(side) == {"dynamodb:PutItem"}
    assert [s["Condition"] for s in side] == [
        {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{RECOMMENDATION_PREFIX}*"]}}
    ]

    assembly = Assembly(sandbox.outdir)
    alarmed = _queues_with_a_depth_alarm(sandbox, assembly)
    (on_failure,) = [
        queue
        for ref, c in typed(assembly, "AWS::Lambda::EventInvokeConfig").items()
        if c["Properties"]["FunctionName"] == {"Ref": recommendations}
        for queue in refs(
            assembly, c["Properties"]["DestinationConfig"]["OnFailure"]["Destination"], ref, "AWS::SQS::Queue"
        )
    ]
    assert on_failure in alarmed, "an on-failure queue nobody is told about"


def test_partner_deliveries_go_straight_to_sqs_through_a_mapping_template(sandbox, api):
    """Seed 002 (request/response data transformation, no compute in the path): POST /partners/deliveries
    is an AWS service integration, not a Lambda. The gateway validates the body against the contract's
    model, renders SendMessage (body + message attributes) with a VTL template, and calls SQS with a role
    that may only send to the delivery-updates queue. Partners have their own key and usage plan."""
    from contracts.deliveries import CARRIER_ATTRIBUTE, DELIVERY_UPDATED, EVENT_TYPE_ATTRIBUTE, DeliveryUpdate
    from stacks.constructs.request_model import draft4

    method = methods(api)[("POST", "/partners/deliveries")]
    integration = method["Integration"]
    assert integration["Type"] == "AWS" and integration["IntegrationHttpMethod"] == "POST"
    uri = json.dumps(integration["Uri"])
    assert ":sqs:path/" in uri and "DeliveryUpdatesQueue" in uri
    assert integration["PassthroughBehavior"] == "NEVER"  # no template for the media type: 415, not queued
    template = integration["RequestTemplates"]["application/json"]
    assert "Action=SendMessage&MessageBody=$util.urlEncode($input.body)" in template
    for n, name in enumerate((EVENT_TYPE_ATTRIBUTE, CARRIER_ATTRIBUTE), start=1):
        assert f"MessageAttribute.{n}.Name={name}" in template
    assert f"StringValue={DELIVERY_UPDATED}" in template
    assert "#if" not in template and "#foreach" not in template
    assert {r["StatusCode"] for r in integration["IntegrationResponses"]} == {"202", "503"}

    validator = api["Resources"][method["RequestValidatorId"]["Ref"]]["Properties"]
    assert validator["ValidateRequestBody"] is True
    model = api["Resources"][method["RequestModels"]["application/json"]["Ref"]]["Properties"]
    assert model["Schema"] == draft4(DeliveryUpdate.model_json_schema(mode="validation"))
    assert model["Schema"]["additionalProperties"] is False

    # The integration's role sends to that one queue and does nothing else; nothing in between computes.
    role = logical_id(integration["Credentials"])
    (send,) = statements(api, role)
    assert set(send["Action"]) <= {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
    assert "sqs:SendMessage" in send["Action"]
    key, value = cross_stack_target(sandbox, send["Resource"])
    assert key == "messaging" and logical_id(value).startswith("DeliveryUpdatesQueue")
    permissions = resources(api, "AWS::Lambda::Permission").values()
    assert not [p for p in permissions if "partners" in json.dumps(p["Properties"].get("SourceArn", ""))]

    # The partners' own key, in their own usage plan only.
    config = sandbox.app.config
    plans = {p["Properties"]["UsagePlanName"]: k for k, p in resources(api, "AWS::ApiGateway::UsagePlan").items()}
    partner_plan = api["Resources"][plans[config.stack_name("api-partners")]]["Properties"]
    assert partner_plan["Throttle"] == {
        "RateLimit": config.partner_rate_limit,
        "BurstLimit": config.partner_burst_limit,
    }
    assert partner_plan["Quota"] == {"Limit": config.partner_quota_per_day, "Period": "DAY"}
    links = {
        logical_id(k["Properties"]["KeyId"]): k["Properties"]["UsagePlanId"]["Ref"]
        for k in resources(api, "AWS::ApiGateway::UsagePlanKey").values()
    }
    (partner_key,) = [k for k in links if k.startswith("StorefrontApiPartnerApiKey")]
    assert links[partner_key] == plans[config.stack_name("api-partners")]
    assert list(links.values()).count(plans[config.stack_name("api-partners")]) == 1
