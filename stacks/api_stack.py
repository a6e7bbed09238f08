"""The API front door (docs/design.md flow 2): API Gateway REST API -> Powertools Lambdas.

Partners (machine clients) identify themselves with an API key; a usage plan throttles and caps them per
day. Staff routes (the approvals: every operator action) take no API key: they are authorized with AWS
Signature Version 4 (seed 002: "leverage signature version 4 to authorize access to APIs"), and only the
back-office role may call them - and nothing else. Request
bodies are validated against JSON-schema models at the gateway, so a malformed order never costs a
Lambda invocation. The Edge stack's WAF web ACL (shared with the web ALB) rate-limits per source IP and
drops known-bad inputs.

Customers (people signed in to the storefront) have routes of their own, `/me/orders/{order_id}`
(GET, DELETE), authorized by the Identity stack's Cognito user pool (their ID token in the
`Authorization` header) instead of an API key: a method takes one authorizer, and a partner's key says
nothing about which customer is asking. The Lambda answers only the token's own orders. Placing an
order stays a partner (API key) or web-tier action: the storefront places its customers' orders
through the web tier, which holds the session and the cart.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnOutput, Duration, Fn, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from contracts.api import IDEMPOTENCY_HEADER, ApprovalDecision
from contracts.deliveries import CARRIER_ATTRIBUTE, DELIVERY_UPDATED, EVENT_TYPE_ATTRIBUTE, DeliveryUpdate
from contracts.orders import OrderRequest
from contracts.tables import ORDER_PREFIX, RECOMMENDATION_PREFIX
from stacks.config import StageConfig
from stacks.constructs.discovery import publish
from stacks.constructs.powertools_function import AsyncInvokeProps, PowertoolsFunction, PowertoolsFunctionProps
from stacks.constructs.request_model import add_request_model
from stacks.grants import grant_items
from stacks.nag import acknowledge, acknowledge_topic_key_grant, iam5_resource_finding
from stacks.stage_defaults import log_encryption_key, log_retention, removal_policy, shared_function_props

STAGE_NAME = "v1"
# The one cached method (stage method settings key: resource path + HTTP method).
CATALOG_METHOD = "/catalog/GET"

# The recommendations side call (seed 003, asynchronous operations): POST /orders fires it and answers.
# One retry absorbs a blip; a signal still not recorded after 10 minutes is stale for "also bought"
# lists, so it goes to the on-failure queue (alarmed) to be inspected and replayed, not retried for
# AWS's default 6 hours.
RECOMMENDATIONS_ASYNC_INVOKE = AsyncInvokeProps(retry_attempts=1, max_event_age=Duration.minutes(10))


def delivery_update_template() -> str:
    """The VTL mapping template of POST /partners/deliveries: the validated body, as sent, becomes an SQS
    SendMessage call (form-encoded, as SQS's Query API takes it) with the event type and the carrier as
    message attributes, so consumers and filters need not parse the body to route it. Only `#set`,
    `$input.*` and `$util.urlEncode` are used (no `#if`/`#foreach`): the gateway's model already refused
    every body this template could not map."""
    attributes = [(EVENT_TYPE_ATTRIBUTE, DELIVERY_UPDATED), (CARRIER_ATTRIBUTE, "$util.urlEncode($carrier)")]
    lines = [
        "#set($carrier = $input.path('$.carrier'))",
        "Action=SendMessage&MessageBody=$util.urlEncode($input.body)",
    ]
    for n, (name, value) in enumerate(attributes, start=1):
        prefix = f"&MessageAttribute.{n}"
        lines.append(f"{prefix}.Name={name}{prefix}.Value.DataType=String{prefix}.Value.StringValue={value}")
    return "".join(line if i else line + "\n" for i, line in enumerate(lines))


def access_log_format() -> apigw.AccessLogFormat:
    """One JSON object per request: searchable in Logs Insights, joinable with X-Ray by trace id."""
    return apigw.AccessLogFormat.custom(
        '{"requestId":"$context.requestId","traceId":"$context.xrayTraceId",'
        '"ip":"$context.identity.sourceIp","apiKeyId":"$context.identity.apiKeyId",'
        '"method":"$context.httpMethod","resource":"$context.resourcePath","path":"$context.path",'
        '"status":"$context.status","latencyMs":"$context.responseLatency",'
        '"integrationLatencyMs":"$context.integration.latency","error":"$context.error.message",'
        '"requestTime":"$context.requestTime"}'
    )


class ApiStack(Stack):
    """`.rest_api`, `.orders_function`, `.approvals_function`, `.api_key`, `.back_office_role`;
    `.recommendations_function` (the orders API's fire-and-forget side call) and
    `.recommendations_failures` (its on-failure queue)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        orders_table: dynamodb.ITable,
        idempotency_table: dynamodb.ITable,
        order_events_topic: sns.ITopic,
        checkout_state_machine: sfn.IStateMachine,
        delivery_updates_queue: sqs.IQueue,
        user_pool: cognito.IUserPool,
        log_key: kms.IKey | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.user_pool = user_pool
        self.log_key = log_encryption_key(config, log_key)
        self.recommendations_function = self._recommendations_function(config, orders_table)
        self.orders_function = self._orders_function(
            config, orders_table, idempotency_table, order_events_topic, checkout_state_machine
        )
        # Only asynchronously: the orders API's role may invoke the side call, and its handler does so with
        # InvocationType=Event (plumbing.side_calls), so a slow or failing side service never delays an order.
        # The unqualified function only (grant_invoke would add its versions and aliases, ARN:*).
        self.orders_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[self.recommendations_function.function_arn]
            )
        )
        self.approvals_function = self._approvals_function(config, orders_table, checkout_state_machine)
        self.stage_name = STAGE_NAME
        self.rest_api = self._rest_api(config)
        self._routes()
        self.api_key = self._usage_plan(config)
        self.back_office_role = self._back_office_role()
        self.partner_api_key = self._partner_deliveries(config, delivery_updates_queue)
        # WAF: the Edge stack's one web ACL protects this stage and the web ALB alike (a resource takes
        # one ACL only; a second association would silently replace the first).
        acknowledge(
            self.rest_api.deployment_stage,
            "AwsSolutions-APIG3",
            "The stage is associated with the Edge stack's regional web ACL (stacks/edge_stack.py), shared "
            "with the web ALB; cdk-nag only sees associations made in this stack.",
        )

        publish(
            self,
            config.parameter_name("discovery"),
            "api-url",
            self.rest_api.url,
            "Base URL of the storefront REST API (stage included)",
        )
        CfnOutput(self, "ApiUrl", value=self.rest_api.url)
        CfnOutput(self, "BackOfficeRoleArn", value=self.back_office_role.role_arn)
        CfnOutput(
            self,
            "ApiKeyId",
            value=self.api_key.key_id,
            description="aws apigateway get-api-key --include-value --api-key <id>",
        )
        CfnOutput(
            self,
            "PartnerApiKeyId",
            value=self.partner_api_key.key_id,
            description="The delivery partners' key (POST /partners/deliveries)",
        )

    # --- functions ------------------------------------------------------------------------------

    def _orders_function(
        self,
        config: StageConfig,
        orders_table: dynamodb.ITable,
        idempotency_table: dynamodb.ITable,
        topic: sns.ITopic,
        state_machine: sfn.IStateMachine,
    ) -> lambda_.Function:
        function = PowertoolsFunction(
            self,
            "OrdersApi",
            shared=shared_function_props(config, self.log_key),
            props=PowertoolsFunctionProps(
                handler="orders.handlers.api.lambda_handler",
                service_name="orders-api",
                description="Places, reads, cancels and checks out orders; lists the catalogue",
                environment={
                    "ORDER_EVENTS_TOPIC_ARN": topic.topic_arn,
                    "ORDERS_TABLE": orders_table.table_name,
                    "IDEMPOTENCY_TABLE": idempotency_table.table_name,
                    "CHECKOUT_STATE_MACHINE_ARN": state_machine.state_machine_arn,
                    "RECOMMENDATIONS_FUNCTION_NAME": self.recommendations_function.function_name,
                },
            ),
        ).function
        topic.grant_publish(function)
        acknowledge_topic_key_grant(function)
        # Reads, cancels and notes the checkout on order records; the consumers create them.
        grant_items(orders_table, function, ["GetItem", "UpdateItem"], key_prefixes=[ORDER_PREFIX])
        idempotency_table.grant_read_write_data(function)
        state_machine.grant_start_execution(function)
        return function

    def _recommendations_function(self, config: StageConfig, orders_table: dynamodb.ITable) -> lambda_.Function:
        construct = PowertoolsFunction(
            self,
            "Recommendations",
            shared=shared_function_props(config, self.log_key),
            props=PowertoolsFunctionProps(
                handler="recommendations.handlers.side_call.lambda_handler",
                service_name="recommendations",
                description="Records which SKUs were bought together; invoked asynchronously by POST /orders",
                environment={"ORDERS_TABLE": orders_table.table_name},
                asynchronous=RECOMMENDATIONS_ASYNC_INVOKE,
            ),
        )
        assert construct.on_failure_queue is not None  # set for every asynchronously invoked function
        self.recommendations_failures = construct.on_failure_queue
        grant_items(orders_table, construct.function, ["PutItem"], key_prefixes=[RECOMMENDATION_PREFIX])
        return construct.function

    def _approvals_function(
        self, config: StageConfig, orders_table: dynamodb.ITable, state_machine: sfn.IStateMachine
    ) -> lambda_.Function:
        function = PowertoolsFunction(
            self,
            "ApprovalsApi",
            shared=shared_function_props(config, self.log_key),
            props=PowertoolsFunctionProps(
                handler="checkout.handlers.approvals.lambda_handler",
                service_name="approvals-api",
                description="Lists pending approvals and completes the checkout's approval task",
                environment={"ORDERS_TABLE": orders_table.table_name},
            ),
        ).function
        # Claims and closes approval items; lists the pending ones with a filtered Scan (a handful of
        # items waiting for a human; LeadingKeys cannot constrain a Scan, so it is granted on its own).
        grant_items(orders_table, function, ["GetItem", "UpdateItem"], key_prefixes=[ORDER_PREFIX])
        function.add_to_role_policy(iam.PolicyStatement(actions=["dynamodb:Scan"], resources=[orders_table.table_arn]))
        # The service authorization reference lists no resource type for SendTask*, yet IAM evaluates
        # the call against the state machine that issued the token (its ARN appears in AccessDenied
        # messages), so the grant names that state machine only - not "*", as the console proposes.
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
                resources=[state_machine.state_machine_arn],
            )
        )
        return function

    # --- API -------------------------------------------------------------------------------------

    def _rest_api(self, config: StageConfig) -> apigw.RestApi:
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention(config.log_retention_days),
            removal_policy=removal_policy(config),
            encryption_key=self.log_key,
        )
        api = apigw.RestApi(
            self,
            "StorefrontApi",
            rest_api_name=config.stack_name("api"),
            description="Storefront orders and approvals API",
            endpoint_types=[apigw.EndpointType[config.api_endpoint_type]],
            cloud_watch_role=False,  # the account-level logging role below is scoped, not AWS-managed
            default_method_options=apigw.MethodOptions(api_key_required=True),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # full request/response bodies would put customer data in logs
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=access_log_format(),
                # Stage-wide method throttling: the ceiling for all keys together, above any usage plan.
                throttling_rate_limit=config.api_rate_limit,
                throttling_burst_limit=config.api_burst_limit,
                # A cache cluster for the stage, used by GET /catalog only (seed 004: caching reduces the
                # calls made to the backend); every other method stays uncached (`/*/*` below).
                cache_cluster_enabled=True,
                cache_cluster_size=config.api_cache_size_gb,
                caching_enabled=False,
                method_options={
                    CATALOG_METHOD: apigw.MethodDeploymentOptions(
                        caching_enabled=True,
                        cache_ttl=Duration.seconds(config.catalog_cache_ttl_seconds),
                        cache_data_encrypted=True,
                        # Same logging and throttling as the stage's other methods.
                        metrics_enabled=True,
                        logging_level=apigw.MethodLoggingLevel.ERROR,
                        data_trace_enabled=False,
                        throttling_rate_limit=config.api_rate_limit,
                        throttling_burst_limit=config.api_burst_limit,
                    )
                },
            ),
        )
        self._cloudwatch_logging_role(api)
        # API Gateway would create the execution log group itself on first use: unencrypted and kept
        # forever. Created here first (same name), it gets the stage's retention and log key.
        execution_logs = logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=Fn.join("", ["API-Gateway-Execution-Logs_", api.rest_api_id, f"/{STAGE_NAME}"]),
            retention=log_retention(config.log_retention_days),
            removal_policy=removal_policy(config),
            encryption_key=self.log_key,
        )
        api.deployment_stage.node.add_dependency(execution_logs)
        for response_type, message in (
            (apigw.ResponseType.BAD_REQUEST_BODY, "Invalid request body: $context.error.validationErrorString"),
            (
                apigw.ResponseType.BAD_REQUEST_PARAMETERS,
                f"Missing or invalid request parameters (POST /orders needs an {IDEMPOTENCY_HEADER} header): "
                "$context.error.validationErrorString",
            ),
        ):
            api.add_gateway_response(
                response_type.response_type,
                type=response_type,
                status_code="400",
                templates={"application/json": '{"message": "' + message + '", "requestId": "$context.requestId"}'},
            )
        return api

    def _cloudwatch_logging_role(self, api: apigw.RestApi) -> None:
        """API Gateway writes execution logs through one role per account and region (AWS::ApiGateway::Account).
        Instead of AmazonAPIGatewayPushToCloudWatchLogs, this role may write only to execution log groups.
        The setting is a regional singleton: two stages deployed to one account and region share it
        (the last deployed wins; the roles are equivalent)."""
        execution_logs = self.format_arn(
            service="logs",
            resource="log-group",
            resource_name="API-Gateway-Execution-Logs_*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role = iam.Role(
            self,
            "CloudWatchLoggingRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway execution logging (account-level setting)",
            # Inline, so the permissions exist as soon as the role does: API Gateway checks them when
            # the account setting is applied.
            inline_policies={
                "ExecutionLogs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            actions=[
                                "logs:CreateLogGroup",
                                "logs:CreateLogStream",
                                "logs:PutLogEvents",
                                "logs:PutRetentionPolicy",
                                "logs:DescribeLogStreams",
                            ],
                            resources=[execution_logs, f"{execution_logs}:log-stream:*"],
                        ),
                        iam.PolicyStatement(actions=["logs:DescribeLogGroups"], resources=["*"]),
                    ]
                )
            },
        )
        why = (
            "API Gateway names execution log groups API-Gateway-Execution-Logs_<api id>/<stage>, and the account "
            "setting serves every REST API in the region, so the role is scoped to that name prefix; "
            "logs:DescribeLogGroups has no resource-level permission."
        )
        for resource in (execution_logs, f"{execution_logs}:log-stream:*", "*"):
            acknowledge(role, iam5_resource_finding(self, resource), why)
        account = apigw.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
        api.deployment_stage.node.add_dependency(account)

    def _routes(self) -> None:
        api = self.rest_api
        orders = apigw.LambdaIntegration(self.orders_function)
        approvals = apigw.LambdaIntegration(self.approvals_function)
        order_model = add_request_model(api, OrderRequest)
        decision_model = add_request_model(api, ApprovalDecision)
        body_and_params = api.add_request_validator(
            "BodyAndParameters", validate_request_body=True, validate_request_parameters=True
        )
        body_only = api.add_request_validator("Body", validate_request_body=True, validate_request_parameters=False)

        # The catalogue: an API key like the order routes; answered from the stage cache (deploy options).
        api.root.add_resource("catalog").add_method("GET", orders)

        order_collection = api.root.add_resource("orders")
        order_collection.add_method(
            "POST",
            orders,
            request_models={"application/json": order_model},
            request_parameters={f"method.request.header.{IDEMPOTENCY_HEADER}": True},
            request_validator=body_and_params,
        )
        order = order_collection.add_resource("{order_id}")
        # Path parameters need no validator: API Gateway routes only requests that carry them.
        order.add_method("GET", orders)
        order.add_method("DELETE", orders)
        order.add_resource("checkout").add_method("POST", orders)

        # Customer routes: the signed-in customer's ID token (Cognito user pool authorizer), no API key.
        self.customer_authorizer = apigw.CognitoUserPoolsAuthorizer(
            self,
            "CustomerAuthorizer",
            cognito_user_pools=[self.user_pool],
            identity_source=apigw.IdentitySource.header("Authorization"),
            results_cache_ttl=Duration.minutes(5),
        )
        my_order = api.root.add_resource("me").add_resource("orders").add_resource("{order_id}")
        for resource, verb in ((my_order, "GET"), (my_order, "DELETE"), (my_order.add_resource("checkout"), "POST")):
            resource.add_method(
                verb,
                orders,
                authorization_type=apigw.AuthorizationType.COGNITO,
                authorizer=self.customer_authorizer,
                api_key_required=False,
            )

        # Staff routes: SigV4 (AWS_IAM) instead of an API key; the back-office role's policy names them.
        staff = apigw.AuthorizationType.IAM
        approval_collection = api.root.add_resource("approvals")
        approval_collection.add_method("GET", approvals, authorization_type=staff, api_key_required=False)
        approval_collection.add_resource("{order_id}").add_method(
            "POST",
            approvals,
            request_models={"application/json": decision_model},
            request_validator=body_only,
            authorization_type=staff,
            api_key_required=False,
        )

        acknowledge(
            api,
            "AwsSolutions-APIG4",
            "The order routes serve partners' machine clients identified by API keys with a usage plan (throttle "
            "+ quota); the staff routes are authorized with IAM (SigV4, the back-office role); the customer "
            "routes (/me/...) by the Cognito user pool.",
        )
        acknowledge(
            api,
            "AwsSolutions-COG4",
            "The customer routes (/me/orders/...) use the Cognito user pool authorizer; the partner routes are "
            "for machine clients with API keys, the staff routes are signed with SigV4 (IAM).",
        )

    def _back_office_role(self) -> iam.Role:
        """Operators assume this role (from this account, as IAM allows them) to call the staff routes:
        execute-api:Invoke on exactly those methods of this stage, nothing else."""
        api = self.rest_api
        routes = [("GET", "/approvals"), ("POST", "/approvals/*")]
        role = iam.Role(
            self,
            "BackOfficeRole",
            assumed_by=iam.AccountRootPrincipal(),
            description="Back office: may call the staff routes (approvals) of the storefront API, nothing else",
        )
        arns = [api.arn_for_execute_api(method, path, STAGE_NAME) for method, path in routes]
        role.add_to_policy(iam.PolicyStatement(actions=["execute-api:Invoke"], resources=arns))
        acknowledge(
            role,
            iam5_resource_finding(self, arns[1]),
            "POST /approvals/{order_id}: the wildcard is the order id path parameter of the one staff route.",
        )
        return role

    def _usage_plan(self, config: StageConfig) -> apigw.IApiKey:
        api = self.rest_api
        plan = api.add_usage_plan(
            "UsagePlan",
            name=config.stack_name("api-clients"),
            description="Per-key throttle and daily quota for API clients",
            throttle=apigw.ThrottleSettings(rate_limit=config.api_rate_limit, burst_limit=config.api_burst_limit),
            quota=apigw.QuotaSettings(limit=config.api_quota_per_day, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=api, stage=api.deployment_stage)],
        )
        key = api.add_api_key("ApiKey", description="Storefront API client key (value generated by API Gateway)")
        plan.add_api_key(key)
        return key

    def _partner_deliveries(self, config: StageConfig, queue: sqs.IQueue) -> apigw.IApiKey:
        """POST /partners/deliveries -> SQS, with no compute in the path (seed 002): the gateway validates
        the body against the contract's model, maps it to SendMessage with a VTL template and answers 202
        with the message id. A body the model refuses gets a 400 and is never queued."""
        api = self.rest_api
        role = iam.Role(
            self,
            "DeliveryUpdatesIntegrationRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway sends partner delivery updates to their queue",
        )
        queue.grant_send_messages(role)
        integration = apigw.AwsIntegration(
            service="sqs",
            path=f"{self.account}/{queue.queue_name}",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=role,
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_parameters={"integration.request.header.Content-Type": "'application/x-www-form-urlencoded'"},
                request_templates={"application/json": delivery_update_template()},
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code="202",
                        selection_pattern="2\\d{2}",
                        response_templates={
                            "application/json": '{"message_id": '
                            "\"$input.path('$.SendMessageResponse.SendMessageResult.MessageId')\"}"
                        },
                    ),
                    apigw.IntegrationResponse(
                        status_code="503",
                        selection_pattern="[45]\\d{2}",
                        response_templates={
                            "application/json": '{"message": "The update could not be queued; retry later"}'
                        },
                    ),
                ],
            ),
        )
        model = add_request_model(api, DeliveryUpdate)
        validator = api.add_request_validator(
            "PartnerBody", validate_request_body=True, validate_request_parameters=False
        )
        api.root.add_resource("partners").add_resource("deliveries").add_method(
            "POST",
            integration,
            request_models={"application/json": model},
            request_validator=validator,
            method_responses=[apigw.MethodResponse(status_code="202"), apigw.MethodResponse(status_code="503")],
        )
        plan = api.add_usage_plan(
            "PartnerUsagePlan",
            name=config.stack_name("api-partners"),
            description="Per-key throttle and daily quota for delivery partners",
            throttle=apigw.ThrottleSettings(
                rate_limit=config.partner_rate_limit, burst_limit=config.partner_burst_limit
            ),
            quota=apigw.QuotaSettings(limit=config.partner_quota_per_day, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=api, stage=api.deployment_stage)],
        )
        key = api.add_api_key("PartnerApiKey", description="Delivery partner key (value generated by API Gateway)")
        plan.add_api_key(key)
        return key
