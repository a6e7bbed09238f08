"""One dashboard and one alarm topic for the whole system, built with cdk-monitoring-constructs.

Loose coupling moves failures out of sight: a consumer that breaks does not fail the producer, it
leaves messages behind. So the alarms watch what piles up (dead-letter queues, the age of the oldest
message) as well as what errors (Lambda, API, ALB, checkout executions). Every alarm says in its
description what to do, and every alarm notifies the same KMS-encrypted SNS topic.

Scaling note: no Auto Scaling group consumes a queue here (Lambda consumers do, with an event-source
maximum concurrency), so there is no backlog-per-instance scaling policy to build; the EC2 tiers
scale on CPU and ALB request count (target tracking, in the tier stacks). The queue-age alarms are
what tells an operator that consumers fall behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cdk_monitoring_constructs as mon
from aws_cdk import CfnOutput, Duration, Fn, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from stacks.config import StageConfig
from stacks.stage_defaults import removal_policy

if TYPE_CHECKING:  # monitored_system_of's parameter types only
    from stacks.api_stack import ApiStack
    from stacks.data_stack import DataStack
    from stacks.edge_stack import EdgeStack
    from stacks.live_status_stack import LiveStatusStack
    from stacks.messaging_stack import MessagingStack
    from stacks.processing_stack import ProcessingStack
    from stacks.sessions_stack import SessionsStack
    from stacks.tier_stacks import BackendTierStack, WebTierStack
    from stacks.workflow_stack import WorkflowStack

# Powertools EMF business metrics (docs/design.md: POWERTOOLS_METRICS_NAMESPACE, dimension `service`).
BUSINESS_NAMESPACE = "Storefront"
BUSINESS_METRICS = ("OrdersPlaced", "OrdersProcessed", "ProcessingFailed")

# --- thresholds: each one is a page, so each must mean "a person should act" ----------------------
DLQ_DEPTH_THRESHOLD = 1  # any message in a dead-letter queue is a lost piece of work until redriven
LAMBDA_ERRORS_PER_5_MIN = 5  # a few retried errors are normal on SQS consumers; a steady stream is not
LAMBDA_THROTTLES_PER_5_MIN = 0  # consumers are capped by max concurrency, so a throttle is unexpected
API_5XX_PERCENT = 5.0  # of all requests, per minute, 3 minutes in a row
ALB_5XX_PER_MINUTE = 10  # ELB + target 5xx, per tier, 3 minutes in a row
UNHEALTHY_HOSTS = 1  # any unhealthy target for 3 minutes: the ASG should already be replacing it
# Every failed or timed-out checkout is a customer who did not get their order. A compensated checkout
# (declined card, out of stock, rejected or timed-out approval) fails too, in its `CheckoutCancelled` Fail
# state, so ExecutionsFailed pages on cancellations as well: the alarm text says how to tell them apart.
FAILED_CHECKOUTS_PER_5_MIN = 1
EVALUATION_PERIODS = 3


@dataclass(frozen=True)
class WatchedQueue:
    """A work queue and (if it has one) the dead-letter queue its failures move to."""

    name: str
    queue: sqs.IQueue
    dead_letter_queue: sqs.IQueue | None = None


@dataclass(frozen=True)
class LoadBalancedTier:
    """An EC2 tier: its ALB, the target group the ASG registers in, and the ASG itself."""

    name: str
    load_balancer: elbv2.IApplicationLoadBalancer
    target_group: elbv2.IApplicationTargetGroup
    auto_scaling_group: autoscaling.IAutoScalingGroup | None = None


@dataclass
class MonitoredSystem:
    """What the observability stack watches. Every field may be empty: the stack monitors what exists."""

    queues: list[WatchedQueue] = field(default_factory=list)
    # Queues that are themselves the end of the line (Lambda async-invoke failures, SNS delivery failures).
    dead_letter_queues: dict[str, sqs.IQueue] = field(default_factory=dict)
    functions: dict[str, lambda_.IFunction] = field(default_factory=dict)
    tables: dict[str, dynamodb.ITable] = field(default_factory=dict)
    topics: dict[str, sns.ITopic] = field(default_factory=dict)
    state_machines: dict[str, sfn.IStateMachine] = field(default_factory=dict)
    rest_api: apigw.RestApi | None = None
    tiers: list[LoadBalancedTier] = field(default_factory=list)
    # ElastiCache node ids (CacheClusterId dimension): `<replication group id>-00N` for each node.
    cache_nodes: list[str] = field(default_factory=list)
    web_acls: dict[str, wafv2.CfnWebACL] = field(default_factory=dict)


class ObservabilityStack(Stack):
    """`.alarm_topic` receives every alarm; `.monitoring` is the cdk-monitoring-constructs facade."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, system: MonitoredSystem, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.alarm_topic = self._alarm_topic(config)
        self.monitoring = mon.MonitoringFacade(
            self,
            "Monitoring",
            alarm_factory_defaults=mon.AlarmFactoryDefaults(
                alarm_name_prefix=config.stack_name("alarm"),
                actions_enabled=True,
                action=mon.SnsAlarmActionStrategy(on_alarm_topic=self.alarm_topic),
                evaluation_periods=EVALUATION_PERIODS,
                datapoints_to_alarm=EVALUATION_PERIODS,
            ),
            # One dashboard for everything: no separate summary or alarm-only dashboards to keep in sync.
            dashboard_factory=mon.DefaultDashboardFactory(
                self,
                "Dashboards",
                dashboard_name_prefix=config.stack_name("system"),
                create_dashboard=True,
                create_summary_dashboard=False,
                create_alarm_dashboard=False,
                rendering_preference=mon.DashboardRenderingPreference.INTERACTIVE_ONLY,
            ),
        )
        self._front_doors(system)
        self._compute_tiers(system)
        self._messaging(system, config)
        self._serverless(system)
        self._data(system)
        self._business_metrics()
        CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)

    # --- alarm destination ------------------------------------------------------------------------

    def _alarm_topic(self, config: StageConfig) -> sns.Topic:
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the alarm notifications topic",
            enable_key_rotation=True,
            removal_policy=removal_policy(config),
        )
        # CloudWatch publishes alarm notifications as itself, so it must be able to use the key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        topic = sns.Topic(
            self, "AlarmTopic", display_name=config.stack_name("alarms"), master_key=key, enforce_ssl=True
        )
        # enforce_ssl replaces SNS's default topic policy, so CloudWatch needs an explicit grant:
        # alarms of this account only.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:*"
                    },
                    "StringEquals": {"aws:SourceAccount": self.account},
                },
            )
        )
        if config.alarm_email:
            topic.add_subscription(subs.EmailSubscription(config.alarm_email))
        return topic

    # --- widgets and alarms per part of the system ---------------------------------------------------

    def _front_doors(self, system: MonitoredSystem) -> None:
        m = self.monitoring
        if system.rest_api is not None:
            api = system.rest_api
            stage = api.deployment_stage.stage_name
            m.add_large_header("API Gateway")
            m.monitor_api_gateway(
                api=api, api_stage=stage, alarm_friendly_name="api", human_readable_name=f"REST API ({stage})"
            )
            # 5XXError's Average is the fraction of requests that failed; x100 makes it a percentage.
            five_xx_percent = cloudwatch.MathExpression(
                expression="errors * 100",
                using_metrics={
                    "errors": cloudwatch.Metric(
                        namespace="AWS/ApiGateway",
                        metric_name="5XXError",
                        statistic="Average",
                        dimensions_map={"ApiName": api.rest_api_name, "Stage": stage},
                        period=Duration.minutes(1),
                    )
                },
                label="5xx % of requests",
                period=Duration.minutes(1),
            )
            m.monitor_custom(
                alarm_friendly_name="api-5xx",
                human_readable_name="API server errors",
                metric_groups=[
                    mon.CustomMetricGroup(
                        title="API 5xx rate",
                        metrics=[
                            mon.CustomMetricWithAlarm(
                                metric=five_xx_percent,
                                alarm_friendly_name="api-5xx-rate",
                                add_alarm={
                                    "Critical": mon.CustomThreshold(
                                        threshold=API_5XX_PERCENT,
                                        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                        treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                                        alarm_description_override=(
                                            f"More than {API_5XX_PERCENT:g}% of API requests fail with 5xx. Check the orders-api and "
                                            "approvals-api Lambda errors and logs (X-Ray trace from the access log's traceId); if "
                                            "a deploy just happened, roll it back."
                                        ),
                                    )
                                },
                            )
                        ],
                    )
                ],
            )
        if system.web_acls:
            m.add_large_header("WAF")
            for name, acl in system.web_acls.items():
                # WAF metrics carry a Region dimension for REGIONAL web ACLs.
                m.monitor_web_application_firewall_acl_v2(
                    acl=acl,
                    region=Stack.of(acl).region,
                    alarm_friendly_name=f"waf-{name}",
                    human_readable_name=f"WAF {name}",
                )

    def _compute_tiers(self, system: MonitoredSystem) -> None:
        m = self.monitoring
        if system.tiers:
            m.add_large_header("EC2 tiers (load balancers and Auto Scaling groups)")
        for tier in system.tiers:
            alb, target_group = tier.load_balancer, tier.target_group
            minute = Duration.minutes(1)

            def host_count(
                metric_name: str, statistic: str, tg=target_group, lb=alb, period=minute
            ) -> cloudwatch.Metric:
                # Built from the two full-name attributes: CDK's target_group.metrics derives the load
                # balancer's name by splitting the listener ARN, which does not survive a cross-stack reference.
                return cloudwatch.Metric(
                    namespace="AWS/ApplicationELB",
                    metric_name=metric_name,
                    statistic=statistic,
                    period=period,
                    dimensions_map={
                        "TargetGroup": tg.target_group_full_name,
                        "LoadBalancer": lb.load_balancer_full_name,
                    },
                )

            five_xx = cloudwatch.MathExpression(
                expression="FILL(elb, 0) + FILL(target, 0)",
                using_metrics={
                    "elb": alb.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=minute),
                    "target": alb.metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=minute),
                },
                label="5xx (ELB + targets)",
                period=minute,
            )
            m.monitor_custom(
                alarm_friendly_name=f"{tier.name}-alb",
                human_readable_name=f"{tier.name} tier ALB",
                metric_groups=[
                    mon.CustomMetricGroup(title="Requests", metrics=[alb.metrics.request_count(period=minute)]),
                    mon.CustomMetricGroup(
                        title="Target response time (p50, p99)",
                        metrics=[
                            alb.metrics.target_response_time(statistic="p50", period=minute),
                            alb.metrics.target_response_time(statistic="p99", period=minute),
                        ],
                    ),
                    mon.CustomMetricGroup(
                        title="5xx",
                        metrics=[
                            mon.CustomMetricWithAlarm(
                                metric=five_xx,
                                alarm_friendly_name=f"{tier.name}-alb-5xx",
                                add_alarm={
                                    "Critical": mon.CustomThreshold(
                                        threshold=ALB_5XX_PER_MINUTE,
                                        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                                        treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                                        alarm_description_override=(
                                            f"The {tier.name} tier answers more than {ALB_5XX_PER_MINUTE} 5xx per minute. ELB 5xx "
                                            "(no healthy target) -> check the target group and the ASG's activity history; "
                                            "target 5xx -> check the service logs on the instances."
                                        ),
                                    )
                                },
                            )
                        ],
                    ),
                    mon.CustomMetricGroup(
                        title="Hosts",
                        metrics=[
                            host_count("HealthyHostCount", "Minimum"),
                            mon.CustomMetricWithAlarm(
                                metric=host_count("UnHealthyHostCount", "Maximum"),
                                alarm_friendly_name=f"{tier.name}-unhealthy-hosts",
                                add_alarm={
                                    "Critical": mon.CustomThreshold(
                                        threshold=UNHEALTHY_HOSTS,
                                        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                                        treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,
                                        alarm_description_override=(
                                            f"A {tier.name} tier target has failed its health check for "
                                            f"{EVALUATION_PERIODS} minutes. The ASG replaces it with ELB health checks; if it "
                                            "keeps happening, read the instance's service log (GET /health) and its "
                                            "dependencies (Redis, backend ALB, SSM discovery parameters)."
                                        ),
                                    )
                                },
                            ),
                        ],
                    ),
                ],
            )
            if tier.auto_scaling_group is not None:
                m.monitor_auto_scaling_group(
                    auto_scaling_group=tier.auto_scaling_group,
                    alarm_friendly_name=f"{tier.name}-asg",
                    human_readable_name=f"{tier.name} tier Auto Scaling group",
                )
        if system.cache_nodes:
            m.add_large_header("Sessions (ElastiCache Redis)")
        for index, node_id in enumerate(system.cache_nodes, start=1):
            m.monitor_elasti_cache_cluster(
                cluster_id=node_id,
                cluster_type=mon.ElastiCacheClusterType.REDIS,
                alarm_friendly_name=f"sessions-node-{index}",
                human_readable_name=f"Sessions node {index}",
            )

    def _messaging(self, system: MonitoredSystem, config: StageConfig) -> None:
        m = self.monitoring
        if system.topics or system.queues or system.dead_letter_queues:
            m.add_large_header("Messaging (SNS, SQS)")
        for name, topic in system.topics.items():
            m.monitor_sns_topic(
                topic=topic,
                alarm_friendly_name=f"{name}-topic",
                human_readable_name=f"{name} topic",
                add_message_notifications_failed_alarm={
                    "Critical": mon.NotificationsFailedThreshold(
                        max_notifications_failed_count=0,
                        alarm_description_override=(
                            f"SNS could not deliver {name} messages. Check the subscription dead-letter queue and the "
                            "subscribed queues' policies and KMS key grants."
                        ),
                    )
                },
            )
        for watched in system.queues:
            age = mon.MaxMessageAgeThreshold(
                max_age_in_seconds=config.queue_age_slo_seconds,
                treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,  # idle queues stop reporting
                alarm_description_override=(
                    f"The oldest message in the {watched.name} queue is older than {config.queue_age_slo_seconds}s "
                    "(the queue-age SLO): its consumer falls behind or fails. Check the consumer Lambda's errors, "
                    "throttles and max concurrency."
                ),
            )
            if watched.dead_letter_queue is None:
                m.monitor_sqs_queue(
                    queue=watched.queue,
                    alarm_friendly_name=watched.name,
                    human_readable_name=f"{watched.name} queue",
                    add_queue_max_message_age_alarm={"Critical": age},
                )
                continue
            m.monitor_sqs_queue_with_dlq(
                queue=watched.queue,
                dead_letter_queue=watched.dead_letter_queue,
                alarm_friendly_name=watched.name,
                human_readable_name=f"{watched.name} queue",
                add_queue_max_message_age_alarm={"Critical": age},
                add_dead_letter_queue_max_size_alarm={"Critical": self._dlq_threshold(f"{watched.name} queue's DLQ")},
            )
        for name, dlq in system.dead_letter_queues.items():
            m.monitor_sqs_queue(
                queue=dlq,
                alarm_friendly_name=name,
                human_readable_name=f"{name} (dead-letter queue)",
                add_queue_max_size_alarm={"Critical": self._dlq_threshold(name)},
            )

    @staticmethod
    def _dlq_threshold(what: str) -> mon.MaxMessageCountThreshold:
        return mon.MaxMessageCountThreshold(
            max_message_count=DLQ_DEPTH_THRESHOLD,
            comparison_operator_override=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data_override=cloudwatch.TreatMissingData.NOT_BREACHING,  # an empty, idle DLQ is fine
            evaluation_periods=1,
            datapoints_to_alarm=1,
            alarm_description_override=(
                f"A message reached the {what}: work that failed every retry. Read the message and the consumer's "
                "logs (correlation_id), fix the cause, then redrive (aws sqs start-message-move-task)."
            ),
        )

    def _serverless(self, system: MonitoredSystem) -> None:
        m = self.monitoring
        if system.state_machines:
            m.add_large_header("Checkout (Step Functions)")
        for name, state_machine in system.state_machines.items():

            def failed(description: str) -> mon.ErrorCountThreshold:
                return mon.ErrorCountThreshold(
                    max_error_count=FAILED_CHECKOUTS_PER_5_MIN,
                    comparison_operator_override=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    evaluation_periods=1,
                    datapoints_to_alarm=1,
                    alarm_description_override=description,
                )

            reconcile = (
                "reconcile the order by hand: its payment (PAYMENT item), its reservations "
                "(RESERVATION# items, inventory on_hand/reserved) and its status."
            )
            m.monitor_step_function(
                state_machine=state_machine,
                alarm_friendly_name=name,
                human_readable_name=f"{name} state machine",
                add_failed_execution_count_alarm={
                    "Critical": failed(
                        f"A {name} execution failed. This counts every cancelled checkout too: a compensated checkout "
                        "(declined card, out of stock, rejected or timed-out approval) ends in the CheckoutCancelled "
                        "Fail state, so this alarm does not by itself mean that compensation broke. Open the execution "
                        "history in the Step Functions console: error CheckoutCancelled = compensated (payment refunded "
                        "if charged, items released, order CANCELLED with the cause in cancel_reason; act only if "
                        "cancellations spike); any other error = compensation was not reached or did not finish: "
                        + reconcile
                    )
                },
                add_timed_out_execution_count_alarm={
                    "Critical": failed(
                        f"A {name} execution timed out (approval timeout + 15 minutes): no compensation ran. Open the "
                        "execution history in the Step Functions console, find the state it was in, and " + reconcile
                    )
                },
            )
        if system.functions:
            m.add_large_header("Lambda functions")
        for name, function in system.functions.items():
            m.monitor_lambda_function(
                lambda_function=function,
                alarm_friendly_name=name,
                human_readable_name=f"{name} Lambda",
                add_fault_count_alarm={
                    "Critical": mon.ErrorCountThreshold(
                        max_error_count=LAMBDA_ERRORS_PER_5_MIN,
                        evaluation_periods=1,
                        datapoints_to_alarm=1,
                        alarm_description_override=(
                            f"{name} failed more than {LAMBDA_ERRORS_PER_5_MIN} times in 5 minutes. Read its log group "
                            "(Powertools JSON, filter on level=ERROR) and X-Ray traces; for queue consumers, failed "
                            "messages are retried and then moved to the DLQ."
                        ),
                    )
                },
                add_throttles_count_alarm={
                    "Critical": mon.ErrorCountThreshold(
                        max_error_count=LAMBDA_THROTTLES_PER_5_MIN,
                        evaluation_periods=1,
                        datapoints_to_alarm=1,
                        alarm_description_override=(
                            f"{name} was throttled. Check the account's concurrent-executions quota and other functions' "
                            "usage; raise the quota or reserve concurrency for this function."
                        ),
                    )
                },
            )

    def _data(self, system: MonitoredSystem) -> None:
        if not system.tables:
            return
        self.monitoring.add_large_header("DynamoDB")
        for name, table in system.tables.items():
            self.monitoring.monitor_dynamo_table(
                table=table,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                alarm_friendly_name=f"{name}-table",
                human_readable_name=f"{name} table",
            )

    def _business_metrics(self) -> None:
        """Powertools EMF metrics, one line per emitting service (SEARCH: a new service shows up by itself)."""
        self.monitoring.add_large_header("Business metrics (Powertools EMF)")
        self.monitoring.monitor_custom(
            alarm_friendly_name="business",
            human_readable_name="Storefront business metrics",
            metric_groups=[
                mon.CustomMetricGroup(
                    title=metric,
                    metrics=[
                        cloudwatch.MathExpression(
                            expression=f"SEARCH('{{{BUSINESS_NAMESPACE},service}} MetricName=\"{metric}\"', 'Sum', 300)",
                            label=metric,
                            period=Duration.minutes(5),
                        )
                    ],
                )
                for metric in BUSINESS_METRICS
            ],
        )


def monitored_system_of(
    *,
    data: DataStack,
    messaging: MessagingStack,
    sessions: SessionsStack,
    backend: BackendTierStack,
    web: WebTierStack,
    workflow: WorkflowStack,
    api: ApiStack,
    processing: ProcessingStack,
    edge: EdgeStack,
    live: LiveStatusStack | None = None,
) -> MonitoredSystem:
    """Collect what to watch from the app's stacks."""
    from stacks.constructs.lambda_packaging import LambdaPackaging  # only needed here

    system = MonitoredSystem()
    system.topics["order-events"] = messaging.order_events_topic
    pairs = dict(messaging.fanout)
    pairs["inventory-events"] = messaging.inventory_fifo
    pairs["order-cancel-window"] = messaging.cancel_delay_queue
    pairs["partner-inbound"] = messaging.partner_inbound
    pairs["picture-jobs"] = data.picture_jobs  # consumed by the media stack's worker fleet
    pairs["delivery-updates"] = messaging.delivery_updates
    pairs["activity"] = messaging.activity
    for name, pair in pairs.items():
        system.queues.append(WatchedQueue(name=name, queue=pair.queue, dead_letter_queue=pair.dlq))
    # The subscription DLQ pair's *work* queue is already the end of the line for SNS deliveries.
    # Nothing consumes it, so its own DLQ should stay empty; if a redrive goes wrong, it will not.
    system.dead_letter_queues["sns-delivery-failures"] = messaging.subscription_dlq.queue
    system.dead_letter_queues["sns-delivery-failures-dlq"] = messaging.subscription_dlq.dlq
    system.tables = {
        "orders": data.orders_table,
        "idempotency": data.idempotency_table,
        "inventory": data.inventory_table,
    }
    system.rest_api = api.rest_api
    system.functions["orders-api"] = api.orders_function
    system.functions["approvals-api"] = api.approvals_function
    system.functions["recommendations"] = api.recommendations_function
    system.state_machines["checkout"] = workflow.state_machine
    for name, function in workflow.task_functions.items():
        system.functions[f"checkout-{name.replace('_', '-')}"] = function
    for name, function in processing.consumers.items():
        system.functions[name.replace("_", "-")] = function
    system.functions["handoff-ingest"] = processing.handoff_ingest
    # The on-failure destinations of the asynchronously invoked functions: the hand-off schedule's ...
    system.dead_letter_queues["handoff-ingest-on-failure"] = processing.handoff_ingest_failures
    # ... and of the orders API's fire-and-forget side call.
    system.dead_letter_queues["recommendations-on-failure"] = api.recommendations_failures
    stacks: list[tuple[str, Stack]] = [("api", api), ("workflow", workflow), ("processing", processing)]
    if live is not None:
        system.functions["live-status-authorizer"] = live.authorizer_function
        system.functions["live-status-connect"] = live.connections_function
        system.functions["live-status-disconnect"] = live.disconnect_function
        system.functions["live-status-notifier"] = live.notifier_function
        # The stream mapping's on-failure destination: status changes it gave up on.
        system.dead_letter_queues["live-status-stream-failures"] = live.stream_failures
        system.tables["connections"] = live.connections_table
        stacks.append(("live", live))
    for key, stack in stacks:
        packaging = stack.node.try_find_child(LambdaPackaging.CONSTRUCT_ID)
        if isinstance(packaging, LambdaPackaging):
            system.dead_letter_queues[f"{key}-async-invoke-failures"] = packaging.async_failures
    group = sessions.replication_group
    if group is not None:
        # Cluster mode disabled: member clusters are named <replication group id>-001, -002, ...
        clusters = group.num_cache_clusters
        assert isinstance(clusters, int)  # set by the sessions stack: 1 + cacheReplicas
        system.cache_nodes = [Fn.join("", [group.ref, f"-{n:03d}"]) for n in range(1, clusters + 1)]
    if sessions.table is not None:
        system.tables["sessions"] = sessions.table
    for key, tier in (("web", web), ("backend", backend)):
        system.tiers.append(
            LoadBalancedTier(
                name=key,
                load_balancer=tier.load_balancer,
                target_group=tier.target_group,
                auto_scaling_group=tier.auto_scaling_group,
            )
        )
    system.web_acls["edge"] = edge.web_acl
    return system
