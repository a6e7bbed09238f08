"""The live-status WebSocket API: `$connect` behind the token authorizer, `$disconnect`, their Lambda
integrations, the stage's logs and throttle; the orders table's stream feeding the notifier with bounded
retries, bisection, a maximum record age and an on-failure queue; and least privilege: ManageConnections
(PostToConnection) on this API's stage only, each function only the item actions it needs."""

from __future__ import annotations

import json

import pytest

from stacks.live_status_stack import STAGE_NAME, STREAM_MAX_RECORD_AGE, STREAM_RETRY_ATTEMPTS, TOKEN_SOURCE

STAGES = ["sandbox", "production", "local"]


def _of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def _only(template: dict, resource_type: str) -> tuple[str, dict]:
    found = _of_type(template, resource_type)
    assert len(found) == 1, (resource_type, list(found))
    return next(iter(found.items()))


def _function_of_integration(template: dict, integration: dict) -> str:
    uri = json.dumps(integration["Properties"]["IntegrationUri"])
    (function,) = [k for k in _of_type(template, "AWS::Lambda::Function") if f'"{k}"' in uri]
    return function


def _handler(template: dict, function: str) -> str:
    return template["Resources"][function]["Properties"]["Handler"]


def _policy_statements(template: dict, function: str) -> list[dict]:
    role = template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = []
    for policy in _of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


@pytest.mark.parametrize("stage", STAGES)
def test_connect_is_authorized_by_the_token_authorizer_and_both_routes_reach_their_functions(stage, request):
    template = request.getfixturevalue(stage).templates["live"]
    _, api = _only(template, "AWS::ApiGatewayV2::Api")
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    routes = {
        r["Properties"]["RouteKey"]: r["Properties"] for r in _of_type(template, "AWS::ApiGatewayV2::Route").values()
    }
    assert set(routes) == {"$connect", "$disconnect"}  # no $default: clients only listen
    authorizer_id, authorizer = _only(template, "AWS::ApiGatewayV2::Authorizer")
    assert authorizer["Properties"]["AuthorizerType"] == "REQUEST"
    assert authorizer["Properties"]["IdentitySource"] == [TOKEN_SOURCE]
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    assert routes["$connect"]["AuthorizerId"] == {"Ref": authorizer_id}
    assert routes["$disconnect"]["AuthorizationType"] == "NONE"
    authorizer_function = [
        k
        for k in _of_type(template, "AWS::Lambda::Function")
        if k in json.dumps(authorizer["Properties"]["AuthorizerUri"])
    ]
    assert [_handler(template, f) for f in authorizer_function] == ["live.handlers.authorizer.lambda_handler"]

    integrations = _of_type(template, "AWS::ApiGatewayV2::Integration")
    for route_key, handler in (
        ("$connect", "live.handlers.connections.connect"),
        ("$disconnect", "live.handlers.connections.disconnect"),
    ):
        target = json.dumps(routes[route_key]["Target"])
        (integration,) = [v for k, v in integrations.items() if f'"{k}"' in target]
        assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
        assert _handler(template, _function_of_integration(template, integration)) == handler


@pytest.mark.parametrize("stage", STAGES)
def test_the_stage_logs_json_and_is_throttled(stage, request):
    synthesized = request.getfixturevalue(stage)
    _, stage_resource = _only(synthesized.templates["live"], "AWS::ApiGatewayV2::Stage")
    props = stage_resource["Properties"]
    assert props["StageName"] == STAGE_NAME and props["AutoDeploy"] is True
    log_format = json.loads(props["AccessLogSettings"]["Format"])
    assert {"requestId", "routeKey", "eventType", "connectionId", "status"} <= set(log_format)
    assert "token" not in props["AccessLogSettings"]["Format"]  # the query string is never logged
    config = synthesized.app.config
    assert props["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": config.api_burst_limit,
        "ThrottlingRateLimit": config.api_rate_limit,
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_orders_stream_feeds_the_notifier_with_bounded_retries_and_an_on_failure_queue(stage, request):
    synthesized = request.getfixturevalue(stage)
    data = synthesized.templates["data"]
    orders = next(v for k, v in _of_type(data, "AWS::DynamoDB::Table").items() if k.startswith("OrdersTable"))
    assert orders["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}

    template = synthesized.templates["live"]
    _, mapping = _only(template, "AWS::Lambda::EventSourceMapping")
    props = mapping["Properties"]
    assert "StreamArn" in json.dumps(props["EventSourceArn"]) and "OrdersTable" in json.dumps(props["EventSourceArn"])
    assert props["MaximumRetryAttempts"] == STREAM_RETRY_ATTEMPTS <= 5
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRecordAgeInSeconds"] == STREAM_MAX_RECORD_AGE.to_seconds() <= 600
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["StartingPosition"] == "LATEST"
    queue_id = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    queue = template["Resources"][queue_id]
    assert queue["Type"] == "AWS::SQS::Queue" and queue["Properties"]["MessageRetentionPeriod"] == 14 * 86400
    assert _handler(template, props["FunctionName"]["Ref"]) == "live.handlers.notifier.lambda_handler"


@pytest.mark.parametrize("stage", STAGES)
def test_least_privilege(stage, request):
    template = request.getfixturevalue(stage).templates["live"]
    functions = {_handler(template, k): k for k in _of_type(template, "AWS::Lambda::Function")}
    table_id, table = _only(template, "AWS::DynamoDB::Table")
    assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    api_id, _ = _only(template, "AWS::ApiGatewayV2::Api")

    def actions(handler: str) -> dict[str, list]:
        found: dict[str, list] = {}
        for statement in _policy_statements(template, functions[handler]):
            for action in [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]:
                found.setdefault(action, []).append(statement["Resource"])
        return found

    manage = {
        h: a["execute-api:ManageConnections"]
        for h, a in ((h, actions(h)) for h in functions)
        if "execute-api:ManageConnections" in a
    }
    assert list(manage) == ["live.handlers.notifier.lambda_handler"]  # the only function that may push
    (resource,) = manage["live.handlers.notifier.lambda_handler"]
    rendered = json.dumps(resource)
    assert f'{{"Ref": "{api_id}"}}' in rendered and rendered.endswith(f'"/{STAGE_NAME}/POST/@connections/*"]]}}')

    dynamo = {
        handler: sorted(a for a in actions(handler) if a.startswith("dynamodb:") and a != "dynamodb:ListStreams")
        for handler in functions
    }
    assert dynamo == {
        "live.handlers.authorizer.lambda_handler": [],
        "live.handlers.connections.connect": ["dynamodb:PutItem"],
        "live.handlers.connections.disconnect": ["dynamodb:DeleteItem"],
        "live.handlers.notifier.lambda_handler": [
            "dynamodb:DeleteItem",
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:Query",
        ],
    }
    for handler in ("live.handlers.connections.connect", "live.handlers.connections.disconnect"):
        assert all(
            r == [{"Fn::GetAtt": [table_id, "Arn"]}] for a, r in actions(handler).items() if a.startswith("dynamodb:")
        )


@pytest.mark.parametrize("stage", STAGES)
def test_the_authorizer_trusts_the_identity_stacks_pool_and_client(stage, request):
    template = request.getfixturevalue(stage).templates["live"]
    authorizer = next(
        v
        for v in _of_type(template, "AWS::Lambda::Function").values()
        if v["Properties"]["Handler"] == "live.handlers.authorizer.lambda_handler"
    )
    env = authorizer["Properties"]["Environment"]["Variables"]
    assert "identity" in json.dumps(env["USER_POOL_ID"]) and "identity" in json.dumps(env["USER_POOL_CLIENT_ID"])


@pytest.mark.parametrize("stage", STAGES)
def test_the_web_tier_finds_the_socket_through_discovery(stage, request):
    template = request.getfixturevalue(stage).templates["live"]
    names = {v["Properties"]["Name"] for v in _of_type(template, "AWS::SSM::Parameter").values()}
    prefix = f"/lc/{stage}/discovery/"
    assert names == {prefix + n for n in ("websocket-url", "websocket-api-id", "websocket-stage")}
