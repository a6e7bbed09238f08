"""Live order status over an API Gateway WebSocket API (seed 004: "WebSockets ... push updates to
clients"), fed by the orders table's DynamoDB stream: no process polls, no process holds a socket.

    browser --wss ?token=<Cognito ID token>--> $connect: REQUEST authorizer (PyJWT against the pool's
        JWKS) -> connect function stores (customer, connection) in the connections table (TTL)
    orders table stream (NEW_AND_OLD_IMAGES) -> notifier -> PostToConnection to each of the customer's
        connections {orderId, status, reason?}; a gone connection is deleted
    $disconnect -> the connection is deleted

The stream mapping retries a failing batch a bounded number of times, bisecting it to isolate the
record at fault, drops records older than the status is worth, and sends what it gave up on to an SQS
queue (the on-failure destination). Stateless functions and an ephemeral table: a stack that can be
destroyed and redeployed without touching orders.
"""

from __future__ import annotations

import jsii
from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.config import StageConfig
from stacks.constructs.discovery import publish
from stacks.constructs.powertools_function import PowertoolsFunction, PowertoolsFunctionProps
from stacks.data_stack import standard_table
from stacks.nag import acknowledge, iam5_resource_finding
from stacks.stage_defaults import log_encryption_key, log_retention, removal_policy, shared_function_props

STAGE_NAME = "live"
TOKEN_SOURCE = "route.request.querystring.token"  # browsers cannot set headers on a WebSocket
# The stream mapping: a status change is worth pushing for a few minutes, not for the stream's 24 hours.
STREAM_RETRY_ATTEMPTS = 3
STREAM_MAX_RECORD_AGE = Duration.minutes(5)
STREAM_BATCH_SIZE = 25


class LiveStatusStack(Stack):
    """`.api`, `.stage`, `.connections_table`, `.authorizer_function`, `.connections_function`,
    `.notifier_function`, `.stream_failures`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        orders_table: dynamodb.ITable,
        user_pool: cognito.IUserPool,
        user_pool_client: cognito.IUserPoolClient,
        log_key: kms.IKey | None = None,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.log_key = log_encryption_key(config, log_key)
        shared = shared_function_props(config, self.log_key)
        # Connections are worth nothing once the sockets close: destroyed with the stack in every stage.
        self.connections_table = standard_table(
            self,
            "ConnectionsTable",
            partition="customer_id",
            sort="connection_id",
            ttl="expires_at",
            removal_policy=RemovalPolicy.DESTROY,
        )

        self.authorizer_function = PowertoolsFunction(
            self,
            "ConnectAuthorizer",
            shared=shared,
            props=PowertoolsFunctionProps(
                handler="live.handlers.authorizer.lambda_handler",
                service_name="live-status-authorizer",
                description="Verifies the Cognito ID token of a WebSocket $connect",
                environment={
                    "USER_POOL_ID": user_pool.user_pool_id,
                    "USER_POOL_CLIENT_ID": user_pool_client.user_pool_client_id,
                },
            ),
        ).function
        self.connections_function = PowertoolsFunction(
            self,
            "Connect",
            shared=shared,
            props=PowertoolsFunctionProps(
                handler="live.handlers.connections.connect",
                service_name="live-status-connections",
                description="Stores a verified customer's WebSocket connection",
                environment={"CONNECTIONS_TABLE": self.connections_table.table_name},
            ),
        ).function
        self.disconnect_function = PowertoolsFunction(
            self,
            "Disconnect",
            shared=shared,
            props=PowertoolsFunctionProps(
                handler="live.handlers.connections.disconnect",
                service_name="live-status-connections",
                description="Removes a closed WebSocket connection",
                environment={"CONNECTIONS_TABLE": self.connections_table.table_name},
            ),
        ).function
        self._connection_grants()

        self.api = apigwv2.WebSocketApi(
            self,
            "LiveStatusApi",
            api_name=config.stack_name("live-status"),
            description="Live order status: the orders table's status changes pushed to the customer's sockets",
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Connect", self.connections_function),
                authorizer=authorizers.WebSocketLambdaAuthorizer(
                    "TokenAuthorizer", self.authorizer_function, identity_source=[TOKEN_SOURCE]
                ),
            ),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration("Disconnect", self.disconnect_function),
            ),
        )
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention(config.log_retention_days),
            removal_policy=removal_policy(config),
            encryption_key=self.log_key,
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=STAGE_NAME,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=config.api_rate_limit, burst_limit=config.api_burst_limit),
            access_log_settings=_AccessLogs(apigwv2.LogGroupLogDestination(access_logs)),
        )
        acknowledge(
            self.api,
            "AwsSolutions-APIG4",
            "Only $connect is authorized (a REQUEST Lambda authorizer verifying the Cognito ID token); API Gateway "
            "authorizes a WebSocket connection once, and $disconnect cannot be refused.",
        )

        self.stream_failures, self.notifier_function = self._notifier(config, shared, orders_table)

        def discovery(name: str, value: str, description: str) -> ssm.StringParameter:
            return publish(self, config.parameter_name("discovery"), name, value, description)

        discovery("websocket-url", self.stage.url, "Live-status WebSocket URL (wss://, open with ?token=<ID token>)")
        discovery("websocket-api-id", self.api.api_id, "Live-status WebSocket API id")
        discovery("websocket-stage", STAGE_NAME, "Live-status WebSocket API stage")
        CfnOutput(self, "WebSocketUrl", value=self.stage.url)

    def _connection_grants(self) -> None:
        table = self.connections_table
        for function, actions in ((self.connections_function, ["PutItem"]), (self.disconnect_function, ["DeleteItem"])):
            function.add_to_role_policy(
                _item_actions(table, actions),
            )

    def _notifier(
        self, config: StageConfig, shared, orders_table: dynamodb.ITable
    ) -> tuple[sqs.Queue, lambda_.Function]:
        function = PowertoolsFunction(
            self,
            "Notifier",
            shared=shared,
            props=PowertoolsFunctionProps(
                handler="live.handlers.notifier.lambda_handler",
                service_name="live-status-notifier",
                description="Pushes order status changes (orders table stream) to the customers' WebSockets",
                environment={
                    "CONNECTIONS_TABLE": self.connections_table.table_name,
                    "WEBSOCKET_CALLBACK_URL": self.stage.callback_url,
                },
            ),
        ).function
        failures = sqs.Queue(
            self,
            "StreamFailures",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal_policy(config),
        )
        for rule in ("AwsSolutions-SQS3", "Serverless-SQSRedrivePolicy"):
            acknowledge(
                failures,
                rule,
                "This queue is the stream mapping's on-failure destination (the batches it gave up on, for "
                "inspection): the end of the line, not a work queue.",
            )
        function.add_event_source(
            sources.DynamoEventSource(
                orders_table,
                starting_position=lambda_.StartingPosition.LATEST,
                batch_size=STREAM_BATCH_SIZE,
                retry_attempts=STREAM_RETRY_ATTEMPTS,
                bisect_batch_on_error=True,
                max_record_age=STREAM_MAX_RECORD_AGE,
                report_batch_item_failures=True,
                on_failure=sources.SqsDlq(failures),
            )
        )
        function.add_to_role_policy(_item_actions(self.connections_table, ["Query", "DeleteItem"]))
        # execute-api:ManageConnections on this API's stage only, and for PostToConnection only (not
        # GetConnection or DeleteConnection): POST /@connections/<id>.
        post_to_connection = self.format_arn(
            service="execute-api",
            resource=self.api.api_id,
            resource_name=f"{STAGE_NAME}/POST/@connections/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["execute-api:ManageConnections"], resources=[post_to_connection])
        )
        assert function.role is not None
        acknowledge(
            function.role,
            iam5_resource_finding(self, post_to_connection),
            "PostToConnection to any connection of this API's one stage: connection ids are made at $connect.",
        )
        acknowledge(
            function.role,
            "AwsSolutions-IAM5[Resource::*]",
            "dynamodb:ListStreams has no resource-level permission (the stream mapping's grant); X-Ray is Resource *.",
        )
        return failures, function


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    """The stage's access log: one JSON line per connect, message and disconnect (no token: the query string is not logged)."""

    def __init__(self, destination: apigwv2.IAccessLogDestination) -> None:
        self._destination = destination

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(
            '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
            '"routeKey":"$context.routeKey","eventType":"$context.eventType","connectionId":"$context.connectionId",'
            '"status":"$context.status","error":"$context.error.message",'
            '"authorizerError":"$context.authorizer.error","requestTime":"$context.requestTime"}'
        )


def _item_actions(table: dynamodb.ITable, actions: list[str]) -> iam.PolicyStatement:
    return iam.PolicyStatement(actions=[f"dynamodb:{a}" for a in sorted(actions)], resources=[table.table_arn])
